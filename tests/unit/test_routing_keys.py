"""The network routing key ring: created by network init, rotated by adding files, strict on load."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from services.core.envelope import UnknownKeyError
from services.core.identity.errors import KeystoreError
from services.core.keyvault.routing_keys import ROUTING_FOLDER, create_routing_key, load_routing_keys


def test_rotation_adds_a_version_and_the_newest_seals(tmp_path: Path) -> None:
    first = create_routing_key(tmp_path)
    second = create_routing_key(tmp_path)
    keys = load_routing_keys(tmp_path)
    assert (first, second) == ("nrk-1", "nrk-2")
    assert keys.key_ids == ("nrk-1", "nrk-2")
    assert keys.current().key_id == "nrk-2"
    assert keys.key("nrk-1").key != keys.key("nrk-2").key


def test_files_are_private(tmp_path: Path) -> None:
    create_routing_key(tmp_path)
    folder = tmp_path / ROUTING_FOLDER
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "nrk-1.key").stat().st_mode) == 0o600


def test_an_unknown_id_is_an_unknown_key(tmp_path: Path) -> None:
    create_routing_key(tmp_path)
    with pytest.raises(UnknownKeyError, match="dk-0"):
        load_routing_keys(tmp_path).key("dk-0")


def test_missing_folder_or_no_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="network init"):
        load_routing_keys(tmp_path)
    (tmp_path / ROUTING_FOLDER).mkdir(mode=0o700)
    with pytest.raises(KeystoreError, match="no network routing key"):
        load_routing_keys(tmp_path)


def test_loose_mode_wrong_size_and_symlink_are_refused(tmp_path: Path) -> None:
    create_routing_key(tmp_path)
    path = tmp_path / ROUTING_FOLDER / "nrk-1.key"
    path.chmod(0o640)
    with pytest.raises(KeystoreError, match="chmod 600"):
        load_routing_keys(tmp_path)
    path.chmod(0o600)
    path.write_bytes(b"short")
    with pytest.raises(KeystoreError, match="exactly 32 bytes"):
        load_routing_keys(tmp_path)
    path.unlink()
    target = tmp_path / "elsewhere.key"
    target.write_bytes(os.urandom(32))
    target.chmod(0o600)
    path.symlink_to(target)
    with pytest.raises(KeystoreError, match="symlinks are refused"):
        load_routing_keys(tmp_path)
