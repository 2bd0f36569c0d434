"""One exception family for everything that can go wrong sealing, verifying, opening or releasing keys.

Every error names a precise reason. None of them ever carries plaintext, key material or personal data:
only ids (event id, key id, org id) that are already cleartext on the wire.
"""

from __future__ import annotations


class EnvelopeError(Exception):
    """Base class: an envelope or a key could not be used. Never fall back to plaintext after one."""

    reason = "envelope_error"


class UnsupportedVersionError(EnvelopeError):
    """The envelope format, section kind, or suite version is not one this code understands."""

    reason = "unsupported_version"


class MalformedEnvelopeError(EnvelopeError):
    """The bytes do not parse as an envelope, or a field is missing or out of range."""

    reason = "malformed"


class TamperedHeaderError(EnvelopeError):
    """The header bytes do not match the header digest the producer signed."""

    reason = "tampered_header"


class TamperedSectionError(EnvelopeError):
    """A sealed section does not match its signed digest, or its AES-GCM tag does not verify."""

    reason = "tampered_section"


class BadSignatureError(EnvelopeError):
    """The Ed25519 signature does not verify, or the signing key is not the producing organisation's."""

    reason = "bad_signature"


class UnknownKeyError(EnvelopeError):
    """A signing key, data key or organisation key id is not known here."""

    reason = "unknown_key"


class WrongRecipientError(EnvelopeError):
    """A released key is being opened by an organisation (or with a key) it was not released to."""

    reason = "wrong_recipient"


class ShreddedSubjectError(EnvelopeError):
    """The subject's keys were destroyed (crypto-shredding): what they protected is unreadable for good."""

    reason = "shredded_subject"
