"""Sealing, verifying and opening envelopes that nobody tampered with; header validation; batch verification."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.envelope import format as fmt
from services.core.envelope.envelope import Sealer, parse_envelope
from services.core.envelope.errors import (
    BadSignatureError,
    EnvelopeError,
    MalformedEnvelopeError,
    TamperedHeaderError,
    TamperedSectionError,
    UnknownKeyError,
    UnsupportedVersionError,
)
from services.core.envelope.format import SectionKind
from services.core.envelope.header import EventHeader
from services.core.envelope.verification import Opener, VerifiedEnvelope, Verifier
from services.core.generated.referralnet.envelope.v1 import envelope_pb2
from tests.unit.envelope_support import (
    CASE_FILE,
    NGO,
    PLAINTEXTS,
    POLICE,
    ROUTING,
    SECTION_COMBINATIONS,
    SHELTER,
    TRACEPARENT,
    TRACESTATE,
    DictResolver,
    Network,
    SyntheticOrg,
    flip,
    header_bytes_of,
    make_header,
    new_data_key,
    rebuild,
    section_keys,
    sections_of,
)

NET = Network.create()
PROTO = Path(__file__).parents[2] / "proto" / "referralnet" / "envelope" / "v1" / "envelope.proto"

# The header's documented shapes, written out here (not imported) so a loosened regex in header.py shows up.
IDENTIFIER = r"[A-Za-z0-9][A-Za-z0-9._:#/-]{0,127}"
EVENT_TYPE = r"[A-Z][A-Za-z0-9]{1,63}"
TRACEPARENT_RE = r"(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}"


def _uuid7(unix_ms: int, rand_a: int, rand_b: int) -> str:
    return str(uuid.UUID(int=(unix_ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b))


uuid7s = st.builds(_uuid7, st.integers(0, 2**48 - 1), st.integers(0, 2**12 - 1), st.integers(0, 2**62 - 1))
traceparents = st.one_of(st.just(""), st.from_regex(TRACEPARENT_RE, fullmatch=True))
tracestates = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=512)


@st.composite
def headers(draw: st.DrawFn) -> EventHeader:
    org = NET.orgs[draw(st.sampled_from([POLICE, NGO, SHELTER]))]
    return EventHeader(
        event_id=draw(uuid7s),
        event_type=draw(st.from_regex(EVENT_TYPE, fullmatch=True)),
        schema_version=draw(st.integers(1, 2**32 - 1)),
        stream_id=draw(st.from_regex(IDENTIFIER, fullmatch=True)),
        stream_sequence=draw(st.integers(1, 2**64 - 1)),
        occurred_at_unix_micros=draw(st.integers(1, 2**63 - 1)),
        producer_org=org.org_id,
        producer_service=draw(st.sampled_from(["intake", "referral", "audit", "notify"])),
        signing_key_id=org.signing_key_id,
        traceparent=draw(traceparents),
        tracestate=draw(tracestates),
    )


def _verify_and_open_all(wire: bytes, keys) -> tuple[VerifiedEnvelope, dict[SectionKind, bytes]]:
    verified = NET.verifier.verify(wire)
    return verified, {kind: Opener().open(verified, kind, key) for kind, key in keys.items()}


# -- round trips -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kinds", SECTION_COMBINATIONS, ids=lambda kinds: "+".join(k.name for k in kinds))
def test_each_section_opens_independently_with_only_its_own_key(kinds):
    header = make_header(NET.orgs[POLICE], traceparent=TRACEPARENT, tracestate=TRACESTATE)
    keys = section_keys(kinds)
    wire = NET.seal(header, keys)
    for plaintext in PLAINTEXTS.values():  # nothing personal travels in the clear
        assert plaintext not in wire
        assert b"Persona" not in wire

    verified = NET.verifier.verify(wire)
    assert verified.header == header
    assert verified.header_bytes == header.encode()
    assert [section.kind for section in verified.sections] == sorted(kinds)
    for kind in kinds:
        other_keys = [key for other, key in keys.items() if other != kind] + [new_data_key()]
        opener = Opener()  # a reader that holds this one key and nothing else
        assert opener.open(verified, kind, keys[kind]) == PLAINTEXTS[kind]
        for other in other_keys:
            with pytest.raises(UnknownKeyError, match="is sealed under key"):
                opener.open(verified, kind, other)
    for absent in set(SectionKind) - set(kinds):
        with pytest.raises(MalformedEnvelopeError, match=f"carries no {absent.name.lower()} section"):
            Opener().open(verified, absent, new_data_key())


def test_a_reader_with_one_key_gets_exactly_that_section():
    keys = section_keys((ROUTING, CASE_FILE))
    verified = NET.verifier.verify(NET.seal(make_header(NET.orgs[POLICE]), keys))
    routing_reader = Opener()
    assert routing_reader.open(verified, ROUTING, keys[ROUTING]) == PLAINTEXTS[ROUTING]
    with pytest.raises(UnknownKeyError):
        routing_reader.open(verified, CASE_FILE, keys[ROUTING])


def test_every_seal_uses_fresh_nonces():
    header = make_header(NET.orgs[POLICE])
    keys = section_keys((ROUTING, CASE_FILE))
    first, second = NET.seal(header, keys), NET.seal(header, keys)
    assert first != second
    nonces = [section.nonce for wire in (first, second) for section in parse_envelope(wire).sections]
    assert len(set(nonces)) == 4
    for wire in (first, second):
        assert _verify_and_open_all(wire, keys)[1] == {kind: PLAINTEXTS[kind] for kind in keys}


def test_boundary_values_round_trip():
    header = make_header(NET.orgs[SHELTER], schema_version=2**32 - 1, stream_id="s" * 128, stream_sequence=2**64 - 1,
                         occurred_at_unix_micros=2**63 - 1, producer_service="p" * 128,
                         traceparent=TRACEPARENT, tracestate="~" * 512)
    keys = section_keys((CASE_FILE,))
    verified, opened = _verify_and_open_all(NET.seal(header, keys, {CASE_FILE: b""}), keys)
    assert verified.header == header
    assert opened == {CASE_FILE: b""}


@settings(max_examples=150, deadline=None)
@given(header=headers(), kinds=st.sampled_from(SECTION_COMBINATIONS),
       routing=st.binary(max_size=4096), case_file=st.binary(max_size=4096))
def test_round_trip_property(header, kinds, routing, case_file):
    payloads = {ROUTING: routing, CASE_FILE: case_file}
    keys = section_keys(kinds)
    wire = NET.seal(header, keys, payloads)
    verified, opened = _verify_and_open_all(wire, keys)
    assert verified.header == header
    assert opened == {kind: payloads[kind] for kind in kinds}
    assert verified.canonical_hash() == fmt.canonical_hash(verified.signing_input, verified.signature)
    ciphertext_sizes = [len(section.ciphertext) for section in verified.sections]
    assert ciphertext_sizes == [len(payloads[kind]) + fmt.TAG_BYTES for kind in sorted(kinds)]


@settings(max_examples=200, deadline=None)
@given(header=headers())
def test_header_encoding_round_trips_property(header):
    encoded = header.encode()
    assert EventHeader.decode(encoded) == header
    assert header.encode() == encoded  # deterministic


# -- header validation -------------------------------------------------------------------------------------

_VALID_EVENT_ID = "0193a1f2-6b7c-7d8e-9f01-23456789abcd"
BAD_HEADER_FIELDS = [
    ("event_id", _VALID_EVENT_ID.upper()),
    ("event_id", str(uuid.UUID(int=0x0193A1F26B7C4D8E9F0123456789ABCD))),  # a UUIDv4 shape
    ("event_id", ""),
    ("event_id", _VALID_EVENT_ID + "\n"),
    ("event_id", _VALID_EVENT_ID.replace("-", "")),
    ("event_type", "referralSubmitted"),
    ("event_type", "R"),
    ("event_type", "R" * 65),
    ("event_type", "Referral Submitted"),
    ("schema_version", 0),
    ("schema_version", 2**32),
    ("stream_id", ""),
    ("stream_id", "-ref"),
    ("stream_id", "ref 1"),
    ("stream_id", "r" * 129),
    ("stream_id", "r\u00e9f-1"),
    ("stream_sequence", 0),
    ("stream_sequence", -1),
    ("stream_sequence", 2**64),
    ("occurred_at_unix_micros", 0),
    ("occurred_at_unix_micros", -1),
    ("occurred_at_unix_micros", 2**63),
    ("producer_org", ""),
    ("producer_service", "intake\n"),
    ("signing_key_id", "k" * 129),
    ("traceparent", "00-abc"),
    ("traceparent", TRACEPARENT.upper()),
    ("traceparent", TRACEPARENT + "\n"),
    ("traceparent", "ff" + TRACEPARENT[2:]),
    ("traceparent", "00-" + "0" * 32 + TRACEPARENT[35:]),
    ("traceparent", TRACEPARENT[:36] + "0" * 16 + TRACEPARENT[52:]),
    ("tracestate", "a" * 513),
    ("tracestate", "k=v\n"),
    ("tracestate", "nombre=Persona Sint\u00e9tica"),
    ("tracestate", "\ud800"),
]


@pytest.mark.parametrize(("field", "value"), BAD_HEADER_FIELDS,
                         ids=[f"{field}-{index}" for index, (field, _) in enumerate(BAD_HEADER_FIELDS)])
def test_header_validation_names_the_field(field, value):
    with pytest.raises(MalformedEnvelopeError, match=rf"^header\.{field}: "):
        make_header(NET.orgs[POLICE], **{field: value})


def test_decoding_validates_and_names_the_field():
    good = make_header(NET.orgs[POLICE])
    message = envelope_pb2.EnvelopeHeader()
    message.ParseFromString(good.encode())
    message.stream_sequence = 0
    with pytest.raises(MalformedEnvelopeError, match=r"^header\.stream_sequence: "):
        EventHeader.decode(message.SerializeToString())
    message.stream_sequence = 1
    message.event_id = "not-a-uuid"
    with pytest.raises(MalformedEnvelopeError, match=r"^header\.event_id: "):
        EventHeader.decode(message.SerializeToString())
    message.event_id = good.event_id
    message.format_version = 0
    with pytest.raises(MalformedEnvelopeError, match=r"^header\.format_version: missing"):
        EventHeader.decode(message.SerializeToString())
    with pytest.raises(MalformedEnvelopeError, match=r"^header: not a valid"):
        EventHeader.decode(b"\xff\xff\xff")
    message.format_version = 1
    assert EventHeader.decode(message.SerializeToString()) == good


def test_sealer_refuses_a_header_that_is_not_its_signers():
    police, ngo = NET.orgs[POLICE], NET.orgs[NGO]
    sealer = NET.sealer(POLICE)
    sections = {ROUTING: (new_data_key(), b"x")}
    for header in (
        make_header(ngo),  # another org, another key
        make_header(police, signing_key_id=ngo.signing_key_id),  # our org, another org's key
        make_header(police, producer_org=NGO),  # our key, claimed for another org
        make_header(police, signing_key_id=police.signing_key_id + "-old"),  # our org, a key we do not hold
    ):
        with pytest.raises(MalformedEnvelopeError, match=r"^header\.signing_key_id: .* is not this signer's key"):
            sealer.seal(header, sections)
    with pytest.raises(MalformedEnvelopeError, match=r"^sections: "):
        sealer.seal(make_header(police), {})
    assert NET.verifier.verify(sealer.seal(make_header(police), sections)).header.producer_org == POLICE


def test_section_kind_numbers_match_the_proto():
    in_python = {kind.name: kind.value for kind in SectionKind}
    generated = {name.removeprefix("SECTION_KIND_"): number
                 for name, number in envelope_pb2.SectionKind.items() if number != 0}
    in_proto_file = {name: int(number) for name, number in
                     re.findall(r"^\s*SECTION_KIND_(\w+)\s*=\s*(\d+);", PROTO.read_text(), re.MULTILINE)}
    assert in_python == generated == {name: n for name, n in in_proto_file.items() if n != 0}
    assert in_proto_file["UNSPECIFIED"] == 0
    assert in_python == {"ROUTING": 1, "CASE_FILE": 2}


# -- batches -----------------------------------------------------------------------------------------------


def _batch() -> tuple[list[bytes], set[type[EnvelopeError]]]:
    """100 envelopes from three orgs, every fifth one broken in a different way."""
    stranger = SyntheticOrg.create("ext-unknown-01")  # not in the directory
    police, ngo = NET.orgs[POLICE], NET.orgs[NGO]

    def not_the_producer(wire: bytes) -> SyntheticOrg:
        return ngo if EventHeader.decode(header_bytes_of(wire)).producer_org == POLICE else police

    def valid(index: int) -> bytes:
        org = NET.orgs[(POLICE, NGO, SHELTER)[index % 3]]
        header = make_header(org, stream_sequence=index + 1, traceparent=TRACEPARENT if index % 2 else "")
        return NET.seal(header, section_keys(SECTION_COMBINATIONS[index % 3]))

    breakers: list[tuple[type[EnvelopeError], Callable[[bytes], bytes]]] = [
        (TamperedHeaderError, lambda w: flip(w, w.find(header_bytes_of(w)) + 5)),
        (BadSignatureError, lambda w: flip(w, len(w) - 10)),
        (TamperedSectionError, lambda w: flip(w, w.find(sections_of(w)[0].ciphertext) + 3)),
        (UnknownKeyError, lambda _: Sealer(stranger.signer).seal(make_header(stranger),
                                                                 {ROUTING: (new_data_key(), b"x")})),
        (MalformedEnvelopeError, lambda w: w[: len(w) // 2]),
        (UnsupportedVersionError, lambda w: rebuild(header_bytes_of(w), sections_of(w), police.private_key,
                                                    format_version=2)),
        (BadSignatureError, lambda w: rebuild(header_bytes_of(w), sections_of(w), not_the_producer(w).private_key)),
    ]
    wires, expected = [], set()
    for index in range(100):
        wire = valid(index)
        if index % 5 == 4:
            error, breaker = breakers[(index // 5) % len(breakers)]
            wire = breaker(wire)
            expected.add(error)
        wires.append(wire)
    return wires, expected


def test_verify_many_equals_verify_one_by_one():
    wires, expected_errors = _batch()
    one_by_one: list[VerifiedEnvelope | EnvelopeError] = []
    single = Verifier(NET.resolver, workers=1)
    for wire in wires:
        try:
            one_by_one.append(single.verify(wire))
        except EnvelopeError as error:
            one_by_one.append(error)
    batch = Verifier(NET.resolver, workers=4)
    try:
        results = batch.verify_many(wires)
        pool_threads = [t.name for t in threading.enumerate() if t.name.startswith("envelope-verify")]
    finally:
        batch.close()
    assert pool_threads, "a batch of more than 64 should run on the thread pool"
    assert len(results) == len(wires) == len(one_by_one)
    for index, (got, want) in enumerate(zip(results, one_by_one, strict=True)):
        assert type(got) is type(want), index
        if isinstance(want, EnvelopeError):
            assert str(got) == str(want), index
        else:
            assert got == want, index
            assert isinstance(got, VerifiedEnvelope)
            assert got.header.stream_sequence == index + 1  # in order
    assert {type(r) for r in results if isinstance(r, EnvelopeError)} == expected_errors
    assert sum(isinstance(r, VerifiedEnvelope) for r in results) == 80


def test_verify_many_of_a_small_batch_and_of_nothing():
    assert NET.verifier.verify_many([]) == []
    keys = section_keys((ROUTING,))
    wires = [NET.seal(make_header(NET.orgs[NGO]), keys), b"\x00garbage"]
    valid, broken = NET.verifier.verify_many(wires)
    assert isinstance(valid, VerifiedEnvelope)
    assert valid == NET.verifier.verify(wires[0])
    assert isinstance(broken, MalformedEnvelopeError)


def test_resolver_results_are_cached_per_key_id():
    resolver = DictResolver(NET.orgs.values())
    verifier = Verifier(resolver, workers=1)
    header = make_header(NET.orgs[POLICE])
    wire = NET.seal(header, section_keys((ROUTING,)))
    for _ in range(3):
        verifier.verify(wire)
    assert resolver.lookups == [header.signing_key_id]
