"""A bounded cache of AES-GCM cipher objects, so a hot key is not re-expanded for every section."""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.core.envelope.errors import MalformedEnvelopeError
from services.core.envelope.format import KEY_BYTES


class CipherCache:
    """AESGCM objects by key id; beyond ``capacity`` the oldest entry is evicted.

    An entry is used only when the caller presents the same key bytes again, so the cache grants nothing
    the caller does not already hold. It does hold key material: whoever shreds a subject's keys must
    call :meth:`forget` (or :meth:`clear`) on every cache that may hold them. Safe to share between
    threads (a gRPC edge serves calls on a pool): lookups read without a lock, changes take one.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._ciphers: dict[str, tuple[bytes, AESGCM]] = {}
        self._lock = threading.Lock()

    def cipher(self, key_id: str, key: bytes) -> AESGCM:
        """The AESGCM object for this key, created on first use."""
        entry = self._ciphers.get(key_id)
        if entry is not None and entry[0] == key:
            return entry[1]
        if len(key) != KEY_BYTES:
            msg = f"data key {key_id}: must be {KEY_BYTES} bytes for AES-256-GCM, not {len(key)}"
            raise MalformedEnvelopeError(msg)
        cipher = AESGCM(key)
        with self._lock:
            self._ciphers[key_id] = (key, cipher)
            while len(self._ciphers) > self._capacity:
                del self._ciphers[next(iter(self._ciphers))]
        return cipher

    def forget(self, key_ids: set[str]) -> None:
        """Drop every cipher of these key ids (after crypto-shredding)."""
        with self._lock:
            for key_id in key_ids:
                self._ciphers.pop(key_id, None)

    def clear(self) -> None:
        """Drop every cipher."""
        with self._lock:
            self._ciphers.clear()
