"""The CA's signature over ``directory.json``, stored beside it as ``directory.json.sig``.

The signed message is a fixed context string followed by the exact bytes of ``directory.json`` (its
canonical form), so the signature cannot be mistaken for the CA's signature over anything else, such as a
certificate. Verification works on the raw file bytes before any parsing: one changed byte fails.
"""

from __future__ import annotations

import base64
import binascii
import json

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from services.core.identity.errors import DirectorySignatureError
from services.core.identity.pki import KeyAndCertificate, fingerprint

SIGNATURE_FORMAT_VERSION = 1
ALGORITHM = "ecdsa-p256-sha256"
CONTEXT = b"referralnet/directory-signature/v1\x00"


def sign_directory(directory_json: bytes, ca: KeyAndCertificate) -> bytes:
    """The ``directory.json.sig`` bytes: the CA's ECDSA P-256/SHA-256 signature and the CA's fingerprint."""
    signature = ca.private_key.sign(CONTEXT + directory_json, ec.ECDSA(hashes.SHA256()))
    document = {
        "format_version": SIGNATURE_FORMAT_VERSION,
        "algorithm": ALGORITHM,
        "signer_cert_sha256": fingerprint(ca.certificate),
        "signature": base64.b64encode(signature).decode(),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def verify_directory(directory_json: bytes, signature_file: bytes, ca_certificate: x509.Certificate) -> None:
    """Return if ``ca_certificate``'s key signed exactly ``directory_json``; ``DirectorySignatureError`` if not."""
    try:
        document = json.loads(signature_file)
        version, algorithm = document["format_version"], document["algorithm"]
        signer, signature = document["signer_cert_sha256"], base64.b64decode(document["signature"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise DirectorySignatureError("directory.json.sig is not a valid signature file") from None
    if version != SIGNATURE_FORMAT_VERSION or algorithm != ALGORITHM:
        raise DirectorySignatureError(f"unsupported directory signature ({version!r}, {algorithm!r})")
    if signer != fingerprint(ca_certificate):
        raise DirectorySignatureError("directory.json was signed by a different CA than the trusted one")
    public_key = ca_certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise DirectorySignatureError("the trusted CA certificate does not hold an ECDSA key")
    try:
        public_key.verify(signature, CONTEXT + directory_json, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        msg = "directory.json does not match the CA's signature: it was modified after the CA signed it"
        raise DirectorySignatureError(msg) from None
