"""The development PKI: the CA, organisation and service certificates, and the mTLS peer extractor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from services.core.identity import pki
from services.core.identity.errors import CertificateRejectedError
from services.core.identity.peer import peer_identity
from services.core.identity.vocabulary import ROLES
from tests.unit.identity_factories import custom_leaf

E = TypeVar("E", bound=x509.ExtensionType)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ORG_SUBJECT = [
    (NameOID.ORGANIZATION_NAME, "alb-pun-01"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "shelter"),
    (NameOID.COMMON_NAME, "alb-pun-01"),
]


@pytest.fixture(scope="module")
def ca() -> pki.KeyAndCertificate:
    return pki.create_ca("referralnet-test", now=NOW)


@pytest.fixture(scope="module")
def shelter(ca) -> pki.KeyAndCertificate:
    return pki.issue_org_certificate(ca, "alb-pun-01", ROLES["shelter"], now=NOW)


def _days(certificate: x509.Certificate) -> float:
    return (certificate.not_valid_after_utc - certificate.not_valid_before_utc) / timedelta(days=1)


def _ext(certificate: x509.Certificate, kind: type[E]) -> x509.Extension[E]:
    return certificate.extensions.get_extension_for_class(kind)


def test_ca_is_a_self_signed_p256_ca_for_ten_years(ca):
    cert = ca.certificate
    cert.verify_directly_issued_by(cert)
    assert isinstance(ca.private_key.curve, ec.SECP256R1)
    constraints = _ext(cert, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = _ext(cert, x509.KeyUsage).value
    assert usage.key_cert_sign and not usage.digital_signature
    assert 3650 <= _days(cert) <= 3654
    assert cert.not_valid_before_utc <= NOW


def test_org_certificate_chains_to_the_ca_and_names_org_and_role(ca, shelter):
    cert = shelter.certificate
    cert.verify_directly_issued_by(ca.certificate)
    assert isinstance(shelter.private_key.curve, ec.SECP256R1)
    subject = {attribute.oid: attribute.value for attribute in cert.subject}
    assert subject == dict(ORG_SUBJECT)
    sans = _ext(cert, x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:referralnet:org:alb-pun-01:role:shelter"]
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not _ext(cert, x509.BasicConstraints).value.ca
    assert 729 <= _days(cert) <= 732


def test_service_certificate_is_a_server_certificate_for_its_name_and_loopback(ca):
    issued = pki.issue_service_certificate(ca, "intake", now=NOW)
    sans = _ext(issued.certificate, x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["intake", "localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [IPv4Address("127.0.0.1")]
    assert list(_ext(issued.certificate, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    builder = PolicyBuilder().store(Store([ca.certificate])).time(NOW)
    for name in (x509.DNSName("intake"), x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))):
        builder.build_server_verifier(name).verify(issued.certificate, [])


@pytest.mark.parametrize("encoding", [serialization.Encoding.PEM, serialization.Encoding.DER])
def test_peer_identity_reads_org_and_role_from_pem_or_der(ca, shelter, encoding):
    identity = peer_identity(shelter.certificate.public_bytes(encoding), ca.certificate, now=NOW)
    assert (identity.org_id, identity.role) == ("alb-pun-01", ROLES["shelter"])
    assert identity.tls_cert_sha256 == pki.fingerprint(shelter.certificate)


def test_peer_identity_rejects_a_certificate_from_another_ca(ca):
    other_ca = pki.create_ca("referralnet-test", now=NOW)
    impostor = pki.issue_org_certificate(other_ca, "alb-pun-01", ROLES["shelter"], now=NOW)
    with pytest.raises(CertificateRejectedError, match="not accepted"):
        peer_identity(impostor.certificate, ca.certificate, now=NOW)


@pytest.mark.parametrize("when", [NOW + timedelta(days=800), NOW - timedelta(days=1)], ids=["expired", "not yet"])
def test_peer_identity_rejects_a_certificate_outside_its_validity(ca, shelter, when):
    with pytest.raises(CertificateRejectedError):
        peer_identity(shelter.certificate, ca.certificate, now=when)


def test_peer_identity_rejects_a_server_certificate(ca):
    server = pki.issue_service_certificate(ca, "intake", now=NOW)
    with pytest.raises(CertificateRejectedError, match="EKU"):
        peer_identity(server.certificate, ca.certificate, now=NOW)


def test_probe_certificate_is_a_client_certificate_that_names_no_organisation(ca):
    probe = pki.issue_probe_certificate(ca, "intake", now=NOW)
    probe.certificate.verify_directly_issued_by(ca.certificate)
    assert list(_ext(probe.certificate, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    sans = _ext(probe.certificate, x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:referralnet:probe:intake"]
    with pytest.raises(CertificateRejectedError, match="SAN URI"):  # chains, but is nobody: only health answers it
        peer_identity(probe.certificate, ca.certificate, now=NOW)


def test_peer_identity_rejects_a_ca_signed_certificate_without_the_san(ca):
    no_san = custom_leaf(ca, ORG_SUBJECT, [], ExtendedKeyUsageOID.CLIENT_AUTH)
    with pytest.raises(CertificateRejectedError):
        peer_identity(no_san, ca.certificate)


@pytest.mark.parametrize(
    "uris",
    [
        ["https://example.invalid/alb-pun-01"],
        ["urn:referralnet:org:alb-pun-01:role:pirate"],
        ["urn:referralnet:org:alb-pun-01"],
        ["urn:referralnet:org:alb-pun-01:role:shelter", "urn:referralnet:org:alb-lim-01:role:shelter"],
        ["urn:referralnet:org:alb-pun-01:role:police"],
        ["urn:referralnet:org:alb-lim-01:role:shelter"],
    ],
    ids=["other uri", "unknown role", "no role", "two orgs", "role differs from OU", "org differs from CN"],
)
def test_peer_identity_rejects_a_missing_malformed_or_inconsistent_san(ca, uris):
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri) for uri in uris]
    leaf = custom_leaf(ca, ORG_SUBJECT, sans, ExtendedKeyUsageOID.CLIENT_AUTH)
    with pytest.raises(CertificateRejectedError):
        peer_identity(leaf, ca.certificate)


def test_a_well_formed_custom_leaf_is_accepted(ca):
    """The custom certificates above fail for the reason each test names, not because of the builder."""
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier("urn:referralnet:org:alb-pun-01:role:shelter")]
    leaf = custom_leaf(ca, ORG_SUBJECT, sans, ExtendedKeyUsageOID.CLIENT_AUTH)
    assert peer_identity(leaf, ca.certificate).org_id == "alb-pun-01"


@pytest.mark.parametrize("data", [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_peer_identity_rejects_bytes_that_are_not_a_certificate(ca, data):
    with pytest.raises(CertificateRejectedError, match="not a PEM or DER"):
        peer_identity(data, ca.certificate)
