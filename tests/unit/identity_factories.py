"""Builders shared by the identity unit tests: an in-memory directory (no disk) and custom certificates."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.core.identity.directory import Directory
from services.core.identity.pki import KeyAndCertificate
from services.core.identity.records import (
    NETWORK_SERVICES,
    KeyRecord,
    NetworkService,
    Organisation,
    kem_key_id,
    service_owner,
    signing_key_id,
)
from services.core.identity.seed import SEED_ORGANISATIONS

ISSUED_AT = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)


@dataclass
class DirectoryWithKeys:
    directory: Directory
    signing_keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict)


def raw(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def fake_fingerprint(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def make_directory() -> DirectoryWithKeys:
    """The seed organisations and the four services with fresh keys, in memory."""
    keys: dict[str, Ed25519PrivateKey] = {}
    orgs = []
    for seed in SEED_ORGANISATIONS:
        signing = Ed25519PrivateKey.generate()
        keys[signing_key_id(seed.org_id)] = signing
        orgs.append(
            Organisation(
                org_id=seed.org_id,
                display_name=seed.display_name,
                role=seed.role,
                regions=seed.regions,
                services=seed.services,
                language=seed.language,
                age_group=seed.age_group,
                signing_key=KeyRecord(signing_key_id(seed.org_id), raw(signing)),
                kem_key=KeyRecord(kem_key_id(seed.org_id), raw(X25519PrivateKey.generate())),
                tls_cert_sha256=fake_fingerprint(seed.org_id),
            )
        )
    services = []
    for name in NETWORK_SERVICES:
        signing = Ed25519PrivateKey.generate()
        key_id = signing_key_id(service_owner(name))
        keys[key_id] = signing
        services.append(NetworkService(name, KeyRecord(key_id, raw(signing)), fake_fingerprint(f"svc:{name}")))
    directory = Directory(orgs, services, network_id="referralnet-test", serial=1, issued_at=ISSUED_AT)
    return DirectoryWithKeys(directory, keys)


def custom_leaf(
    ca: KeyAndCertificate,
    subject: list[tuple[x509.ObjectIdentifier, str]],
    sans: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
) -> x509.Certificate:
    """A leaf certificate the CA signs with whatever subject and SANs a test needs (or none)."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca_key_id = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(oid, value) for oid, value in subject]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca.private_key, hashes.SHA256())
