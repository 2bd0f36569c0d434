"""The entries of the network directory: organisations, network services and their public keys.

Every entry checks its own invariants when built, so an ``Organisation`` that exists is a valid one. A bad
value raises ``DirectoryError`` naming the field (relative to the entry; the codec adds the JSON path).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import OrgRole, Region, ServiceType
from services.core.identity.errors import DirectoryError
from services.core.identity.vocabulary import REGIONS, ROLES, SERVICE_TYPES

SERVICE_KEY_PREFIX = "svc:"
"""A network service's producer id is ``svc:<service>`` and its signing keys ``svc:<service>#sig-<n>``.

``:`` is not allowed in an org id, so a service can never be confused with an organisation, and each
service is its own producer: the notify service's key cannot sign events that claim to come from referral.
"""

NETWORK_SERVICES = ("intake", "referral", "audit", "notify")
LANGUAGES = ("es", "en")
AGE_GROUPS = ("all", "adults", "minors")
KEY_SIZE = 32

PROVIDER_SERVICE: dict[OrgRole, ServiceType] = {
    ROLES["shelter"]: SERVICE_TYPES["shelter"],
    ROLES["legal"]: SERVICE_TYPES["legal_aid"],
    ROLES["psychosocial"]: SERVICE_TYPES["psychosocial"],
    ROLES["health"]: SERVICE_TYPES["medical"],
    ROLES["child_protection"]: SERVICE_TYPES["child_protection"],
}
"""A provider role must offer (at least) its own service; an NGO may offer any; other roles offer none."""

NON_PROVIDER_ROLES = frozenset({ROLES["police"], ROLES["prosecutor"], ROLES["coordinator"], ROLES["auditor"]})

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
"""The only hosts a plain ``http://`` webhook may name (development on one machine)."""

WEBHOOK_URL_MAX = 2048
EMAIL_MAX = 254

_SLUG = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_SLUG_MAX = 32
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# Dot-atom local part and a host name: nothing that could open another header or name a second address.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")


def signing_key_id(owner: str, number: int = 1) -> str:
    """The id of an Ed25519 signing key: ``pol-mdd-01#sig-1``, or ``svc:intake#sig-1`` for a service."""
    return f"{owner}#sig-{number}"


def kem_key_id(org_id: str, number: int = 1) -> str:
    """The id of an organisation's X25519 key-encapsulation key: ``pol-mdd-01#kem-1``."""
    return f"{org_id}#kem-{number}"


def service_owner(service: str) -> str:
    """The producer id (``producer_org`` in event headers) and key owner of a network service: ``svc:intake``."""
    return f"{SERVICE_KEY_PREFIX}{service}"


def check_slug(value: str, field: str) -> None:
    """Org ids and service names: lower-case letters, digits and single hyphens, at most 32 characters."""
    if not (_SLUG.fullmatch(value) and len(value) <= _SLUG_MAX):
        raise DirectoryError(field, f"{value!r} is not a slug (a-z, 0-9, single '-', at most {_SLUG_MAX})")


def check_fingerprint(value: str, field: str) -> None:
    """A certificate fingerprint: SHA-256 of the DER bytes, 64 lower-case hex digits."""
    if not _FINGERPRINT.fullmatch(value):
        raise DirectoryError(field, "expected 64 lower-case hex digits (SHA-256 of the certificate's DER)")


def check_webhook_url(value: str, field: str) -> None:
    """``https://host[:port]/path``, or ``http://`` to a loopback host; no credentials, fragment or spaces."""
    if len(value) > WEBHOOK_URL_MAX or not value.isprintable() or any(char.isspace() for char in value):
        raise DirectoryError(field, f"must be at most {WEBHOOK_URL_MAX} printable characters without spaces")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError as error:
        raise DirectoryError(field, f"not a URL ({error})") from None
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise DirectoryError(field, "expected https://host[:port]/path")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise DirectoryError(field, "http:// is allowed only to 127.0.0.1, ::1 or localhost; use https://")
    if parts.username is not None or parts.password is not None:
        raise DirectoryError(field, "must not carry credentials (the directory is shared with every member)")
    if "#" in value:
        raise DirectoryError(field, "must not have a fragment")


def check_email(value: str, field: str) -> None:
    """One address ``local@domain``: no display name, spaces, newlines or second address; at most 254 chars."""
    if len(value) > EMAIL_MAX:
        raise DirectoryError(field, f"longer than {EMAIL_MAX} characters")
    if not _EMAIL.fullmatch(value):
        raise DirectoryError(field, "expected one address local@domain (no name, spaces, newlines or list)")


