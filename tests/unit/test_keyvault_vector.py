"""Known answer for the ReleasedKey v1 byte format (tests/vectors/released_key_v1.json), and its mutations.

HPKE encryption is randomised, so the vector was produced once by ``release_key``; what it pins is the
byte layout, the HPKE ``info`` encoding and the suite: a change to any of them breaks these tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.core.envelope.errors import (
    EnvelopeError,
    MalformedEnvelopeError,
    TamperedSectionError,
    UnsupportedVersionError,
    WrongRecipientError,
)
from services.core.keyvault.release import open_released_key, release_info
from services.core.keyvault.released import ReleasedKey

VECTOR: dict[str, Any] = json.loads((Path(__file__).parents[1] / "vectors" / "released_key_v1.json").read_text())
DATA = bytes.fromhex(VECTOR["released_key_hex"])
ME = (VECTOR["recipient_org"], VECTOR["recipient_kem_key_id"])
PRIVATE = X25519PrivateKey.from_private_bytes(bytes.fromhex(VECTOR["recipient_private_key_hex"]))


def _open(data: bytes, private: X25519PrivateKey = PRIVATE) -> bytes:
    return open_released_key(ReleasedKey.from_bytes(data), *ME, private).key


def test_vector_opens_to_the_expected_key() -> None:
    released = ReleasedKey.from_bytes(DATA)
    assert (released.suite_version, released.recipient_org, released.recipient_kem_key_id) == (1, *ME)
    assert (released.key_id, released.purpose) == (VECTOR["key_id"], VECTOR["purpose"])
    assert open_released_key(released, *ME, PRIVATE).key_id == VECTOR["key_id"]
    assert _open(DATA) == bytes.fromhex(VECTOR["data_key_hex"])


def test_vector_layout_and_info_are_stable() -> None:
    assert ReleasedKey.from_bytes(DATA).to_bytes() == DATA
    assert DATA[:5] == b"RNRK\x01"
    released = ReleasedKey.from_bytes(DATA)
    texts = (released.recipient_org, released.recipient_kem_key_id, released.key_id, released.purpose)
    assert len(DATA) == 4 + 1 + sum(1 + len(text.encode()) for text in texts) + 2 + 80
    assert DATA[-82:-80] == b"\x00\x50"  # the ciphertext's 2-byte length: enc 32 + key 32 + tag 16
    info = release_info(1, *ME, VECTOR["key_id"], VECTOR["purpose"])
    assert info.hex() == VECTOR["info_hex"]
    public = PRIVATE.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert public.hex() == VECTOR["recipient_public_key_hex"]


def test_every_single_byte_mutation_fails() -> None:
    for index in range(len(DATA)):
        for mask in (0x01, 0x80, 0xFF):
            altered = bytearray(DATA)
            altered[index] ^= mask
            with pytest.raises(EnvelopeError):
                _open(bytes(altered))


def test_truncated_or_extended_copies_fail() -> None:
    for size in range(len(DATA)):
        with pytest.raises(MalformedEnvelopeError):
            _open(DATA[:size])
    with pytest.raises(MalformedEnvelopeError):
        _open(DATA + b"\x00")


def test_other_version_other_recipient_other_key_fail() -> None:
    with pytest.raises(UnsupportedVersionError):
        _open(DATA[:4] + b"\x02" + DATA[5:])
    with pytest.raises(WrongRecipientError):
        open_released_key(ReleasedKey.from_bytes(DATA), "org-someone-else", ME[1], PRIVATE)
    with pytest.raises(TamperedSectionError):
        _open(DATA, X25519PrivateKey.generate())
