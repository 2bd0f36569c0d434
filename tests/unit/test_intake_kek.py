"""``ensure_kek_file``: intake's KEK file is made once (0600, in a 0700 folder when new), then only checked."""

from __future__ import annotations

import stat

import pytest

from services.intake.kek import ensure_kek_file


def test_the_kek_file_is_created_private_then_kept(tmp_path):
    path = tmp_path / "keys" / "intake-kek.key"

    assert ensure_kek_file(path) == path
    first = path.read_bytes()
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    ensure_kek_file(path)
    assert path.read_bytes() == first  # never replaced


def test_a_kek_file_others_may_read_is_refused(tmp_path):
    path = ensure_kek_file(tmp_path / "kek.key")
    path.chmod(0o640)
    with pytest.raises(PermissionError, match="chmod 600"):
        ensure_kek_file(path)
