"""What the vault stores: wrapped keys only, each bound to its row and its KEK, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from services.core.envelope.errors import TamperedSectionError, UnknownKeyError
from services.core.keyvault.kek import LocalFileKek
from services.core.keyvault.keys import DataCategory, KeyState
from services.core.keyvault.store import data_keys
from services.core.keyvault.vault import KeyVault
from tests.unit.keyvault_support import VaultFiles

ROUTING, CASE_FILE = DataCategory.ROUTING, DataCategory.CASE_FILE


def test_stored_rows_never_contain_the_raw_keys(files: VaultFiles) -> None:
    vault = files.vault()
    keys = []
    for n in range(5):
        vault.ensure_subject(f"subj-{n}")
        keys += [vault.current_key(f"subj-{n}", c) for c in DataCategory]
        keys.append(vault.rotate(f"subj-{n}", CASE_FILE))
    files.engine.dispose()
    on_disk = files.file_bytes()
    assert b"subj-4" in on_disk  # the scan does see what the rows hold
    for key in keys:
        assert key.key not in on_disk
        assert key.key.hex().encode() not in on_disk
    assert files.kek_path.read_bytes() not in on_disk


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (("subj-a", ROUTING, 1), ("subj-b", ROUTING, 1)),  # another subject
        (("subj-a", ROUTING, 1), ("subj-a", CASE_FILE, 1)),  # another category
        (("subj-a", ROUTING, 1), ("subj-a", ROUTING, 2)),  # another version
    ],
)
def test_wrapped_key_copied_to_another_row_does_not_unwrap(
    files: VaultFiles, source: tuple[str, DataCategory, int], target: tuple[str, DataCategory, int]
) -> None:
    vault = files.vault()
    for subject in ("subj-a", "subj-b"):
        vault.ensure_subject(subject)
    vault.rotate("subj-a", ROUTING)

    def where(row: tuple[str, DataCategory, int]) -> sa.ColumnElement[bool]:
        return sa.and_(data_keys.c.subject_id == row[0], data_keys.c.category == row[1].value,
                       data_keys.c.version == row[2])

    with files.engine.begin() as conn:
        wrapped = conn.execute(sa.select(data_keys.c.wrapped).where(where(source))).scalar_one()
        target_id = conn.execute(sa.select(data_keys.c.key_id).where(where(target))).scalar_one()
        conn.execute(data_keys.update().where(where(target)).values(wrapped=wrapped, state=KeyState.RETIRED.value))
    fresh = files.vault()  # nothing cached
    with pytest.raises(TamperedSectionError, match=target_id):
        fresh.key(target_id)


@pytest.mark.parametrize("column", ["subject_id", "category", "version", "key_id"])
def test_relabelled_row_does_not_unwrap(files: VaultFiles, column: str) -> None:
    """Change one column of a row (making room for it first): the wrap context covers each of them."""
    vault = files.vault()
    for subject in ("subj-a", "subj-b"):
        vault.ensure_subject(subject)
    moved = vault.current_key("subj-a", ROUTING).key_id
    new_id = "dk-" + "f" * 32
    changes: dict[str, object] = {
        "subject_id": "subj-b", "category": CASE_FILE.value, "version": 2, "key_id": new_id,
    }
    with files.engine.begin() as conn:
        room = {"subject_id": ("subj-b", ROUTING), "category": ("subj-a", CASE_FILE)}.get(column)
        if room:
            conn.execute(data_keys.delete().where(data_keys.c.subject_id == room[0],
                                                  data_keys.c.category == room[1].value))
        conn.execute(data_keys.update().where(data_keys.c.key_id == moved).values({column: changes[column]}))
    with pytest.raises(TamperedSectionError):
        files.vault().key(new_id if column == "key_id" else moved)


def test_keys_wrapped_by_another_kek_are_refused(files: VaultFiles, tmp_path: Path) -> None:
    files.vault().ensure_subject("subj-1")
    key_id = files.vault().current_key("subj-1", ROUTING).key_id
    other = KeyVault(files.engine, LocalFileKek.from_file(tmp_path / "other.key"))
    with pytest.raises(UnknownKeyError, match="wrapped by KEK kek-file-"):
        other.key(key_id)


class RenamedKek:
    """Another KEK implementation (a KMS would look like this): the same key material under another id."""

    def __init__(self, inner: LocalFileKek, kek_id: str) -> None:
        self.inner, self._kek_id = inner, kek_id

    @property
    def kek_id(self) -> str:
        return self._kek_id

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        return self.inner.wrap(data_key, context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        return self.inner.unwrap(wrapped, context)


def test_kek_id_is_bound_too(files: VaultFiles) -> None:
    files.vault().ensure_subject("subj-1")
    key_id = files.vault().current_key("subj-1", ROUTING).key_id
    with files.engine.begin() as conn:
        conn.execute(data_keys.update().values(kek_id="kek-kms-alias"))
    renamed = KeyVault(files.engine, RenamedKek(LocalFileKek.from_file(files.kek_path), "kek-kms-alias"))
    with pytest.raises(TamperedSectionError):
        renamed.key(key_id)
