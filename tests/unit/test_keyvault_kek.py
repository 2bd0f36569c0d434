"""The local-file KEK: created owner-only, refused when others could read it, AES-GCM bound to its context."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.core.envelope.errors import TamperedSectionError
from services.core.keyvault.kek import KeyEncryptionKey, LocalFileKek

KEY = bytes(range(32))
CONTEXT = b"key id + subject + category + version + kek id"


def test_created_with_mode_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "kek.key"
    first = LocalFileKek.from_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    second = LocalFileKek.from_file(path)
    assert second.kek_id == first.kek_id
    assert second.unwrap(first.wrap(KEY, CONTEXT), CONTEXT) == KEY


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o610, 0o601, 0o660])
def test_file_others_could_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "kek.key"
    LocalFileKek.from_file(path)
    path.chmod(mode)
    with pytest.raises(PermissionError, match=f"mode {mode:04o}.*chmod 600"):
        LocalFileKek.from_file(path)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_file_of_wrong_length_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "kek.key"
    path.write_bytes(b"k" * size)
    path.chmod(0o600)
    with pytest.raises(ValueError, match=f"holds {size} bytes, not 32"):
        LocalFileKek.from_file(path)


def test_symlink_and_directory_are_refused(tmp_path: Path) -> None:
    target = tmp_path / "real.key"
    LocalFileKek.from_file(target)
    link = tmp_path / "link.key"
    link.symlink_to(target)
    with pytest.raises(OSError):  # O_NOFOLLOW: ELOOP
        LocalFileKek.from_file(link)
    folder = tmp_path / "folder"
    folder.mkdir(mode=0o700)
    with pytest.raises((ValueError, OSError)):
        LocalFileKek.from_file(folder)


def test_wrap_is_randomised_and_hides_the_key(tmp_path: Path) -> None:
    kek = LocalFileKek.from_file(tmp_path / "kek.key")
    first, second = kek.wrap(KEY, CONTEXT), kek.wrap(KEY, CONTEXT)
    assert first != second  # a fresh nonce every time
    assert KEY not in first
    assert len(first) == 12 + 32 + 16


def test_other_context_or_altered_bytes_do_not_unwrap(tmp_path: Path) -> None:
    kek = LocalFileKek.from_file(tmp_path / "kek.key")
    wrapped = kek.wrap(KEY, CONTEXT)
    with pytest.raises(TamperedSectionError):
        kek.unwrap(wrapped, CONTEXT + b"x")
    for index in range(len(wrapped)):
        altered = bytearray(wrapped)
        altered[index] ^= 0x01
        with pytest.raises(TamperedSectionError):
            kek.unwrap(bytes(altered), CONTEXT)
    with pytest.raises(TamperedSectionError):
        kek.unwrap(wrapped[:20], CONTEXT)


def test_another_kek_does_not_unwrap_and_has_another_id(tmp_path: Path) -> None:
    kek, other = LocalFileKek.from_file(tmp_path / "a.key"), LocalFileKek.from_file(tmp_path / "b.key")
    assert kek.kek_id != other.kek_id
    assert kek.kek_id.startswith("kek-file-")
    with pytest.raises(TamperedSectionError):
        other.unwrap(kek.wrap(KEY, CONTEXT), CONTEXT)


def test_satisfies_the_port() -> None:
    assert isinstance(LocalFileKek(KEY), KeyEncryptionKey)
    with pytest.raises(ValueError, match="32 bytes"):
        LocalFileKek(KEY[:16])
