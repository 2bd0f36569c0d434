"""The exact bytes that are hashed, signed and used as associated data (format version 1).

docs/envelope-format.md describes the same layouts for other implementations; the known-answer vectors
under tests/vectors/ pin them. Integers are unsigned big-endian; ``||`` is concatenation; every hash
input starts with a NUL-terminated domain label so bytes of one role can never be taken for another.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from enum import IntEnum

FORMAT_VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
DIGEST_BYTES = 32
SIGNATURE_BYTES = 64
KEY_BYTES = 32
MAX_KEY_ID_BYTES = 255

HEADER_DOMAIN = b"referralnet/envelope/v1/header\x00"
SECTION_DOMAIN = b"referralnet/envelope/v1/section\x00"
SECTION_AD_DOMAIN = b"referralnet/envelope/v1/section-ad\x00"
SIGN_DOMAIN = b"referralnet/envelope/v1/sign\x00"
CANONICAL_DOMAIN = b"referralnet/envelope/v1/canonical\x00"


class SectionKind(IntEnum):
    """What a sealed section holds (the numbers are the proto's SectionKind)."""

    ROUTING = 1
    CASE_FILE = 2


def header_digest(header_bytes: bytes) -> bytes:
    """``SHA-256(HEADER_DOMAIN || header_bytes)``."""
    return hashlib.sha256(HEADER_DOMAIN + header_bytes).digest()


@functools.lru_cache(maxsize=8192)
def key_id_field(key_id: str) -> bytes:
    """``u8(len(key_id_utf8)) || key_id_utf8`` (key ids are at most 255 bytes)."""
    raw = key_id.encode()
    return bytes((len(raw),)) + raw


def section_associated_data(header_bytes: bytes, kind: int, key_id: str) -> bytes:
    """AES-GCM associated data of a section: ``SECTION_AD_DOMAIN || u8(kind) || key_id_field || header_bytes``.

    Binding the whole header means a section moved to another event, stream, position or producer
    does not decrypt; binding the kind and key id means it cannot pose as another section.
    """
    return SECTION_AD_DOMAIN + bytes((kind,)) + key_id_field(key_id) + header_bytes


def section_digest(kind: int, key_id: str, nonce: bytes, ciphertext: bytes) -> bytes:
    """``SHA-256(SECTION_DOMAIN || u8(kind) || key_id_field || nonce || ciphertext_with_tag)``."""
    digest = hashlib.sha256(SECTION_DOMAIN + bytes((kind,)) + key_id_field(key_id) + nonce)
    digest.update(ciphertext)
    return digest.digest()


def signing_input(header_digest_bytes: bytes, section_digests: list[bytes], version: int = FORMAT_VERSION) -> bytes:
    """What Ed25519 signs: ``SIGN_DOMAIN || u8(version) || header_digest || u8(n) || section_digest...``.

    ``version`` is 1 for every real envelope; a benchmark network's null-crypto envelope puts the low byte
    of its own version there (:mod:`services.core.envelope.benchmark`).
    """
    return (SIGN_DOMAIN + bytes((version & 0xFF,)) + header_digest_bytes + bytes((len(section_digests),))
            + b"".join(section_digests))


def canonical_bytes(signing_input_bytes: bytes, signature: bytes) -> bytes:
    """An envelope's canonical bytes: ``CANONICAL_DOMAIN || u16(len(signing_input)) || signing_input || signature``.

    They commit to every byte of the envelope (through the digests) and do not depend on how protobuf
    encoded the outer message, so two implementations agree on them. Audit chains their hash; after
    crypto-shredding they are unchanged, because they are built over ciphertext.
    """
    return CANONICAL_DOMAIN + struct.pack(">H", len(signing_input_bytes)) + signing_input_bytes + signature


def canonical_hash(signing_input_bytes: bytes, signature: bytes) -> bytes:
    """``SHA-256(canonical_bytes)``: the envelope's identity for audit."""
    return hashlib.sha256(canonical_bytes(signing_input_bytes, signature)).digest()
