"""Signed checkpoints: the exact signed bytes (known answers), signatures through the directory, tampering,
linking to the predecessor, and strict protobuf parsing.

The signed-bytes layout is rebuilt here with ``struct`` from docs/adr/0012-audit-ledger.md's text, not through
services.audit.domain.checkpoint, so the vectors pin the documented layout and not merely the code's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from services.audit.domain.checkpoint import (
    ZERO_HASH,
    Checkpoint,
    CheckpointError,
    CheckpointSigner,
    LeafRun,
    check_extends,
    checkpoint_hash,
    checkpoint_origin,
    encode_checkpoint,
    from_proto,
    parse_checkpoint,
    sign_checkpoint,
    signed_bytes,
    to_proto,
    verify_checkpoint,
)
from services.core.generated.referralnet.audit.v1 import audit_pb2
from tests.unit.identity_factories import make_directory
from tests.vectors import generate_audit_checkpoint_vectors

VECTOR_FILE = Path(__file__).parents[1] / "vectors" / "audit_checkpoint_v1.json"
VECTORS = json.loads(VECTOR_FILE.read_text())
SEED = bytes.fromhex(VECTORS["signer"]["ed25519_seed_hex"])
KEY_ID = VECTORS["signer"]["signing_key_id"]
INTAKE_TOPIC, REFERRAL_TOPIC = "referralnet.intake.events.v1", "referralnet.referral.events.v1"


class OneKey:
    """A resolver knowing one key id, owned by ``owner``."""

    def __init__(self, key_id: str, owner: str, public_key: Ed25519PublicKey) -> None:
        self.key_id, self.owner, self.public_key = key_id, owner, public_key

    def signing_key(self, key_id: str) -> tuple[str, Ed25519PublicKey]:
        if key_id != self.key_id:
            raise KeyError(key_id)
        return self.owner, self.public_key


def vector_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(SEED)


def from_fields(fields: dict[str, Any], signature: bytes) -> Checkpoint:
    return Checkpoint(
        origin=fields["origin"], tree_size=fields["tree_size"], root_hash=bytes.fromhex(fields["root_hash"]),
        issued_at_us=fields["issued_at_us"], previous_tree_size=fields["previous_tree_size"],
        previous_checkpoint_hash=bytes.fromhex(fields["previous_checkpoint_hash"]),
        runs=tuple(LeafRun(**run) for run in fields["runs"]), signing_key_id=fields["signing_key_id"],
        signature=signature,
    )


def adr_layout(fields: dict[str, Any]) -> bytes:
    """ADR 12's signed bytes, written from its text."""

    def text(value: str) -> bytes:
        return len(value.encode()).to_bytes(2, "big") + value.encode()

    out: bytes = b"referralnet/checkpoint/v1\x00" + text(fields["origin"])
    out += fields["tree_size"].to_bytes(8, "big") + bytes.fromhex(fields["root_hash"])
    out += fields["issued_at_us"].to_bytes(8, "big", signed=True) + fields["previous_tree_size"].to_bytes(8, "big")
    out += bytes.fromhex(fields["previous_checkpoint_hash"]) + len(fields["runs"]).to_bytes(4, "big")
    for run in fields["runs"]:
        out += text(run["topic"]) + struct.pack(">IQQ", run["partition"], run["first_offset"], run["last_offset"])
    return out + text(fields["signing_key_id"])


def first_and_second() -> tuple[Checkpoint, Checkpoint]:
    first, second = VECTORS["vectors"]
    return (from_fields(first["checkpoint"], bytes.fromhex(first["signature"])),
            from_fields(second["checkpoint"], bytes.fromhex(second["signature"])))


# --- Known answers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_signed_bytes_signature_hash_and_encoding_match_the_vectors(vector):
    fields, signature = vector["checkpoint"], bytes.fromhex(vector["signature"])
    checkpoint = from_fields(fields, signature)
    expected = bytes.fromhex(vector["signed_bytes"])

    assert adr_layout(fields) == expected
    assert b"".join(bytes.fromhex(part) for _, part in vector["signed_bytes_parts"]) == expected
    assert signed_bytes(checkpoint) == expected
    vector_key().public_key().verify(signature, expected)  # the raw primitive, not our verifier
    assert checkpoint_hash(checkpoint) == hashlib.sha256(expected + signature).digest()
    assert checkpoint_hash(checkpoint).hex() == vector["checkpoint_hash"]
    assert encode_checkpoint(checkpoint).hex() == vector["proto"]
    assert parse_checkpoint(bytes.fromhex(vector["proto"])) == checkpoint