@dataclass(frozen=True)
class NotifyEndpoints:
    """An organisation's notification endpoints (at least one): a webhook URL, an e-mail address, or both.

    The webhook's secret is not here: the directory goes to every member (docs/adr/0014-notify.md).
    Errors name ``notify.webhook_url`` or ``notify.email``.
    """

    webhook_url: str = ""
    email: str = ""

    def __post_init__(self) -> None:
        if not (self.webhook_url or self.email):
            raise DirectoryError("notify", "give a webhook_url, an email or both (or no notify at all)")
        if self.webhook_url:
            check_webhook_url(self.webhook_url, "notify.webhook_url")
        if self.email:
            check_email(self.email, "notify.email")


@dataclass(frozen=True)
class KeyRecord:
    """A public key as the directory holds it: its id and its raw 32 bytes (Ed25519 or X25519)."""

    key_id: str
    public_bytes: bytes

    def check(self, owner: str, kind: str, field: str) -> None:
        """The id must be ``<owner>#<kind>-<n>`` (n >= 1) and the key exactly 32 bytes."""
        prefix = f"{owner}#{kind}-"
        number = self.key_id.removeprefix(prefix)
        if not self.key_id.startswith(prefix) or not number.isdigit() or number.startswith("0"):
            raise DirectoryError(f"{field}.key_id", f"{self.key_id!r} must be '{prefix}<n>' (n >= 1)")
        if len(self.public_bytes) != KEY_SIZE:
            raise DirectoryError(f"{field}.public_key", f"expected {KEY_SIZE} bytes, got {len(self.public_bytes)}")


@dataclass(frozen=True)
class Organisation:
    """A member of the network: who it is, what it does and where, and the keys that prove it is itself.

    ``display_name`` is for people (synthetic names only in development). ``services`` lists what a provider
    offers; ``age_group`` says whom it serves (``minors`` for a shelter for children and adolescents).
    ``tls_cert_sha256`` binds the org's mTLS client certificate to this entry. ``notify`` says where the
    notify service sends the org's notices (None: nowhere).
    """

    org_id: str
    display_name: str
    role: OrgRole
    regions: tuple[Region, ...]
    services: tuple[ServiceType, ...]
    signing_key: KeyRecord
    kem_key: KeyRecord
    tls_cert_sha256: str
    language: str = "es"
    age_group: str = "all"
    notify: NotifyEndpoints | None = None

    def __post_init__(self) -> None:
        check_slug(self.org_id, "org_id")
        if not self.display_name.strip():
            raise DirectoryError("display_name", "must not be empty")
        if self.role not in ROLES.values():
            raise DirectoryError("role", f"{self.role!r} is not a role")
        self._check_regions_and_services()
        self.signing_key.check(self.org_id, "sig", "signing_key")
        self.kem_key.check(self.org_id, "kem", "kem_key")
        check_fingerprint(self.tls_cert_sha256, "tls_cert_sha256")
        if self.language not in LANGUAGES:
            raise DirectoryError("language", f"{self.language!r} is not one of {', '.join(LANGUAGES)}")
        if self.age_group not in AGE_GROUPS:
            raise DirectoryError("age_group", f"{self.age_group!r} is not one of {', '.join(AGE_GROUPS)}")
        if self.notify is not None and not isinstance(self.notify, NotifyEndpoints):
            raise DirectoryError("notify", "expected NotifyEndpoints or None")

    def _check_regions_and_services(self) -> None:
        if not self.regions:
            raise DirectoryError("regions", "an organisation serves at least one region")
        for field, values, valid in (("regions", self.regions, REGIONS), ("services", self.services, SERVICE_TYPES)):
            for index, value in enumerate(values):
                if value not in valid.values() or values.index(value) != index:
                    raise DirectoryError(f"{field}[{index}]", f"{value!r} is not valid here, or is repeated")
        if self.role in NON_PROVIDER_ROLES and self.services:
            raise DirectoryError("services", "this role does not provide services; leave it empty")
        own = PROVIDER_SERVICE.get(self.role)
        if own is not None and own not in self.services:
            raise DirectoryError("services", "a provider must offer the service of its role")

    @property
    def is_provider(self) -> bool:
        """True when the organisation receives handoffs for at least one service."""
        return bool(self.services)


@dataclass(frozen=True)
class NetworkService:
    """One of the network's own services; it signs the events it produces with its own Ed25519 key."""

    name: str
    signing_key: KeyRecord
    tls_cert_sha256: str

    def __post_init__(self) -> None:
        check_slug(self.name, "name")
        self.signing_key.check(service_owner(self.name), "sig", "signing_key")
        check_fingerprint(self.tls_cert_sha256, "tls_cert_sha256")
