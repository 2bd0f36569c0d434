"""A small, bounded, short-lived in-memory cache of unwrapped data keys.

It saves an unwrap (and a database read) per event. Entries expire after ``ttl_seconds``, so a key shredded
by another process stops being served here within that time; a shred in this process drops them at once.
Python cannot wipe ``bytes`` from memory: dropped keys stay in freed memory until it is reused.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from services.core.keyvault.keys import DataKey


class KeyCache:
    """LRU of key id -> (subject id, key, expiry). Thread-safe."""

    def __init__(
        self, max_entries: int = 1024, ttl_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """``max_entries`` 0 disables caching; ``clock`` is injectable for tests."""
        if max_entries < 0 or ttl_seconds < 0:
            raise ValueError("cache size and time to live must not be negative")
        self._max = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[str, DataKey, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._drops = 0

    @property
    def epoch(self) -> int:
        """A counter bumped by every drop: read it before loading a key, pass it to :meth:`put`."""
        return self._drops

    def get(self, key_id: str) -> DataKey | None:
        """The cached key, or None if absent or expired (an expired entry is dropped)."""
        with self._lock:
            entry = self._entries.get(key_id)
            if entry is None:
                return None
            if entry[2] <= self._clock():
                del self._entries[key_id]
                return None
            self._entries.move_to_end(key_id)
            return entry[1]

    def put(self, subject_id: str, data_key: DataKey, epoch: int) -> None:
        """Remember ``data_key`` (of ``subject_id``), evicting the least recently used beyond the bound.

        Ignored when a drop happened since ``epoch`` was read: a key loaded just before a concurrent shred
        must not be put back after the shred cleared the cache.
        """
        if self._max == 0 or self._ttl == 0:
            return
        with self._lock:
            if epoch != self._drops:
                return
            self._entries[data_key.key_id] = (subject_id, data_key, self._clock() + self._ttl)
            self._entries.move_to_end(data_key.key_id)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def drop_subject(self, subject_id: str) -> None:
        """Forget every cached key of ``subject_id``."""
        with self._lock:
            self._drops += 1
            for key_id in [k for k, entry in self._entries.items() if entry[0] == subject_id]:
                del self._entries[key_id]

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._drops += 1
            self._entries.clear()

    def __len__(self) -> int:
        """How many entries are held (expired ones included until looked up)."""
        return len(self._entries)
