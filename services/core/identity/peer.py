"""Who is on the other end of an mTLS connection: (org id, role) from a peer certificate, verified.

gRPC servers call ``peer_identity`` with the PEM gRPC exposes (``context.auth_context()["x509_pem_cert"][0]``)
to authorise a call. The TLS handshake has already checked the chain, but this function re-checks it
against the network CA with cryptography's RFC 5280 verifier (chain, validity period, clientAuth EKU) so
it is safe on its own, then reads the org and role from the single ``urn:referralnet:org:`` SAN URI and
requires the subject to agree. Authorisation must also look the org up in the signed directory
(``Directory.org_by_tls_fingerprint``): an org removed from the directory keeps a certificate that chains.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import OrgRole
from services.core.identity.errors import CertificateRejectedError, DirectoryError
from services.core.identity.pki import ORG_URI_PREFIX, fingerprint
from services.core.identity.records import check_slug
from services.core.identity.vocabulary import parse_role, role_word


@dataclass(frozen=True)
class PeerIdentity:
    """A verified peer: its org id, role and certificate fingerprint (to match the directory entry)."""

    org_id: str
    role: OrgRole
    tls_cert_sha256: str


def load_certificate(data: bytes) -> x509.Certificate:
    """A certificate from PEM or DER bytes; ``CertificateRejectedError`` if it is neither."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise CertificateRejectedError("not a PEM or DER X.509 certificate") from None


def peer_identity(
    peer_certificate: bytes | x509.Certificate,
    ca_certificate: x509.Certificate,
    *,
    now: datetime | None = None,
) -> PeerIdentity:
    """(org id, role) of a client certificate issued by ``ca_certificate``; ``CertificateRejectedError`` if not."""
    leaf = peer_certificate if isinstance(peer_certificate, x509.Certificate) else load_certificate(peer_certificate)
    verifier = PolicyBuilder().store(Store([ca_certificate])).time(now or datetime.now(UTC)).build_client_verifier()
    try:
        verified = verifier.verify(leaf, [])
    except VerificationError as exc:
        raise CertificateRejectedError(f"certificate not accepted by the network CA: {exc}") from None
    uris = [
        name.value
        for name in verified.subjects or []
        if isinstance(name, x509.UniformResourceIdentifier) and name.value.startswith(ORG_URI_PREFIX)
    ]
    if len(uris) != 1:
        raise CertificateRejectedError(f"expected exactly one {ORG_URI_PREFIX}<org>:role:<role> SAN URI")
    org_id, role = _parse_org_uri(uris[0])
    _require_subject(leaf, org_id, role)
    return PeerIdentity(org_id, role, fingerprint(leaf))


def _parse_org_uri(uri: str) -> tuple[str, OrgRole]:
    org_id, separator, word = uri.removeprefix(ORG_URI_PREFIX).partition(":role:")
    try:
        if not separator:
            raise ValueError(uri)
        check_slug(org_id, "org_id")
        return org_id, parse_role(word)
    except (DirectoryError, ValueError):
        raise CertificateRejectedError("malformed organisation SAN URI") from None


def _require_subject(leaf: x509.Certificate, org_id: str, role: OrgRole) -> None:
    def only(oid: x509.ObjectIdentifier) -> str | None:
        values = leaf.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if len(values) == 1 else None

    expected = {NameOID.ORGANIZATION_NAME: org_id, NameOID.COMMON_NAME: org_id}
    expected[NameOID.ORGANIZATIONAL_UNIT_NAME] = role_word(role)
    if any(only(oid) != value for oid, value in expected.items()):
        raise CertificateRejectedError("certificate subject (O, OU, CN) does not match its SAN URI")
