"""The key vault on a real SQLite file: creation, rotation, lookups, the cache, races."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from services.core.envelope.errors import ShreddedSubjectError, TamperedSectionError, UnknownKeyError
from services.core.keyvault import store
from services.core.keyvault.cache import KeyCache
from services.core.keyvault.keys import DataCategory, KeyState, is_data_key_id
from services.core.keyvault.store import data_keys
from tests.unit.keyvault_support import VaultFiles

ROUTING, CASE_FILE = DataCategory.ROUTING, DataCategory.CASE_FILE


def test_ensure_subject_creates_one_v1_key_per_category_idempotently(files: VaultFiles) -> None:
    vault = files.vault()
    vault.ensure_subject("subj-1")
    first = {c: vault.current_key("subj-1", c) for c in DataCategory}
    vault.ensure_subject("subj-1")
    assert {c: vault.current_key("subj-1", c) for c in DataCategory} == first
    assert first[ROUTING].key_id != first[CASE_FILE].key_id
    assert first[ROUTING].key != first[CASE_FILE].key
    metas = vault.subject_keys("subj-1")
    assert [(m.category, m.version, m.state) for m in metas] == [
        (CASE_FILE, 1, KeyState.ACTIVE), (ROUTING, 1, KeyState.ACTIVE),
    ]
    assert all(m.created_at.tzinfo is not None for m in metas)


def test_key_ids_are_opaque(files: VaultFiles) -> None:
    vault = files.vault()
    for subject in ("subj-a", "subj-b"):
        vault.ensure_subject(subject)
    ids = [m.key_id for s in ("subj-a", "subj-b") for m in vault.subject_keys(s)]
    assert len(set(ids)) == 4
    assert all(is_data_key_id(key_id) and "subj" not in key_id for key_id in ids)


def test_rotation_makes_a_new_current_key_and_keeps_old_versions_readable(files: VaultFiles) -> None:
    vault = files.vault()
    vault.ensure_subject("subj-1")
    v1, other = vault.current_key("subj-1", CASE_FILE), vault.current_key("subj-1", ROUTING)
    v2 = vault.rotate("subj-1", CASE_FILE)
    v3 = vault.rotate("subj-1", CASE_FILE)
    assert len({v1.key_id, v2.key_id, v3.key_id}) == 3
    assert len({v1.key, v2.key, v3.key}) == 3
    for reader in (vault, files.vault()):  # this instance and a fresh one on the same database
        assert reader.current_key("subj-1", CASE_FILE) == v3
        assert reader.key(v1.key_id) == v1
        assert reader.key(v2.key_id) == v2
        assert reader.current_key("subj-1", ROUTING) == other  # the other category is untouched
    states = {m.key_id: (m.version, m.state) for m in vault.subject_keys("subj-1")}
    assert states[v1.key_id] == (1, KeyState.RETIRED)
    assert states[v2.key_id] == (2, KeyState.RETIRED)
    assert states[v3.key_id] == (3, KeyState.ACTIVE)


def test_unknown_ids_and_subjects(files: VaultFiles) -> None:
    vault = files.vault()
    with pytest.raises(UnknownKeyError):
        vault.key("dk-" + "0" * 32)
    with pytest.raises(UnknownKeyError):
        vault.subject_of("dk-" + "0" * 32)
    with pytest.raises(UnknownKeyError):
        vault.current_key("nobody", ROUTING)
    with pytest.raises(UnknownKeyError):
        vault.rotate("nobody", ROUTING)
    for bad in ("", "x" * 129, "subj\x00", "subj\n1"):
        with pytest.raises(ValueError, match="subject id"):
            vault.ensure_subject(bad)


def test_subject_of_and_metadata(files: VaultFiles) -> None:
    vault = files.vault()
    vault.ensure_subject("subj-1")
    key = vault.current_key("subj-1", ROUTING)
    assert vault.subject_of(key.key_id) == "subj-1"
    meta = vault.metadata(key.key_id)
    assert (meta.subject_id, meta.category, meta.version, meta.state) == ("subj-1", ROUTING, 1, KeyState.ACTIVE)


def test_repr_never_shows_key_bytes(files: VaultFiles) -> None:
    vault = files.vault()
    vault.ensure_subject("subj-1")
    key = vault.current_key("subj-1", ROUTING)
    assert key.key.hex() not in repr(key)
    assert repr(key.key) not in repr(key)


def test_cache_serves_repeated_lookups_and_is_bounded(files: VaultFiles) -> None:
    cache = KeyCache(max_entries=3)
    vault = files.vault(cache)
    vault.ensure_subject("subj-1")
    vault.rotate("subj-1", ROUTING)
    ids = [m.key_id for m in vault.subject_keys("subj-1")]
    for key_id in ids:
        vault.key(key_id)
    assert len(cache) == 3
    cached = vault.key(ids[-1])
    with files.engine.begin() as conn:  # were it read again, this row would no longer unwrap
        conn.execute(data_keys.update().where(data_keys.c.key_id == ids[-1]).values(version=99))
    assert vault.key(ids[-1]) == cached
    with pytest.raises(TamperedSectionError):
        files.vault().key(ids[-1])


def test_concurrent_ensure_and_rotate_keep_one_active_version(files: VaultFiles) -> None:
    vault = files.vault()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            vault.ensure_subject("subj-race")
            for _ in range(3):
                vault.rotate("subj-race", ROUTING)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    routing = [m for m in vault.subject_keys("subj-race") if m.category == ROUTING]
    assert [m.version for m in routing] == list(range(1, 14))
    assert [m.state for m in routing].count(KeyState.ACTIVE) == 1
    assert len([m for m in vault.subject_keys("subj-race") if m.category == CASE_FILE]) == 1


def test_ensure_subject_after_shred_is_refused(files: VaultFiles) -> None:
    vault = files.vault()
    vault.shred("never-seen")
    with pytest.raises(ShreddedSubjectError):
        vault.ensure_subject("never-seen")


def test_ensure_subject_survives_losing_the_creation_race(files: VaultFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another instance creates the subject between our read and our insert: ours hits the unique key, rereads."""
    real, rival = store.subject_row, files.vault()
    calls: list[str] = []

    def racing_subject_row(conn: sa.Connection, subject_id: str) -> sa.Row[Any] | None:
        seen = real(conn, subject_id)
        if not calls:
            calls.append(subject_id)
            rival.ensure_subject(subject_id)  # commits on its own connection before we insert
        return seen

    monkeypatch.setattr("services.core.keyvault.vault.subject_row", racing_subject_row)
    vault = files.vault()
    vault.ensure_subject("subj-race")
    assert calls == ["subj-race"]
    assert {m.key_id for m in vault.subject_keys("subj-race")} == {
        rival.current_key("subj-race", c).key_id for c in DataCategory
    }
