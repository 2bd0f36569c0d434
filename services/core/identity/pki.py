"""The development PKI: a network CA, mTLS client certificates for organisations, server certificates.

All keys are ECDSA P-256 with SHA-256 signatures: what gRPC's TLS stack (BoringSSL) and every TLS library
accept (ADR 4). An organisation's certificate names it three ways that must agree: subject ``O`` and ``CN``
(org id), ``OU`` (role word) and one SAN URI ``urn:referralnet:org:<org_id>:role:<role>``, which is what
``peer_identity`` trusts after verifying the chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import OrgRole
from services.core.identity.vocabulary import role_word

CA_VALIDITY = timedelta(days=3653)
LEAF_VALIDITY = timedelta(days=731)
CLOCK_SKEW = timedelta(minutes=5)
"""Certificates start this long before ``now`` so a peer whose clock is slightly behind accepts them."""

ORG_URI_PREFIX = "urn:referralnet:org:"
PROBE_URI_PREFIX = "urn:referralnet:probe:"
NETWORK_ORGANISATION = "referralnet"


@dataclass(frozen=True)
class KeyAndCertificate:
    """A private key and the certificate for its public key (the CA's own, or one the CA issued)."""

    private_key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


def org_uri(org_id: str, role: OrgRole) -> str:
    """The SAN URI naming an organisation and its role: ``urn:referralnet:org:pol-mdd-01:role:police``."""
    return f"{ORG_URI_PREFIX}{org_id}:role:{role_word(role)}"


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER bytes, lower-case hex (what the directory records)."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def _name(organisation: str, unit: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _start(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)) - CLOCK_SKEW


def create_ca(network_id: str, *, now: datetime | None = None) -> KeyAndCertificate:
    """A self-signed development CA: P-256, 10 years, ``basicConstraints`` CA (path length 0), certSign."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(NETWORK_ORGANISATION, "development CA (synthetic)", f"{network_id} development CA")
    start = _start(now)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyAndCertificate(key, certificate)


def issue_org_certificate(
    ca: KeyAndCertificate, org_id: str, role: OrgRole, *, now: datetime | None = None
) -> KeyAndCertificate:
    """An mTLS client certificate for an organisation: O=CN=org id, OU=role, SAN URI, clientAuth, 2 years."""
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(org_uri(org_id, role))]
    subject = _name(org_id, role_word(role), org_id)
    return _issue(ca, subject, names, ExtendedKeyUsageOID.CLIENT_AUTH, now)


def issue_service_certificate(ca: KeyAndCertificate, service: str, *, now: datetime | None = None) -> KeyAndCertificate:
    """A TLS server certificate for a network service: SAN DNS ``<service>``, ``localhost``, IP 127.0.0.1."""
    names: list[x509.GeneralName] = [
        x509.DNSName(service),
        x509.DNSName("localhost"),
        x509.IPAddress(IPv4Address("127.0.0.1")),
    ]
    subject = _name(NETWORK_ORGANISATION, "service", service)
    return _issue(ca, subject, names, ExtendedKeyUsageOID.SERVER_AUTH, now)


def issue_probe_certificate(ca: KeyAndCertificate, service: str, *, now: datetime | None = None) -> KeyAndCertificate:
    """A client certificate for a service's own health probe: clientAuth, SAN URI ``urn:referralnet:probe:<service>``.

    gRPC edges require a client certificate chaining to the network CA at the TLS layer, and the service's own
    certificate is a server certificate (serverAuth only), which TLS refuses as a client. This certificate
    passes the handshake, but it names no organisation (no ``urn:referralnet:org:`` URI) and is in no
    directory, so ``peer_identity`` refuses it: it reaches only what the edge serves without the identity
    check (gRPC health and reflection, ``EXEMPT_SERVICES``).
    """
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(f"{PROBE_URI_PREFIX}{service}")]
    subject = _name(NETWORK_ORGANISATION, "probe", f"{service} health probe")
    return _issue(ca, subject, names, ExtendedKeyUsageOID.CLIENT_AUTH, now)


def _issue(
    ca: KeyAndCertificate,
    subject: x509.Name,
    names: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    now: datetime | None,
) -> KeyAndCertificate:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_key_id = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    start = _start(now)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + LEAF_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id), critical=False)
        .sign(ca.private_key, hashes.SHA256())
    )
    return KeyAndCertificate(key, certificate)


def _key_usage(*, cert_sign: bool = False, digital_signature: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
