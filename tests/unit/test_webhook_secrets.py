"""Webhook secrets on disk: where they live, their format and mode, and what the loader refuses."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from services.core.identity.errors import KeystoreError
from services.core.identity.webhook_secrets import (
    WEBHOOK_SECRET_BYTES,
    encode_webhook_secret,
    ensure_webhook_secret,
    load_webhook_secrets,
    new_webhook_secret,
    org_webhook_secret_path,
    read_webhook_secret,
    webhook_secret_path,
    write_webhook_secret,
)

SECRET = bytes(range(32))


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_two_copies_live_where_the_adr_says(tmp_path):
    assert webhook_secret_path(tmp_path, "alb-cus-01") == tmp_path / "notify" / "webhook-secrets" / "alb-cus-01.key"
    assert org_webhook_secret_path(tmp_path, "alb-cus-01") == tmp_path / "orgs" / "alb-cus-01" / "webhook.key"


@pytest.mark.parametrize("org_id", ["../ca", "ALB", "", "svc:notify", "a/b"])
def test_an_org_id_that_is_not_a_slug_never_becomes_a_path(tmp_path, org_id):
    with pytest.raises(KeystoreError, match="not a valid org id"):
        webhook_secret_path(tmp_path, org_id)
    with pytest.raises(KeystoreError):
        org_webhook_secret_path(tmp_path, org_id)


def test_new_secrets_are_32_random_bytes():
    first, second = new_webhook_secret(), new_webhook_secret()
    assert len(first) == len(second) == WEBHOOK_SECRET_BYTES
    assert first != second


def test_written_secrets_are_base64_and_a_newline_mode_0600_in_0700_folders(tmp_path):
    notify_copy, org_copy = write_webhook_secret(tmp_path, "alb-cus-01", SECRET)
    for path in (notify_copy, org_copy):
        assert path.read_bytes() == base64.b64encode(SECRET) + b"\n"
        assert mode_of(path) == 0o600
        assert mode_of(path.parent) == 0o700
        assert read_webhook_secret(path) == SECRET
    assert mode_of(tmp_path / "notify") == 0o700
    assert load_webhook_secrets(tmp_path) == {"alb-cus-01": SECRET}


def test_writing_again_replaces_both_copies_and_leaves_no_temporary_file(tmp_path):
    write_webhook_secret(tmp_path, "alb-cus-01", SECRET)
    replacement = new_webhook_secret()
    notify_copy, org_copy = write_webhook_secret(tmp_path, "alb-cus-01", replacement)
    assert read_webhook_secret(notify_copy) == read_webhook_secret(org_copy) == replacement
    assert sorted(path.name for path in notify_copy.parent.iterdir()) == ["alb-cus-01.key"]
    assert sorted(path.name for path in org_copy.parent.iterdir()) == ["webhook.key"]


def test_the_loader_returns_nothing_without_a_folder_and_every_org_with_one(tmp_path):
    assert load_webhook_secrets(tmp_path) == {}
    other = new_webhook_secret()
    write_webhook_secret(tmp_path, "alb-cus-01", SECRET)
    write_webhook_secret(tmp_path, "leg-aqp-01", other)
    folder = webhook_secret_path(tmp_path, "alb-cus-01").parent
    (folder / "README").write_text("not a secret\n")
    (folder / "Not_A_Slug.key").write_text("ignored\n")
    assert load_webhook_secrets(tmp_path) == {"alb-cus-01": SECRET, "leg-aqp-01": other}


def test_a_file_without_its_trailing_newline_still_reads(tmp_path):
    path = webhook_secret_path(tmp_path, "alb-cus-01")
    write_webhook_secret(tmp_path, "alb-cus-01", SECRET)
    path.write_bytes(base64.b64encode(SECRET))
    assert read_webhook_secret(path) == SECRET


@pytest.mark.parametrize(("content", "message"), [
    (base64.b64encode(b"k" * 31) + b"\n", "exactly 32 bytes, not 31"),
    (base64.b64encode(b"k" * 33) + b"\n", "exactly 32 bytes, not 33"),
    (b"not base64!\n", "standard base64"),
    (base64.urlsafe_b64encode(b"\xfb" * 32) + b"\n", "standard base64"),
    (base64.b64encode(SECRET).rstrip(b"=") + b"\n", "standard base64"),
    (b"", "exactly 32 bytes, not 0"),
], ids=["short", "long", "not base64", "url-safe alphabet", "unpadded", "empty"])
def test_the_loader_refuses_a_malformed_secret_naming_the_file(tmp_path, content, message):
    write_webhook_secret(tmp_path, "alb-cus-01", SECRET)
    path = webhook_secret_path(tmp_path, "alb-cus-01")
    path.write_bytes(content)
    with pytest.raises(KeystoreError, match=message) as raised:
        load_webhook_secrets(tmp_path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_the_loader_refuses_a_secret_group_or_others_may_read(tmp_path, mode):
    write_webhook_secret(tmp_path, "alb-cus-01", SECRET)
    path = webhook_secret_path(tmp_path, "alb-cus-01")
    path.chmod(mode)
    with pytest.raises(KeystoreError, match="readable by group or others"):
        load_webhook_secrets(tmp_path)


def test_the_loader_refuses_a_symlink(tmp_path):
    write_webhook_secret(tmp_path, "alb-cus-01", SECRET)
    folder = webhook_secret_path(tmp_path, "alb-cus-01").parent
    os.symlink(folder / "alb-cus-01.key", folder / "leg-aqp-01.key")
    with pytest.raises(KeystoreError, match="symlinks are refused"):
        load_webhook_secrets(tmp_path)


def test_the_loader_refuses_a_folder_in_place_of_a_file(tmp_path):
    write_webhook_secret(tmp_path, "alb-cus-01", SECRET)
    (webhook_secret_path(tmp_path, "alb-cus-01").parent / "leg-aqp-01.key").mkdir(mode=0o700)
    with pytest.raises(KeystoreError, match="not a regular file"):
        load_webhook_secrets(tmp_path)


def test_a_secret_of_the_wrong_size_is_never_written(tmp_path):
    with pytest.raises(KeystoreError, match="exactly 32 bytes"):
        write_webhook_secret(tmp_path, "alb-cus-01", b"short")
    with pytest.raises(KeystoreError, match="exactly 32 bytes"):
        encode_webhook_secret(b"x" * 64)
    assert not (tmp_path / "notify").exists()


def test_ensure_creates_once_keeps_after_and_rotates_on_request(tmp_path):
    assert ensure_webhook_secret(tmp_path, "alb-cus-01") is True
    first = load_webhook_secrets(tmp_path)["alb-cus-01"]
    assert ensure_webhook_secret(tmp_path, "alb-cus-01") is False
    assert load_webhook_secrets(tmp_path)["alb-cus-01"] == first
    assert ensure_webhook_secret(tmp_path, "alb-cus-01", rotate=True) is True
    rotated = load_webhook_secrets(tmp_path)["alb-cus-01"]
    assert rotated != first
    assert read_webhook_secret(org_webhook_secret_path(tmp_path, "alb-cus-01")) == rotated


def test_ensure_restores_a_lost_organisation_copy_with_the_same_secret(tmp_path):
    ensure_webhook_secret(tmp_path, "alb-cus-01")
    secret = load_webhook_secrets(tmp_path)["alb-cus-01"]
    org_webhook_secret_path(tmp_path, "alb-cus-01").unlink()
    assert ensure_webhook_secret(tmp_path, "alb-cus-01") is True
    assert read_webhook_secret(org_webhook_secret_path(tmp_path, "alb-cus-01")) == secret
