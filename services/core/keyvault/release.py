"""Releasing a subject's data key to one organisation, and opening it there (HPKE, RFC 9180, base mode).

Suite version 1 is DHKEM(X25519, HKDF-SHA256) + HKDF-SHA256 + AES-256-GCM, single-shot: an ephemeral X25519
key agreement with the recipient's static KEM key, HKDF, then AES-GCM over the 32-byte data key. The HPKE
``info`` binds a domain label, the suite version, the recipient org, its KEM key id, the data key id and the
purpose, so a released key opens only for that recipient, that key id and that purpose.

This is the mechanism only. Whether a release is allowed (consent, an active handoff) is decided by intake
before it calls :func:`release_key`. HPKE base mode does not authenticate the sender: deliver released keys
over an authenticated channel (intake's mTLS gRPC API or a signed custody event).

Errors when opening, checked in this order, never with partial output:

- UnsupportedVersionError: a suite version this code does not know;
- WrongRecipientError: the released key names another org or another KEM key id than the caller's;
- TamperedSectionError: HPKE decryption failed. The ids matched, so either a bound field or the ciphertext
  was altered, or the private key is not the one the KEM key id names. HPKE cannot tell these apart, and
  the AES-GCM tag failing is exactly what TamperedSectionError means;
- MalformedEnvelopeError: it decrypted, but not to a 32-byte key (the sender built it wrongly).
"""

from __future__ import annotations

from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from services.core.envelope.errors import (
    MalformedEnvelopeError,
    TamperedSectionError,
    UnsupportedVersionError,
    WrongRecipientError,
)
from services.core.keyvault.encoding import length_prefixed
from services.core.keyvault.keys import DATA_KEY_BYTES, DataKey
from services.core.keyvault.released import SUITE_X25519_SHA256_AES256GCM, ReleasedKey, encode_text

INFO_LABEL = b"referralnet/released-key"
_SUITES = {SUITE_X25519_SHA256_AES256GCM: Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)}


class DataKeySource(Protocol):
    """Anything that yields a data key by id (the :class:`~services.core.keyvault.vault.KeyVault`)."""

    def key(self, key_id: str) -> DataKey:
        """The key named ``key_id``; UnknownKeyError or ShreddedSubjectError otherwise."""
        ...


def release_key(  # noqa: PLR0917 -- the positional signature the intake service was promised
    vault: DataKeySource,
    key_id: str,
    recipient_org: str,
    recipient_kem_key_id: str,
    recipient_public_key: X25519PublicKey,
    purpose: str,
) -> ReleasedKey:
    """Encrypt data key ``key_id`` to ``recipient_public_key`` for ``purpose`` (suite version 1).

    ShreddedSubjectError for a shredded subject's key, UnknownKeyError for an unknown id.
    """
    version = SUITE_X25519_SHA256_AES256GCM
    info = release_info(version, recipient_org, recipient_kem_key_id, key_id, purpose)  # validates the fields
    data_key = vault.key(key_id)
    ciphertext = _SUITES[version].encrypt(data_key.key, recipient_public_key, info=info)
    return ReleasedKey(version, recipient_org, recipient_kem_key_id, key_id, purpose, ciphertext)


def open_released_key(
    released: ReleasedKey, my_org: str, my_kem_key_id: str, my_private_key: X25519PrivateKey
) -> DataKey:
    """Decrypt ``released`` as organisation ``my_org`` holding KEM key ``my_kem_key_id`` (see module errors)."""
    suite = _SUITES.get(released.suite_version)
    if suite is None:
        raise UnsupportedVersionError(f"released key suite version {released.suite_version} is not supported")
    if released.recipient_org != my_org or released.recipient_kem_key_id != my_kem_key_id:
        raise WrongRecipientError(
            f"key {released.key_id} was released to {released.recipient_org} key {released.recipient_kem_key_id},"
            f" not to {my_org} key {my_kem_key_id}"
        )
    info = release_info(
        released.suite_version, released.recipient_org, released.recipient_kem_key_id, released.key_id,
        released.purpose,
    )
    try:
        plaintext = suite.decrypt(released.ciphertext, my_private_key, info=info)
    except InvalidTag:
        error = TamperedSectionError(
            f"released key {released.key_id} does not decrypt: altered, or not sealed to this private key"
        )
        raise error from None
    if len(plaintext) != DATA_KEY_BYTES:
        raise MalformedEnvelopeError(f"released key {released.key_id} holds {len(plaintext)} bytes, not a key")
    return DataKey(released.key_id, plaintext)


def release_info(version: int, recipient_org: str, recipient_kem_key_id: str, key_id: str, purpose: str) -> bytes:
    """The HPKE ``info`` of a release: label, version and every cleartext field, length-prefixed."""
    return length_prefixed(
        INFO_LABEL,
        version.to_bytes(1, "big"),
        encode_text("recipient_org", recipient_org),
        encode_text("recipient_kem_key_id", recipient_kem_key_id),
        encode_text("key_id", key_id),
        encode_text("purpose", purpose),
    )
