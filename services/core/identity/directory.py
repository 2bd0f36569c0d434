"""The network directory: every organisation and network service, their roles, regions and public keys.

Pure domain: no file or network I/O. ``directory_codec`` turns it into ``directory.json`` and back;
``keystore.load_directory`` reads it from a network folder after checking the CA's signature.

Signing keys resolve to their producer: an organisation (``pol-mdd-01#sig-1`` -> ``pol-mdd-01``) or one of
the network's own services (``svc:referral#sig-1`` -> ``svc:referral``, service ``referral``): the id an
event header must carry as ``producer_org``. Key ids are namespaced by their owner, so no key can be
attributed to anyone else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import OrgRole, Region, ServiceType
from services.core.identity.errors import DirectoryError, UnknownKeyIdError, UnknownOrganisationError
from services.core.identity.records import KeyRecord, NetworkService, Organisation, check_slug, service_owner

__all__ = ["Directory", "KeyRecord", "NetworkService", "Organisation", "Signer"]


@dataclass(frozen=True)
class Signer:
    """Who owns a signing key: the producer id (org id, or ``svc:<service>``), the service if any, the key."""

    key_id: str
    org_id: str
    service: str | None
    public_key: Ed25519PublicKey


class Directory:
    """An immutable, validated directory with the lookups the services need (all O(1) or one scan)."""

    def __init__(
        self,
        organisations: Sequence[Organisation],
        services: Sequence[NetworkService],
        *,
        network_id: str,
        serial: int,
        issued_at: datetime,
    ) -> None:
        check_slug(network_id, "network_id")
        if serial < 1:
            raise DirectoryError("serial", "must be a positive integer")
        if issued_at.utcoffset() is None:
            raise DirectoryError("issued_at", "must carry a time zone (UTC)")
        self.network_id = network_id
        self.serial = serial
        self.issued_at = issued_at.astimezone(UTC).replace(microsecond=0)
        self.organisations = tuple(sorted(organisations, key=lambda org: org.org_id))
        self.services = tuple(sorted(services, key=lambda svc: svc.name))
        self._orgs: dict[str, Organisation] = {}
        self._services: dict[str, NetworkService] = {}
        self._signers: dict[str, Signer] = {}
        self._kem: dict[str, tuple[str, X25519PublicKey]] = {}
        self._by_fingerprint: dict[str, Organisation] = {}
        self._index(organisations, services)

    def _index(self, organisations: Sequence[Organisation], services: Sequence[NetworkService]) -> None:
        claimed: dict[bytes, str] = {}

        def claim(kind: bytes, value: bytes, field: str) -> None:
            if kind + value in claimed:
                raise DirectoryError(field, f"already used by {claimed[kind + value]}")
            claimed[kind + value] = field

        def claim_all(keys: dict[str, KeyRecord], fingerprint: str, path: str) -> None:
            claim(b"cert:", fingerprint.encode(), f"{path}.tls_cert_sha256")
            for name, record in keys.items():
                claim(b"id:", record.key_id.encode(), f"{path}.{name}.key_id")
                claim(b"key:", record.public_bytes, f"{path}.{name}.public_key")

        for index, org in enumerate(organisations):
            path = f"organisations[{index}]"
            if org.org_id in self._orgs:
                raise DirectoryError(f"{path}.org_id", f"duplicate organisation {org.org_id!r}")
            claim_all({"signing_key": org.signing_key, "kem_key": org.kem_key}, org.tls_cert_sha256, path)
            self._orgs[org.org_id] = org
            self._by_fingerprint[org.tls_cert_sha256] = org
            self._add_signer(org.signing_key, org.org_id, None)
            kem_public = X25519PublicKey.from_public_bytes(org.kem_key.public_bytes)
            self._kem[org.org_id] = (org.kem_key.key_id, kem_public)
        for index, svc in enumerate(services):
            path = f"services[{index}]"
            if svc.name in self._services:
                raise DirectoryError(f"{path}.name", f"duplicate service {svc.name!r}")
            claim_all({"signing_key": svc.signing_key}, svc.tls_cert_sha256, path)
            self._services[svc.name] = svc
            self._add_signer(svc.signing_key, service_owner(svc.name), svc.name)

    def _add_signer(self, record: KeyRecord, producer: str, service: str | None) -> None:
        public_key = Ed25519PublicKey.from_public_bytes(record.public_bytes)
        self._signers[record.key_id] = Signer(record.key_id, producer, service, public_key)

    def org(self, org_id: str) -> Organisation:
        """The organisation with this id; ``UnknownOrganisationError`` otherwise."""
        try:
            return self._orgs[org_id]
        except KeyError:
            raise UnknownOrganisationError(f"no organisation {org_id!r} in the directory") from None

    def service(self, name: str) -> NetworkService:
        """The network service with this name (intake, referral, audit, notify)."""
        try:
            return self._services[name]
        except KeyError:
            raise UnknownOrganisationError(f"no network service {name!r} in the directory") from None

    def signer(self, key_id: str) -> Signer:
        """Who owns a signing key id and its Ed25519 public key; ``UnknownKeyIdError`` otherwise."""
        try:
            return self._signers[key_id]
        except KeyError:
            raise UnknownKeyIdError(f"no signing key {key_id!r} in the directory") from None

    def signing_key(self, key_id: str) -> tuple[str, Ed25519PublicKey]:
        """``(producer id, public key)``: the org id, or ``svc:<service>`` for a network service's key.

        The envelope verifier requires the producer id to equal the header's ``producer_org``.
        ``UnknownKeyIdError`` (a KeyError) for an id not in the directory.
        """
        signer = self.signer(key_id)
        return signer.org_id, signer.public_key

    def kem_key(self, org_id: str) -> tuple[str, X25519PublicKey]:
        """``(key_id, public key)`` of the X25519 key that keys released to ``org_id`` are wrapped to."""
        self.org(org_id)
        return self._kem[org_id]

    def org_by_tls_fingerprint(self, sha256_hex: str) -> Organisation:
        """The organisation whose mTLS client certificate has this SHA-256 fingerprint."""
        try:
            return self._by_fingerprint[sha256_hex]
        except KeyError:
            raise UnknownOrganisationError("no organisation holds this certificate") from None

    def providers_of(
        self, service_type: ServiceType, region: Region, *, minor: bool | None = None
    ) -> tuple[Organisation, ...]:
        """Organisations offering ``service_type`` in ``region``, by org id.

        ``minor=True`` keeps those serving minors (``all`` or ``minors``), ``False`` those serving adults.
        """
        excluded = {True: "adults", False: "minors", None: ""}[minor]
        return tuple(
            org
            for org in self.organisations
            if service_type in org.services and region in org.regions and org.age_group != excluded
        )

    def by_role(self, role: OrgRole) -> tuple[Organisation, ...]:
        """Organisations with this role, by org id."""
        return tuple(org for org in self.organisations if org.role == role)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Directory):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def _identity(self) -> tuple[object, ...]:
        return (self.network_id, self.serial, self.issued_at, self.organisations, self.services)