def test_signing_the_vector_fields_reproduces_the_signatures_and_the_link():
    first, second = first_and_second()
    key = vector_key()
    signed_first = sign_checkpoint(first.origin, first.tree_size, first.root_hash, first.issued_at_us, None,
                                   first.runs, KEY_ID, key)
    signed_second = sign_checkpoint(second.origin, second.tree_size, second.root_hash, second.issued_at_us,
                                    signed_first, second.runs, KEY_ID, key)
    assert (signed_first, signed_second) == (first, second)  # Ed25519 is deterministic
    assert second.previous_checkpoint_hash == checkpoint_hash(first) and second.previous_tree_size == 3
    resolver = OneKey(KEY_ID, "svc:audit", key.public_key())
    for checkpoint in (first, second):
        verify_checkpoint(checkpoint, resolver)
    check_extends(None, first, 3)
    check_extends(first, second, 5)


def test_the_committed_vector_file_is_what_the_generator_writes():
    assert VECTOR_FILE.read_text() == generate_audit_checkpoint_vectors.render()


# --- Signatures through the directory ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def network():
    return make_directory()


def audit_signer(network) -> CheckpointSigner:
    return CheckpointSigner.for_directory(network.directory, network.signing_keys["svc:audit#sig-1"])


def test_a_checkpoint_signed_with_audits_key_verifies_through_the_directory(network):
    signer = audit_signer(network)
    assert signer.key_id == "svc:audit#sig-1" and signer.origin == checkpoint_origin("referralnet-test")
    assert signer.origin == "referralnet-test/audit/v1"
    checkpoint = signer.sign(3, bytes(range(32)), 1_768_469_400_000_000, None, [LeafRun(INTAKE_TOPIC, 0, 0, 2)])
    verify_checkpoint(checkpoint, network.directory, origin=signer.origin)
    again = parse_checkpoint(encode_checkpoint(checkpoint))
    verify_checkpoint(again, network.directory)
    assert again == checkpoint


def test_the_signer_refuses_a_private_key_that_is_not_audits(network):
    for wrong in (network.signing_keys["svc:intake#sig-1"], Ed25519PrivateKey.generate()):
        with pytest.raises(CheckpointError) as caught:
            CheckpointSigner.for_directory(network.directory, wrong)
        assert caught.value.reason == "wrong_signer"


def tampered_copies(checkpoint: Checkpoint) -> dict[str, Checkpoint]:
    run = checkpoint.runs[0]
    change = dataclasses.replace
    return {
        "origin": change(checkpoint, origin="referralnet-other/audit/v1"),
        "tree_size": change(checkpoint, tree_size=checkpoint.tree_size + 1),
        "root_hash": change(checkpoint, root_hash=bytes([checkpoint.root_hash[0] ^ 1]) + checkpoint.root_hash[1:]),
        "issued_at_us": change(checkpoint, issued_at_us=checkpoint.issued_at_us + 1),
        "previous_tree_size": change(checkpoint, previous_tree_size=checkpoint.previous_tree_size + 1),
        "previous_checkpoint_hash": change(checkpoint, previous_checkpoint_hash=bytes([7]) * 32),
        "runs.topic": change(checkpoint, runs=(change(run, topic=REFERRAL_TOPIC), *checkpoint.runs[1:])),
        "runs.partition": change(checkpoint, runs=(change(run, partition=run.partition + 1), *checkpoint.runs[1:])),
        "runs.first_offset": change(checkpoint, runs=(change(run, first_offset=run.first_offset + 1),
                                                      *checkpoint.runs[1:])),
        "runs.last_offset": change(checkpoint, runs=(change(run, last_offset=run.last_offset + 1),
                                                     *checkpoint.runs[1:])),
        "runs added": change(checkpoint, runs=(*checkpoint.runs, LeafRun(REFERRAL_TOPIC, 0, 0, 0))),
        "runs removed": change(checkpoint, runs=checkpoint.runs[:-1]),
        "runs reordered": change(checkpoint, runs=checkpoint.runs[::-1]),
        "signature": change(checkpoint, signature=checkpoint.signature[:-1] + bytes([checkpoint.signature[-1] ^ 1])),
    }


def test_any_tampered_field_fails_verification(network):
    signer = audit_signer(network)
    checkpoint = signer.sign(8, bytes(range(32)), 1_768_469_405_000_000, None,
                             [LeafRun(INTAKE_TOPIC, 1, 10, 14), LeafRun(REFERRAL_TOPIC, 0, 7, 7)])
    copies = tampered_copies(checkpoint)
    assert len(copies) == 14 and all(copy != checkpoint for copy in copies.values())
    reasons = {}
    for name, copy in copies.items():
        with pytest.raises(CheckpointError) as caught:
            verify_checkpoint(copy, network.directory)
        reasons[name] = caught.value.reason
    assert set(reasons.values()) == {"bad_signature"}, reasons


