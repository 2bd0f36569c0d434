"""``ReleasedKey``: a data key sealed to one organisation's KEM key, and its stable byte format.

Byte format, suite version 1 (all lengths unsigned big-endian; strings UTF-8; nothing may follow)::

    magic                 4 bytes   b"RNRK"
    suite_version         1 byte    0x01 = HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM
    recipient_org         1-byte length + 1..255 bytes
    recipient_kem_key_id  1-byte length + 1..255 bytes
    key_id                1-byte length + 35 bytes ("dk-" + 32 hex digits)
    purpose               1-byte length + 1..255 bytes
    ciphertext            2-byte length + HPKE enc (32 bytes) || AES-256-GCM ciphertext and tag (32 + 16 bytes)

The version byte comes first after the magic and selects both the HPKE suite and the layout after it, so a
future suite (say ML-KEM-768 + X25519) is a new version beside this one. Every field but the ciphertext is
also bound in the HPKE ``info`` (see ``release.py``), so none can be changed without decryption failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.core.envelope.errors import MalformedEnvelopeError, UnsupportedVersionError
from services.core.keyvault.keys import is_data_key_id

MAGIC = b"RNRK"
SUITE_X25519_SHA256_AES256GCM = 1
CIPHERTEXT_BYTES = {SUITE_X25519_SHA256_AES256GCM: 32 + 32 + 16}  # per suite version: enc + key + tag
_MAX_TEXT = 255
_TEXT_FIELDS = ("recipient_org", "recipient_kem_key_id", "key_id", "purpose")


@dataclass(frozen=True)
class ReleasedKey:
    """A data key encrypted (HPKE) to ``recipient_org``'s KEM key ``recipient_kem_key_id`` for ``purpose``."""

    suite_version: int
    recipient_org: str
    recipient_kem_key_id: str
    key_id: str
    purpose: str
    ciphertext: bytes = field(repr=False)

    def __post_init__(self) -> None:
        """Check every field: UnsupportedVersionError or MalformedEnvelopeError, never a half-valid object."""
        if self.suite_version not in CIPHERTEXT_BYTES:
            raise UnsupportedVersionError(f"released key suite version {self.suite_version} is not supported")
        for name in _TEXT_FIELDS:
            encode_text(name, getattr(self, name))
        if not is_data_key_id(self.key_id):
            raise MalformedEnvelopeError("released key: key_id is not a data key id")
        expected = CIPHERTEXT_BYTES[self.suite_version]
        if len(self.ciphertext) != expected:
            raise MalformedEnvelopeError(f"released key: ciphertext is {len(self.ciphertext)} bytes, not {expected}")

    def to_bytes(self) -> bytes:
        """The versioned byte form described in this module's docstring."""
        out = bytearray(MAGIC)
        out.append(self.suite_version)
        for text in (self.recipient_org, self.recipient_kem_key_id, self.key_id, self.purpose):
            raw = text.encode()
            out += len(raw).to_bytes(1, "big") + raw
        out += len(self.ciphertext).to_bytes(2, "big") + self.ciphertext
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> ReleasedKey:
        """Parse :meth:`to_bytes` output exactly.

        UnsupportedVersionError for another suite version; MalformedEnvelopeError for anything else that does
        not parse (bad magic, short, trailing bytes, bad UTF-8, lengths out of range).
        """
        reader = _Reader(bytes(data))
        if reader.take(len(MAGIC)) != MAGIC:
            raise MalformedEnvelopeError("not a released key (bad magic)")
        version = reader.take(1)[0]
        if version not in CIPHERTEXT_BYTES:
            raise UnsupportedVersionError(f"released key suite version {version} is not supported")
        org, kem_key_id, key_id, purpose = (reader.text(name) for name in _TEXT_FIELDS)
        ciphertext = reader.take(int.from_bytes(reader.take(2), "big"))
        reader.end()
        return cls(version, org, kem_key_id, key_id, purpose, ciphertext)


def encode_text(name: str, value: str) -> bytes:
    """``value`` as UTF-8, 1 to 255 bytes, or MalformedEnvelopeError naming the field."""
    try:
        raw = value.encode()
    except UnicodeEncodeError:
        raise MalformedEnvelopeError(f"released key: {name} is not valid Unicode text") from None
    if not 1 <= len(raw) <= _MAX_TEXT:
        raise MalformedEnvelopeError(f"released key: {name} must be 1 to {_MAX_TEXT} bytes of UTF-8")
    return raw


class _Reader:
    """Reads fields off the front of a byte string; running short is MalformedEnvelopeError."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, size: int) -> bytes:
        if self._pos + size > len(self._data):
            raise MalformedEnvelopeError("released key is truncated")
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    def text(self, name: str) -> str:
        raw = self.take(self.take(1)[0])
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise MalformedEnvelopeError(f"released key: {name} is not valid UTF-8") from None

    def end(self) -> None:
        if self._pos != len(self._data):
            raise MalformedEnvelopeError(f"released key has {len(self._data) - self._pos} trailing bytes")
