"""Known-answer vectors of the envelope (tests/vectors/envelope_v1.json): reproduce, verify, open, mutate.

The intermediate values are recomputed here from the layouts written out byte by byte (hashlib, AES-GCM,
Ed25519 directly), not through services.core.envelope.format, so the vectors pin the documented format and
not merely whatever the code does today.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.core.envelope.envelope import EnvelopeSigner, Sealer
from services.core.envelope.errors import (
    BadSignatureError,
    MalformedEnvelopeError,
    TamperedHeaderError,
    TamperedSectionError,
    UnknownKeyError,
)
from services.core.envelope.format import SectionKind
from services.core.envelope.header import EventHeader
from services.core.envelope.verification import Opener, Verifier
from services.core.generated.referralnet.envelope.v1 import envelope_pb2
from services.core.keyvault.keys import DataKey
from tests.unit.envelope_support import DictResolver, flip, new_data_key
from tests.vectors import generate_envelope_vectors

ROOT = Path(__file__).parents[2]
VECTOR_FILE = ROOT / "tests" / "vectors" / "envelope_v1.json"
DOCUMENT: dict[str, Any] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
VECTORS: list[dict[str, Any]] = DOCUMENT["vectors"]
NAMES = [vector["name"] for vector in VECTORS]


def _hex(value: str) -> bytes:
    return bytes.fromhex(value)


def _private_key(vector) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_hex(vector["signer"]["ed25519_seed_hex"]))


def _keys(vector) -> dict[SectionKind, DataKey]:
    return {SectionKind(s["kind"]): DataKey(s["key_id"], _hex(s["key_hex"])) for s in vector["sections"]}


def _plaintexts(vector) -> dict[SectionKind, bytes]:
    return {SectionKind(s["kind"]): _hex(s["plaintext_hex"]) for s in vector["sections"]}


def _verifier(vector) -> Verifier:
    resolver = DictResolver()
    signer = vector["signer"]
    resolver.add(signer["signing_key_id"], signer["org_id"], _private_key(vector).public_key())
    return Verifier(resolver, workers=1)


def _wire(vector) -> bytes:
    return _hex(vector["expected"]["wire_hex"])


def test_the_vectors_cover_the_shapes_that_matter():
    assert DOCUMENT["format_version"] == 1
    assert NAMES == ["routing-only", "routing-and-case-file", "with-trace-context"]
    kinds = [tuple(s["kind"] for s in vector["sections"]) for vector in VECTORS]
    assert kinds == [(1,), (1, 2), (1, 2)]
    assert [bool(vector["header"]["traceparent"]) for vector in VECTORS] == [False, False, True]
    assert len({vector["signer"]["signing_key_id"] for vector in VECTORS}) == 2
    for vector in VECTORS:
        for section in vector["sections"]:
            assert section["plaintext_text"].encode() == _hex(section["plaintext_hex"])
    assert "Persona Sint\u00e9tica 001" in VECTORS[1]["sections"][1]["plaintext_text"]


@pytest.mark.parametrize("vector", VECTORS, ids=NAMES)
def test_resealing_the_inputs_reproduces_the_wire_byte_for_byte(vector):
    signer = EnvelopeSigner(vector["signer"]["org_id"], vector["signer"]["signing_key_id"], _private_key(vector))
    nonces = b"".join(_hex(s["nonce_hex"]) for s in vector["sections"])
    requested: list[int] = []

    def fixed_nonces(size: int) -> bytes:
        requested.append(size)
        return nonces

    keys, plaintexts = _keys(vector), _plaintexts(vector)
    wire = Sealer(signer, nonces=fixed_nonces).seal(
        EventHeader(**vector["header"]), {kind: (keys[kind], plaintexts[kind]) for kind in keys})
    assert requested == [12 * len(keys)]
    assert wire.hex() == vector["expected"]["wire_hex"]


@pytest.mark.parametrize("vector", VECTORS, ids=NAMES)
def test_every_intermediate_value_follows_the_documented_layout(vector):
    expected = vector["expected"]
    header_bytes = EventHeader(**vector["header"]).encode()
    assert header_bytes.hex() == expected["header_bytes_hex"]
    header_digest = hashlib.sha256(b"referralnet/envelope/v1/header\x00" + header_bytes).digest()
    assert header_digest.hex() == expected["header_digest_hex"]

    digests = []
    assert len(vector["sections"]) == len(expected["sections"]) == len(expected["section_digests_hex"])
    for section, want, digest_hex in zip(vector["sections"], expected["sections"], expected["section_digests_hex"],
                                         strict=True):
        kind, key_id, nonce = bytes([section["kind"]]), section["key_id"].encode(), _hex(section["nonce_hex"])
        key_id_field = bytes([len(key_id)]) + key_id
        associated = b"referralnet/envelope/v1/section-ad\x00" + kind + key_id_field + header_bytes
        assert associated.hex() == want["associated_data_hex"]
        ciphertext = AESGCM(_hex(section["key_hex"])).encrypt(nonce, _hex(section["plaintext_hex"]), associated)
        assert ciphertext.hex() == want["ciphertext_hex"]
        digest = hashlib.sha256(b"referralnet/envelope/v1/section\x00" + kind + key_id_field + nonce + ciphertext)
        assert digest.hexdigest() == want["digest_hex"] == digest_hex
        digests.append(digest.digest())

    signing_input = (b"referralnet/envelope/v1/sign\x00" + b"\x01" + header_digest + bytes([len(digests)])
                     + b"".join(digests))
    assert signing_input.hex() == expected["signing_input_hex"]
    private_key = _private_key(vector)
    signature = private_key.sign(signing_input)  # Ed25519 (RFC 8032) is deterministic
    assert signature.hex() == expected["signature_hex"]
    private_key.public_key().verify(signature, signing_input)

    canonical = b"referralnet/envelope/v1/canonical\x00" + struct.pack(">H", len(signing_input)) + signing_input
    canonical += signature
    assert canonical.hex() == expected["canonical_bytes_hex"]
    assert hashlib.sha256(canonical).hexdigest() == expected["canonical_hash_hex"]

    sections = [envelope_pb2.SealedSection(kind=s["kind"], key_id=s["key_id"], nonce=_hex(s["nonce_hex"]),
                                           ciphertext=_hex(w["ciphertext_hex"]), digest=_hex(w["digest_hex"]))
                for s, w in zip(vector["sections"], expected["sections"], strict=True)]
    envelope = envelope_pb2.Envelope(format_version=1, header=header_bytes, header_digest=header_digest,
                                     sections=sections, signature=signature)
    assert envelope.SerializeToString(deterministic=True).hex() == expected["wire_hex"]


@pytest.mark.parametrize("vector", VECTORS, ids=NAMES)
def test_the_committed_wire_verifies_and_opens_to_the_plaintexts(vector):
    verified = _verifier(vector).verify(_wire(vector))
    assert verified.header == EventHeader(**vector["header"])
    assert verified.header_bytes.hex() == vector["expected"]["header_bytes_hex"]
    keys, plaintexts = _keys(vector), _plaintexts(vector)
    assert {kind: Opener().open(verified, kind, key) for kind, key in keys.items()} == plaintexts
    assert verified.signing_input.hex() == vector["expected"]["signing_input_hex"]
    assert verified.canonical_bytes().hex() == vector["expected"]["canonical_bytes_hex"]
    assert verified.canonical_hash().hex() == vector["expected"]["canonical_hash_hex"]


@pytest.mark.parametrize("vector", VECTORS, ids=NAMES)
def test_each_mutation_of_a_committed_vector_fails_with_the_right_error(vector):
    wire, verifier, keys = _wire(vector), _verifier(vector), _keys(vector)
    header_at = wire.find(_hex(vector["expected"]["header_bytes_hex"]))
    signature_at = wire.find(_hex(vector["expected"]["signature_hex"]))
    assert header_at > 0
    assert signature_at == len(wire) - 64

    with pytest.raises(TamperedHeaderError):
        verifier.verify(flip(wire, header_at + 40))
    for section in vector["expected"]["sections"]:
        ciphertext_at = wire.find(_hex(section["ciphertext_hex"]))
        assert ciphertext_at > 0
        for offset in (0, len(section["ciphertext_hex"]) // 2 - 1):  # first byte, last byte of the tag
            with pytest.raises(TamperedSectionError):
                verifier.verify(flip(wire, ciphertext_at + offset, 0x01))
    for offset in (0, 31, 32, 63):  # R and S halves of the signature
        with pytest.raises(BadSignatureError):
            verifier.verify(flip(wire, signature_at + offset, 0x01))
    for size in (0, 1, header_at + 3, len(wire) // 2, len(wire) - 64, len(wire) - 1):
        with pytest.raises(MalformedEnvelopeError):
            verifier.verify(wire[:size])

    other_signer = DictResolver()
    other_signer.add(vector["signer"]["signing_key_id"], vector["signer"]["org_id"],
                     Ed25519PrivateKey.generate().public_key())
    with pytest.raises(BadSignatureError):
        Verifier(other_signer, workers=1).verify(wire)

    verified = verifier.verify(wire)
    for kind, key in keys.items():
        with pytest.raises(TamperedSectionError):
            Opener().open(verified, kind, DataKey(key.key_id, os.urandom(32)))
        with pytest.raises(UnknownKeyError):
            Opener().open(verified, kind, new_data_key())


def test_the_generator_is_reproducible_and_the_committed_file_is_current(tmp_path):
    fresh = generate_envelope_vectors.render()
    assert fresh == generate_envelope_vectors.render()
    assert fresh == VECTOR_FILE.read_text(encoding="utf-8"), (
        "tests/vectors/envelope_v1.json is stale: the envelope format changed. If that is intended, bump the "
        "format version or regenerate with: .venv/bin/python -m tests.vectors.generate_envelope_vectors")
    outputs = [tmp_path / "first.json", tmp_path / "second.json"]
    for output, hash_seed in zip(outputs, ("1", "2"), strict=True):  # separate processes, different hash seeds
        subprocess.run([sys.executable, "-m", "tests.vectors.generate_envelope_vectors", "--output", str(output)],
                       cwd=ROOT, check=True, timeout=60, env={**os.environ, "PYTHONHASHSEED": hash_seed})
    assert outputs[0].read_bytes() == outputs[1].read_bytes() == VECTOR_FILE.read_bytes()