def test_keys_that_are_not_audits_are_refused(network):
    directory, keys = network.directory, network.signing_keys
    fields = (3, bytes(32), 1, None, [LeafRun(INTAKE_TOPIC, 0, 0, 2)])
    origin = "referralnet-test/audit/v1"
    cases = {
        "wrong_signer": sign_checkpoint(origin, *fields, "svc:intake#sig-1", keys["svc:intake#sig-1"]),
        "unknown_key": sign_checkpoint(origin, *fields, "svc:audit#sig-2", keys["svc:audit#sig-1"]),
        "bad_signature": sign_checkpoint(origin, *fields, "svc:audit#sig-1", keys["svc:intake#sig-1"]),
    }
    org_key_id = next(key_id for key_id in keys if not key_id.startswith("svc:"))
    cases["wrong_signer (an organisation)"] = sign_checkpoint(origin, *fields, org_key_id, keys[org_key_id])
    for expected, checkpoint in cases.items():
        with pytest.raises(CheckpointError) as caught:
            verify_checkpoint(checkpoint, directory)
        assert caught.value.reason == expected.split(" ")[0]
    good = sign_checkpoint(origin, *fields, "svc:audit#sig-1", keys["svc:audit#sig-1"])
    with pytest.raises(CheckpointError, match="wrong_origin"):
        verify_checkpoint(good, directory, origin="referralnet-prod/audit/v1")


# --- Linking -----------------------------------------------------------------------------------------------------


def test_check_extends_catches_a_wrong_link_or_size():
    first, second = first_and_second()
    key = vector_key()

    def resign(previous: Checkpoint | None, **changes: Any) -> Checkpoint:
        fields = {"origin": second.origin, "tree_size": second.tree_size, "root_hash": second.root_hash,
                  "issued_at_us": second.issued_at_us, "runs": second.runs, **changes}
        return sign_checkpoint(fields["origin"], fields["tree_size"], fields["root_hash"], fields["issued_at_us"],
                               previous, fields["runs"], KEY_ID, key)

    check_extends(first, resign(first), 5)
    other_first = dataclasses.replace(first, issued_at_us=first.issued_at_us + 1)  # same size, other hash
    bigger_first = sign_checkpoint(first.origin, 4, first.root_hash, first.issued_at_us, None, first.runs, KEY_ID,
                                   key)
    cases = {
        "wrong_previous_hash": (first, resign(other_first), 5),
        "wrong_previous_size": (first, resign(bigger_first), 5),
        "wrong_size": (first, resign(first), 4),
        "wrong_size ": (first, resign(first, tree_size=9), 5),
        "wrong_origin": (first, resign(first, origin="referralnet-other/audit/v1"), 5),
        "wrong_previous_size  (first has none)": (None, second, 8),
        "wrong_previous_hash  (first has none)": (None, dataclasses.replace(first, previous_checkpoint_hash=b"\1" * 32),
                                                  3),
        "wrong_size  (first)": (None, first, 2),
        "wrong_previous_size  (skips one)": (second, resign(first), 5),
    }
    for expected, (previous, checkpoint, leaves) in cases.items():
        with pytest.raises(CheckpointError) as caught:
            check_extends(previous, checkpoint, leaves)
        assert caught.value.reason == expected.split(" ")[0], expected
    with pytest.raises(ValueError):
        check_extends(first, second, -1)


def test_the_first_checkpoint_links_to_nothing():
    first, _ = first_and_second()
    assert first.previous_tree_size == 0 and first.previous_checkpoint_hash == ZERO_HASH


# --- Protobuf: round trip and strict parsing ----------------------------------------------------------------------


topics = st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True)
runs = st.builds(
    lambda topic, partition, first, length: LeafRun(topic, partition, first, first + length),
    topics, st.integers(0, 2**31 - 1), st.integers(0, 2**62), st.integers(0, 2**62),
)
checkpoints = st.builds(
    Checkpoint,
    origin=st.text(min_size=1, max_size=40),
    tree_size=st.integers(0, 2**64 - 1),
    root_hash=st.binary(min_size=32, max_size=32),
    issued_at_us=st.integers(-(2**63), 2**63 - 1),
    previous_tree_size=st.integers(0, 2**64 - 1),
    previous_checkpoint_hash=st.binary(min_size=32, max_size=32),
    runs=st.lists(runs, max_size=5).map(tuple),
    signing_key_id=st.text(min_size=1, max_size=30),
    signature=st.binary(min_size=64, max_size=64),
)


