"""``network endpoints``: change where an organisation's notices go, as a directory change the CA signs.

The endpoints are in the signed directory so that a tampered directory cannot redirect notices; the
webhook's secret is not (``webhook_secrets``). Changing them loads and verifies the current directory,
replaces that organisation's ``notify``, and re-signs it with the folder's CA key (serial + 1). Services
read the directory and the secrets when they start: restart notify after a change (docs/adr/0014-notify.md).
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from services.core.identity.directory import Directory
from services.core.identity.directory_codec import dump_directory
from services.core.identity.directory_signature import sign_directory
from services.core.identity.errors import DirectoryError, KeystoreError
from services.core.identity.keystore import (
    PUBLIC_FILE_MODE,
    NetworkLayout,
    load_ca,
    load_directory,
    replace_file,
)
from services.core.identity.pki import KeyAndCertificate
from services.core.identity.records import NotifyEndpoints
from services.core.identity.webhook_secrets import ensure_webhook_secret


def set_notify_endpoints(network_dir: Path, org_id: str, *, webhook_url: str = "", email: str = "",
                         rotate_secret: bool = False, now: datetime | None = None) -> Directory:
    """Set ``org_id``'s endpoints (both empty: none) and return the directory as it now is on disk.

    The directory is re-signed (serial + 1, ``issued_at = now``) only when the endpoints change; setting
    the same ones again changes nothing. When ``webhook_url`` is set and the org has no secret yet, or
    ``rotate_secret``, a new secret is written to both of its files (before the directory, so a directory
    naming a webhook always has its secret). Errors: ``UnknownOrganisationError`` for an org not in the
    directory, ``DirectoryError`` naming ``notify.webhook_url`` / ``notify.email``, ``KeystoreError`` or
    ``DirectorySignatureError`` for a folder without the CA key or whose directory does not verify.
    """
    folder = Path(network_dir)
    notify = NotifyEndpoints(webhook_url, email) if webhook_url or email else None
    if rotate_secret and not webhook_url:
        raise DirectoryError("notify.webhook_url", "a secret is rotated for a webhook: give its URL too")
    with _exclusive(NetworkLayout(folder)):
        ca = load_ca(folder)
        current = load_directory(folder, ca_certificate=ca.certificate)
        changed = current.org(org_id).notify != notify
        updated = with_endpoints(current, org_id, notify, now=now or datetime.now(UTC)) if changed else current
        if webhook_url:
            ensure_webhook_secret(folder, org_id, rotate=rotate_secret)
        if changed:
            write_signed_directory(folder, updated, ca)
        return updated


def with_endpoints(directory: Directory, org_id: str, notify: NotifyEndpoints | None, *,
                   now: datetime) -> Directory:
    """A copy of ``directory`` with ``org_id``'s endpoints replaced, serial + 1, issued at ``now`` (pure)."""
    directory.org(org_id)  # UnknownOrganisationError before anything is built
    organisations = [dataclasses.replace(org, notify=notify) if org.org_id == org_id else org
                     for org in directory.organisations]
    return Directory(organisations, directory.services, network_id=directory.network_id,
                     serial=directory.serial + 1, issued_at=now)


def write_signed_directory(network_dir: Path, directory: Directory, ca: KeyAndCertificate) -> None:
    """Write ``directory.json`` and the CA's ``directory.json.sig`` over it, each replaced atomically."""
    layout = NetworkLayout(Path(network_dir))
    data = dump_directory(directory)
    replace_file(layout.directory, data, PUBLIC_FILE_MODE)
    replace_file(layout.directory_signature, sign_directory(data, ca), PUBLIC_FILE_MODE)


@contextmanager
def _exclusive(layout: NetworkLayout) -> Iterator[None]:
    """Lock the network folder: two changes at once would both sign serial + 1 and one would be lost."""
    if not layout.directory.is_file():
        raise KeystoreError(f"{layout.directory} is missing: is this a network folder (referralnet network init)?")
    fd = os.open(layout.root, os.O_RDONLY | os.O_DIRECTORY)  # the folder itself: no lock file left behind
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
