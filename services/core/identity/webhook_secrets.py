"""Webhook secrets: the HMAC key each organisation's webhook notices are signed with (docs/adr/0014-notify.md).

A secret is 32 random bytes, kept in two files of the network folder, both mode 0600::

    notify/webhook-secrets/<org_id>.key   the notify service's copy (the service reads the whole folder)
    orgs/<org_id>/webhook.key             the organisation's copy, to verify what it receives

A file holds the standard base64 of the 32 bytes and a newline. The secret is never in the directory: the
directory goes to every member, and a secret there would let any member forge notices to any other.
Loaders refuse symlinks and files that group or others may read, as the other key loaders do.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from pathlib import Path

from services.core.identity.errors import DirectoryError, KeystoreError
from services.core.identity.keystore import PRIVATE_FILE_MODE, NetworkLayout, make_private_dir, replace_file
from services.core.identity.records import check_slug

WEBHOOK_SECRET_BYTES = 32
NOTIFY_FOLDER = "notify"
SECRETS_FOLDER = "webhook-secrets"
ORG_COPY_NAME = "webhook.key"
_SUFFIX = ".key"
_MAX_FILE_BYTES = 1024


def secrets_dir(network_dir: Path) -> Path:
    """``<network>/notify/webhook-secrets``: the notify service's copies of every webhook secret."""
    return Path(network_dir) / NOTIFY_FOLDER / SECRETS_FOLDER


def webhook_secret_path(network_dir: Path, org_id: str) -> Path:
    """``<network>/notify/webhook-secrets/<org_id>.key`` (the id is checked: it cannot climb out)."""
    return secrets_dir(network_dir) / f"{_safe(org_id)}{_SUFFIX}"


def org_webhook_secret_path(network_dir: Path, org_id: str) -> Path:
    """``<network>/orgs/<org_id>/webhook.key``: the organisation's own copy."""
    return NetworkLayout(Path(network_dir)).org_dir(org_id) / ORG_COPY_NAME


def new_webhook_secret() -> bytes:
    """32 bytes from the operating system's CSPRNG."""
    return secrets.token_bytes(WEBHOOK_SECRET_BYTES)


def encode_webhook_secret(secret: bytes) -> bytes:
    """The file's bytes: standard base64 of the secret and a newline."""
    _check_size(secret, "the secret")
    return base64.b64encode(secret) + b"\n"


def read_webhook_secret(path: Path) -> bytes:
    """The 32 bytes in one secret file; ``KeystoreError`` naming the file if it is unsafe or malformed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise KeystoreError(f"{path}: cannot open ({error.strerror}); symlinks are refused") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise KeystoreError(f"{path} is not a regular file")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeystoreError(f"{path} is readable by group or others (mode {stat.S_IMODE(mode):04o}): chmod 600 it")
        data = os.read(fd, _MAX_FILE_BYTES)
    finally:
        os.close(fd)
    text = data.strip()
    try:
        secret = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeystoreError(f"{path} does not hold standard base64") from None
    if base64.b64encode(secret) != text:
        raise KeystoreError(f"{path} does not hold canonical base64")
    _check_size(secret, str(path))
    return secret


def load_webhook_secrets(network_dir: Path) -> dict[str, bytes]:
    """Every ``notify/webhook-secrets/<org_id>.key``: org id -> 32 bytes; ``{}`` when the folder is absent.

    Other names in the folder (not ``<slug>.key``) are ignored; an unsafe or malformed secret file is a
    ``KeystoreError``, never skipped, so a broken secret is noticed at start rather than at the first notice.
    """
    folder = secrets_dir(network_dir)
    if not folder.is_dir():
        return {}
    loaded: dict[str, bytes] = {}
    for path in sorted(folder.iterdir()):
        org_id = path.name.removesuffix(_SUFFIX)
        if path.name.endswith(_SUFFIX) and _is_slug(org_id):
            loaded[org_id] = read_webhook_secret(path)
    return loaded


def write_webhook_secret(network_dir: Path, org_id: str, secret: bytes) -> tuple[Path, Path]:
    """Write (or replace) both copies of ``org_id``'s secret, each atomically, 0600; returns their paths.

    Each file is written whole under a temporary name, then renamed over the old one: a reader sees the
    old secret or the new one, never a partial file.
    """
    _check_size(secret, "the secret")
    layout = NetworkLayout(Path(network_dir))
    for folder in (layout.root / NOTIFY_FOLDER, secrets_dir(network_dir), layout.orgs_dir, layout.org_dir(org_id)):
        if not folder.is_dir():
            make_private_dir(folder)
    paths = (webhook_secret_path(network_dir, org_id), org_webhook_secret_path(network_dir, org_id))
    for path in paths:
        replace_file(path, encode_webhook_secret(secret), PRIVATE_FILE_MODE)
    return paths


def _check_size(secret: bytes, what: str) -> None:
    if len(secret) != WEBHOOK_SECRET_BYTES:
        raise KeystoreError(f"{what} must be exactly {WEBHOOK_SECRET_BYTES} bytes, not {len(secret)}")


def _is_slug(name: str) -> bool:
    try:
        check_slug(name, "org_id")
    except DirectoryError:
        return False
    return True


def _safe(org_id: str) -> str:
    if not _is_slug(org_id):
        raise KeystoreError(f"{org_id!r} is not a valid org id")
    return org_id


def ensure_webhook_secret(network_dir: Path, org_id: str, *, rotate: bool = False) -> bool:
    """Make sure both copies of ``org_id``'s secret exist; a new secret when ``rotate`` or none exists yet.

    A missing organisation copy is restored from the notify copy (same secret). Returns whether anything
    was written.
    """
    notify_copy, org_copy = webhook_secret_path(network_dir, org_id), org_webhook_secret_path(network_dir, org_id)
    if rotate or not notify_copy.exists():
        secret = new_webhook_secret()
    elif org_copy.exists():
        return False
    else:
        secret = read_webhook_secret(notify_copy)
    write_webhook_secret(network_dir, org_id, secret)
    return True