@settings(max_examples=150, deadline=None)
@given(checkpoint=checkpoints)
def test_proto_round_trip_and_signed_bytes_agree_with_the_layout(checkpoint):
    assert from_proto(to_proto(checkpoint)) == checkpoint
    assert parse_checkpoint(encode_checkpoint(checkpoint)) == checkpoint
    fields = {
        "origin": checkpoint.origin, "tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash.hex(),
        "issued_at_us": checkpoint.issued_at_us, "previous_tree_size": checkpoint.previous_tree_size,
        "previous_checkpoint_hash": checkpoint.previous_checkpoint_hash.hex(),
        "runs": [dataclasses.asdict(run) for run in checkpoint.runs], "signing_key_id": checkpoint.signing_key_id,
    }
    assert signed_bytes(checkpoint) == adr_layout(fields)


def good_message() -> audit_pb2.Checkpoint:
    first, _ = first_and_second()
    return to_proto(first)


def broken(change) -> bytes:
    message = good_message()
    change(message)
    return message.SerializeToString()


@pytest.mark.parametrize(("field", "change"), [
    ("origin", lambda m: m.ClearField("origin")),
    ("root_hash", lambda m: setattr(m, "root_hash", bytes(31))),
    ("root_hash", lambda m: setattr(m, "root_hash", bytes(33))),
    ("root_hash", lambda m: m.ClearField("root_hash")),
    ("previous_checkpoint_hash", lambda m: m.ClearField("previous_checkpoint_hash")),
    ("signature", lambda m: setattr(m, "signature", bytes(63))),
    ("signature", lambda m: m.ClearField("signature")),
    ("signing_key_id", lambda m: m.ClearField("signing_key_id")),
    ("runs.topic", lambda m: setattr(m.runs[0], "topic", "")),
    ("runs.topic", lambda m: setattr(m.runs[0], "topic", "not a topic!")),
    ("runs.partition", lambda m: setattr(m.runs[0], "partition", -1)),
    ("runs.first_offset", lambda m: setattr(m.runs[0], "first_offset", -1)),
    ("runs.last_offset", lambda m: setattr(m.runs[0], "last_offset", -5)),
    ("runs.last_offset", lambda m: m.runs[0].MergeFrom(audit_pb2.LeafRun(first_offset=9, last_offset=8))),
], ids=lambda value: value if isinstance(value, str) else "")
def test_parsing_refuses_missing_and_ill_formed_fields(field, change):
    with pytest.raises(CheckpointError) as caught:
        parse_checkpoint(broken(change))
    assert (caught.value.reason, caught.value.field) == ("invalid_field", field)


def test_parsing_refuses_unknown_fields_and_garbage():
    good = good_message().SerializeToString()
    unknown_top = good + b"\x98\x06\x01"  # field 99, varint 1: outside the schema, so it would travel unsigned
    message = good_message()
    unknown_in_run = bytearray(message.runs[0].SerializeToString() + b"\x98\x06\x01")
    message.ClearField("runs")
    with_run = message.SerializeToString() + b"\x3a" + bytes([len(unknown_in_run)]) + bytes(unknown_in_run)
    for data in (unknown_top, with_run):
        with pytest.raises(CheckpointError) as caught:
            parse_checkpoint(data)
        assert caught.value.reason == "unknown_field"
    for garbage in (b"\xff\xff\xff", b"\x0a\x05ab"):
        with pytest.raises(CheckpointError) as caught:
            parse_checkpoint(garbage)
        assert caught.value.reason == "malformed"
    assert parse_checkpoint(good) == first_and_second()[0]


def test_construction_checks_sizes_and_ranges():
    first, _ = first_and_second()
    for field, value in [("tree_size", -1), ("tree_size", 2**64), ("issued_at_us", 2**63),
                         ("previous_tree_size", -1), ("root_hash", "00" * 32), ("runs", (("t", 0, 0, 0),)),
                         ("origin", "x" * 70_000), ("tree_size", True)]:
        changes: dict[str, Any] = {field: value}
        with pytest.raises(CheckpointError) as caught:
            dataclasses.replace(first, **changes)
        assert caught.value.field == field
    as_list: Any = list(first.runs)
    assert dataclasses.replace(first, runs=as_list).runs == first.runs  # a list becomes a tuple
    with pytest.raises(CheckpointError):
        LeafRun(INTAKE_TOPIC, 2**31, 0, 0)
    assert bytes(32) == ZERO_HASH
    raw = vector_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert raw.hex() == VECTORS["signer"]["ed25519_public_key_hex"]
