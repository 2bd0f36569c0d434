"""Crypto-shredding: every version gone for good, tombstones kept, caches emptied, other subjects untouched."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.core.envelope.errors import ShreddedSubjectError
from services.core.keyvault.cache import KeyCache
from services.core.keyvault.keys import DataCategory, DataKey, KeyState
from services.core.keyvault.release import release_key
from services.core.keyvault.store import data_keys
from services.core.keyvault.vault import KeyVault
from tests.unit.keyvault_support import VaultFiles

ROUTING, CASE_FILE = DataCategory.ROUTING, DataCategory.CASE_FILE


def _subject_with_versions(vault: KeyVault, subject: str) -> list[DataKey]:
    """A subject with 3 routing and 2 case-file versions; every key, read back once (so it is cached)."""
    vault.ensure_subject(subject)
    vault.rotate(subject, ROUTING)
    vault.rotate(subject, ROUTING)
    vault.rotate(subject, CASE_FILE)
    return [vault.key(meta.key_id) for meta in vault.subject_keys(subject)]


def _assert_shredded(vault: KeyVault, subject: str, keys: list[DataKey]) -> None:
    assert len(keys) == 5
    for key in keys:
        with pytest.raises(ShreddedSubjectError):
            vault.key(key.key_id)
        assert vault.subject_of(key.key_id) == subject  # the tombstone still answers
    for category in DataCategory:
        with pytest.raises(ShreddedSubjectError):
            vault.current_key(subject, category)
        with pytest.raises(ShreddedSubjectError):
            vault.rotate(subject, category)
    with pytest.raises(ShreddedSubjectError):
        vault.ensure_subject(subject)
    assert {meta.state for meta in vault.subject_keys(subject)} == {KeyState.SHREDDED}


def test_shred_makes_every_version_unreadable_at_once(files: VaultFiles) -> None:
    vault = files.vault()
    keys = _subject_with_versions(vault, "subj-gone")
    vault.shred("subj-gone")  # the keys are in this instance's cache: the shred must drop them
    _assert_shredded(vault, "subj-gone", keys)


def test_shred_is_idempotent(files: VaultFiles) -> None:
    vault = files.vault()
    keys = _subject_with_versions(vault, "subj-gone")
    vault.shred("subj-gone")
    before = vault.subject_keys("subj-gone")
    vault.shred("subj-gone")
    files.vault().shred("subj-gone")
    assert vault.subject_keys("subj-gone") == before
    _assert_shredded(vault, "subj-gone", keys)


def test_shred_survives_a_new_vault_instance(files: VaultFiles) -> None:
    keys = _subject_with_versions(files.vault(), "subj-gone")
    files.vault().shred("subj-gone")
    files.engine.dispose()
    _assert_shredded(files.vault(), "subj-gone", keys)


def test_other_subjects_are_untouched(files: VaultFiles) -> None:
    vault = files.vault()
    _subject_with_versions(vault, "subj-gone")
    kept = _subject_with_versions(vault, "subj-kept")
    vault.shred("subj-gone")
    for reader in (vault, files.vault()):
        assert [reader.key(key.key_id) for key in kept] == kept
        assert {meta.state for meta in reader.subject_keys("subj-kept")} == {KeyState.ACTIVE, KeyState.RETIRED}
    assert vault.rotate("subj-kept", ROUTING).key_id not in {key.key_id for key in kept}


def test_releasing_a_shredded_subjects_key_is_refused(files: VaultFiles) -> None:
    vault = files.vault()
    keys = _subject_with_versions(vault, "subj-gone")
    vault.shred("subj-gone")
    public = X25519PrivateKey.generate().public_key()
    for key in keys:
        with pytest.raises(ShreddedSubjectError):
            release_key(vault, key.key_id, "org-shelter", "kem-1", public, "shelter")


def test_another_process_shred_takes_effect_when_cache_entries_expire(files: VaultFiles) -> None:
    now = [0.0]
    reader = files.vault(KeyCache(ttl_seconds=30, clock=lambda: now[0]))
    keys = _subject_with_versions(reader, "subj-gone")
    files.vault().shred("subj-gone")  # another instance: it cannot reach this one's memory
    now[0] = 29.0
    assert reader.key(keys[0].key_id) == keys[0]  # the documented window: at most the cache's time to live
    now[0] = 30.0
    _assert_shredded(reader, "subj-gone", keys)


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_wrapped_bytes_do_not_linger_in_the_sqlite_files(files: VaultFiles, journal_mode: str) -> None:
    def insecure_build(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.execute("PRAGMA secure_delete = OFF")  # as SQLite's default build has it (Debian's does not)

    sa.event.listen(files.engine, "connect", insecure_build)
    files.engine.dispose()
    with files.engine.connect() as conn:
        conn.exec_driver_sql(f"PRAGMA journal_mode = {journal_mode}")
    vault = files.vault()
    _subject_with_versions(vault, "subj-gone")
    _subject_with_versions(vault, "subj-kept")
    with files.engine.connect() as conn:
        every = conn.execute(sa.select(data_keys.c.subject_id, data_keys.c.wrapped)).all()
    assert all(blob[:16] in files.file_bytes() for _, blob in every)  # the scan does find wrapped keys
    vault.shred("subj-gone")
    on_disk = files.file_bytes()
    for subject, blob in every:
        assert (blob[:16] in on_disk) == (subject == "subj-kept"), subject
    assert {subject for subject, _ in every} == {"subj-gone", "subj-kept"}
