"""``network init``: create a development network folder (CA, keys, certificates, signed directory).

Everything is generated into a fresh 0700 staging folder beside the target and moved into place at the
end, so a failure never leaves a half-written network. An existing folder is replaced only with
``force=True``, and only if it is empty or looks like a network folder: ``--force`` never deletes a folder
that holds something else.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.core.identity import pki
from services.core.identity.directory import Directory
from services.core.identity.directory_codec import dump_directory
from services.core.identity.directory_signature import sign_directory
from services.core.identity.errors import NetworkExistsError
from services.core.identity.keystore import (
    PUBLIC_FILE_MODE,
    NetworkLayout,
    make_private_dir,
    write_certificate,
    write_file,
    write_private_key,
)
from services.core.identity.records import (
    NETWORK_SERVICES,
    KeyRecord,
    NetworkService,
    Organisation,
    kem_key_id,
    service_owner,
    signing_key_id,
)
from services.core.identity.seed import NETWORK_ID, SEED_ORGANISATIONS, SeedOrganisation
from services.core.keyvault.routing_keys import create_routing_key


@dataclass(frozen=True)
class NetworkCreated:
    """What ``init_network`` made: where, the signed directory, and the CA's fingerprint."""

    layout: NetworkLayout
    directory: Directory
    ca_sha256: str


def init_network(
    folder: Path,
    *,
    force: bool = False,
    organisations: Sequence[SeedOrganisation] = SEED_ORGANISATIONS,
    network_id: str = NETWORK_ID,
    now: datetime | None = None,
) -> NetworkCreated:
    """Create a network folder at ``folder``; ``NetworkExistsError`` if one is there and ``force`` is False."""
    target = Path(folder).absolute()
    _check_target(target, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.init-", dir=target.parent))
    try:
        directory, ca_sha256 = _generate(NetworkLayout(staging), organisations, network_id, now or datetime.now(UTC))
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return NetworkCreated(NetworkLayout(target), directory, ca_sha256)


def _check_target(target: Path, *, force: bool) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise NetworkExistsError(f"{target} exists and is not a folder; choose another path")
    if not target.exists() or not any(target.iterdir()):
        return
    if not force:
        raise NetworkExistsError(f"{target} already exists and is not empty; pass --force to replace it")
    layout = NetworkLayout(target)
    if not (layout.directory.exists() or layout.ca_certificate.exists()):
        msg = f"{target} is not a network folder (no directory.json, no ca/ca.pem): refusing to replace it"
        raise NetworkExistsError(msg)


def _move_into_place(staging: Path, target: Path) -> None:
    if not target.exists():
        staging.rename(target)
        return
    retired = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired)


def _raw(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _generate(
    layout: NetworkLayout, seeds: Sequence[SeedOrganisation], network_id: str, now: datetime
) -> tuple[Directory, str]:
    ca = pki.create_ca(network_id, now=now)
    for folder in (layout.ca_dir, layout.orgs_dir, layout.services_dir):
        make_private_dir(folder)
    write_certificate(layout.ca_certificate, ca.certificate)
    write_private_key(layout.ca_key, ca.private_key)
    orgs = [_create_org(layout, ca, seed, now) for seed in seeds]
    services = [_create_service(layout, ca, name, now) for name in NETWORK_SERVICES]
    directory = Directory(orgs, services, network_id=network_id, serial=1, issued_at=now)
    data = dump_directory(directory)
    write_file(layout.directory, data, PUBLIC_FILE_MODE)
    write_file(layout.directory_signature, sign_directory(data, ca), PUBLIC_FILE_MODE)
    create_routing_key(layout.root)
    return directory, pki.fingerprint(ca.certificate)


def _create_org(
    layout: NetworkLayout, ca: pki.KeyAndCertificate, seed: SeedOrganisation, now: datetime
) -> Organisation:
    folder = layout.org_dir(seed.org_id)
    make_private_dir(folder)
    signing, kem = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    tls = pki.issue_org_certificate(ca, seed.org_id, seed.role, now=now)
    write_private_key(folder / "signing.key", signing)
    write_private_key(folder / "kem.key", kem)
    _write_tls(folder, tls)
    return Organisation(
        org_id=seed.org_id,
        display_name=seed.display_name,
        role=seed.role,
        regions=seed.regions,
        services=seed.services,
        language=seed.language,
        age_group=seed.age_group,
        signing_key=KeyRecord(signing_key_id(seed.org_id), _raw(signing)),
        kem_key=KeyRecord(kem_key_id(seed.org_id), _raw(kem)),
        tls_cert_sha256=pki.fingerprint(tls.certificate),
    )


def _create_service(layout: NetworkLayout, ca: pki.KeyAndCertificate, name: str, now: datetime) -> NetworkService:
    folder = layout.service_dir(name)
    make_private_dir(folder)
    signing = Ed25519PrivateKey.generate()
    tls = pki.issue_service_certificate(ca, name, now=now)
    write_private_key(folder / "signing.key", signing)
    _write_tls(folder, tls)
    _write_tls(folder, pki.issue_probe_certificate(ca, name, now=now), name="probe")
    key = KeyRecord(signing_key_id(service_owner(name)), _raw(signing))
    return NetworkService(name=name, signing_key=key, tls_cert_sha256=pki.fingerprint(tls.certificate))


def _write_tls(folder: Path, tls: pki.KeyAndCertificate, *, name: str = "tls") -> None:
    write_private_key(folder / f"{name}.key", tls.private_key)
    write_certificate(folder / f"{name}.pem", tls.certificate)
