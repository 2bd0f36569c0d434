"""A network folder on disk, and the loaders every service and client uses to read it.

Layout (folders 0700, private keys PKCS#8 PEM 0600, public files 0644)::

    ca/ca.pem  ca/ca.key
    orgs/<org_id>/signing.key  kem.key  tls.key  tls.pem
    services/<service>/signing.key  tls.key  tls.pem  probe.key  probe.pem
    directory.json  directory.json.sig
    orgs/<org_id>/webhook.key  notify/webhook-secrets/<org_id>.key   (webhook_secrets.py, when set)

Loaders refuse a private key that group or others can read (as ssh does), a key of the wrong type, and a
directory whose CA signature does not verify.
"""

from __future__ import annotations

import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.core.identity.directory import Directory
from services.core.identity.directory_codec import parse_directory
from services.core.identity.directory_signature import verify_directory
from services.core.identity.errors import DirectoryError, KeystoreError
from services.core.identity.pki import KeyAndCertificate
from services.core.identity.records import check_slug

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644


class NetworkLayout:
    """Where each file of a network folder lives."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.ca_dir = self.root / "ca"
        self.ca_certificate = self.ca_dir / "ca.pem"
        self.ca_key = self.ca_dir / "ca.key"
        self.orgs_dir = self.root / "orgs"
        self.services_dir = self.root / "services"
        self.directory = self.root / "directory.json"
        self.directory_signature = self.root / "directory.json.sig"

    def org_dir(self, org_id: str) -> Path:
        """``orgs/<org_id>`` (the id is checked, so it can never climb out of the folder)."""
        return self.orgs_dir / _safe(org_id)

    def service_dir(self, service: str) -> Path:
        """``services/<service>``."""
        return self.services_dir / _safe(service)


@dataclass(frozen=True)
class TlsFiles:
    """PEM bytes as ``grpc.ssl_channel_credentials`` / ``grpc.ssl_server_credentials`` take them."""

    private_key: bytes
    certificate_chain: bytes
    root_certificates: bytes


def _safe(name: str) -> str:
    try:
        check_slug(name, "name")
    except DirectoryError:
        raise KeystoreError(f"{name!r} is not a valid org id or service name") from None
    return name


def make_private_dir(path: Path) -> None:
    """Create the folder ``path`` (its parent must exist) as 0700, whatever the umask."""
    path.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    path.chmod(PRIVATE_DIR_MODE)


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write a new file created with ``mode`` from the start (never briefly readable); never overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def replace_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` atomically: a new file (``write_file``) beside it, renamed over ``path``.

    A reader sees the old content or the new, never a partial file; the old file may or may not exist.
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    write_file(temporary, data, mode)
    try:
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_private_key(path: Path, key: PrivateKeyTypes) -> None:
    """A private key as unencrypted PKCS#8 PEM, mode 0600 (development network: see ADR 4)."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_file(path, pem, PRIVATE_FILE_MODE)


def write_certificate(path: Path, certificate: x509.Certificate) -> None:
    """A certificate as PEM, mode 0644."""
    write_file(path, certificate.public_bytes(serialization.Encoding.PEM), PUBLIC_FILE_MODE)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeystoreError(f"{path} is missing: is this a network folder (referralnet network init)?") from None
    except OSError as exc:
        raise KeystoreError(f"{path} cannot be read: {exc.strerror}") from None


def _read_private_key(path: Path) -> PrivateKeyTypes:
    data = _read(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeystoreError(f"{path} is readable by others (mode {mode:04o}); run: chmod 600 {path}")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeystoreError(f"{path} is not an unencrypted PKCS#8 PEM private key") from None


def _wrong_type(path: Path, key: PrivateKeyTypes, expected: str) -> KeystoreError:
    return KeystoreError(f"{path} holds a {type(key).__name__}, expected an {expected} private key")


def _ec_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = _read_private_key(path)
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise _wrong_type(path, key, "ECDSA P-256")


def _ed25519_key(path: Path) -> Ed25519PrivateKey:
    key = _read_private_key(path)
    if isinstance(key, Ed25519PrivateKey):
        return key
    raise _wrong_type(path, key, "Ed25519")


def load_ca_certificate(folder: Path) -> x509.Certificate:
    """The network CA certificate (``ca/ca.pem``)."""
    path = NetworkLayout(folder).ca_certificate
    try:
        return x509.load_pem_x509_certificate(_read(path))
    except ValueError:
        raise KeystoreError(f"{path} is not a PEM certificate") from None


def load_ca(folder: Path) -> KeyAndCertificate:
    """The CA's private key and certificate (to issue certificates or re-sign the directory)."""
    key = _ec_key(NetworkLayout(folder).ca_key)
    return KeyAndCertificate(key, load_ca_certificate(folder))


def load_directory(folder: Path, *, ca_certificate: x509.Certificate | None = None) -> Directory:
    """The directory, after verifying the CA signature over ``directory.json``'s exact bytes.

    ``ca_certificate`` is the trust anchor; it defaults to the folder's ``ca/ca.pem``. A service that keeps
    its own copy of the CA certificate should pass it, so that replacing the folder's CA does not help.
    """
    layout = NetworkLayout(folder)
    data, signature = _read(layout.directory), _read(layout.directory_signature)
    verify_directory(data, signature, ca_certificate or load_ca_certificate(folder))
    return parse_directory(data)


def load_org_signing_key(folder: Path, org_id: str) -> Ed25519PrivateKey:
    """The organisation's Ed25519 signing key (key id ``<org_id>#sig-1``)."""
    return _ed25519_key(NetworkLayout(folder).org_dir(org_id) / "signing.key")


def load_org_kem_key(folder: Path, org_id: str) -> X25519PrivateKey:
    """The organisation's X25519 key-encapsulation key (key id ``<org_id>#kem-1``)."""
    path = NetworkLayout(folder).org_dir(org_id) / "kem.key"
    key = _read_private_key(path)
    if isinstance(key, X25519PrivateKey):
        return key
    raise _wrong_type(path, key, "X25519")


def load_service_signing_key(folder: Path, service: str) -> Ed25519PrivateKey:
    """A network service's Ed25519 signing key (key id ``svc:<service>#sig-1``)."""
    return _ed25519_key(NetworkLayout(folder).service_dir(service) / "signing.key")


def _tls(folder: Path, directory: Path, *, name: str = "tls") -> TlsFiles:
    _ec_key(directory / f"{name}.key")
    return TlsFiles(
        private_key=_read(directory / f"{name}.key"),
        certificate_chain=_read(directory / f"{name}.pem"),
        root_certificates=_read(NetworkLayout(folder).ca_certificate),
    )


def load_org_tls(folder: Path, org_id: str) -> TlsFiles:
    """The organisation's mTLS client key, certificate and the CA certificate, as PEM bytes."""
    return _tls(folder, NetworkLayout(folder).org_dir(org_id))


def load_service_tls(folder: Path, service: str) -> TlsFiles:
    """A network service's TLS server key, certificate and the CA certificate, as PEM bytes."""
    return _tls(folder, NetworkLayout(folder).service_dir(service))


def load_service_probe_tls(folder: Path, service: str) -> TlsFiles:
    """A service's health-probe client key and certificate (``probe.key``, ``probe.pem``) and the CA, as PEM."""
    return _tls(folder, NetworkLayout(folder).service_dir(service), name="probe")
