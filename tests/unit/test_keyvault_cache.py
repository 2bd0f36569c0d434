"""The in-memory key cache: bounded, short-lived, emptied per subject, never refilled by a racing load."""

from __future__ import annotations

import pytest

from services.core.keyvault.cache import KeyCache
from services.core.keyvault.keys import DataKey, new_data_key


def _keys(count: int) -> list[DataKey]:
    return [new_data_key() for _ in range(count)]


def test_least_recently_used_is_evicted_beyond_the_bound() -> None:
    cache = KeyCache(max_entries=2)
    a, b, c = _keys(3)
    cache.put("s", a, cache.epoch)
    cache.put("s", b, cache.epoch)
    assert cache.get(a.key_id) == a  # a is now the most recently used
    cache.put("s", c, cache.epoch)
    assert cache.get(b.key_id) is None
    assert cache.get(a.key_id) == a
    assert cache.get(c.key_id) == c


def test_entries_expire() -> None:
    now = [100.0]
    cache = KeyCache(ttl_seconds=5, clock=lambda: now[0])
    (key,) = _keys(1)
    cache.put("s", key, cache.epoch)
    now[0] = 104.9
    assert cache.get(key.key_id) == key
    now[0] = 105.0
    assert cache.get(key.key_id) is None
    assert len(cache) == 0


def test_drop_subject_forgets_only_that_subject() -> None:
    cache = KeyCache()
    mine, theirs = _keys(2)
    cache.put("gone", mine, cache.epoch)
    cache.put("kept", theirs, cache.epoch)
    cache.drop_subject("gone")
    assert cache.get(mine.key_id) is None
    assert cache.get(theirs.key_id) == theirs


def test_a_key_loaded_before_a_drop_is_not_put_back_after_it() -> None:
    cache = KeyCache()
    (key,) = _keys(1)
    epoch = cache.epoch  # a reader starts loading the key...
    cache.drop_subject("gone")  # ...the subject is shredded meanwhile...
    cache.put("gone", key, epoch)  # ...and the reader's put arrives late
    assert cache.get(key.key_id) is None
    cache.put("gone", key, cache.epoch)
    assert cache.get(key.key_id) == key


def test_size_zero_disables_caching_and_negative_settings_are_refused() -> None:
    cache = KeyCache(max_entries=0)
    (key,) = _keys(1)
    cache.put("s", key, cache.epoch)
    assert cache.get(key.key_id) is None
    with pytest.raises(ValueError, match="negative"):
        KeyCache(max_entries=-1)
