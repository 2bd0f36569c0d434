"""Projections without Kafka: the canonical state hash, StreamVersions, and the Replayer fed from a list."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from typing import NamedTuple

import pytest

from services.core.envelope import SectionKind, VerifiedEnvelope
from services.core.keyvault.keys import DataKey
from services.core.projections import (
    CanonicalFormError,
    Projection,
    Replayer,
    StreamVersions,
    UnusableEvent,
    canonical_json,
    state_hash,
)
from tests.unit.envelope_support import NGO, POLICE, ROUTING, Network, flip, make_header, new_data_key


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    value: bytes | None


class RegionCounts(Projection):
    """A projection that needs the routing section: referrals counted by region."""

    name = "region-counts"
    sections = frozenset({SectionKind.ROUTING})

    def __init__(self) -> None:
        self.regions: dict[str, int] = {}

    def apply(self, event: VerifiedEnvelope, payloads: Mapping[SectionKind, bytes]) -> None:
        if event.header.schema_version != 1:
            raise UnusableEvent("unknown_schema_version")
        region = json.loads(payloads[SectionKind.ROUTING])["region"]
        self.regions[region] = self.regions.get(region, 0) + 1

    def state(self) -> object:
        return self.regions

    def reset(self) -> None:
        self.regions.clear()


@pytest.fixture
def network():
    made = Network.create()
    yield made
    made.close()


def _routing(region: str) -> bytes:
    return json.dumps({"services": ["shelter"], "region": region, "urgency": "high", "minor": False}).encode()


def test_canonical_form_is_sorted_compact_ascii_json():
    state = {"b": 1, "a": [True, None, "Cusco é 𝄞"], "c": {"z": set(), "y": frozenset({"x", "w"})}}
    assert canonical_json(state) == b'{"a":[true,null,"Cusco \\u00e9 \\ud834\\udd1e"],"b":1,"c":{"y":["w","x"],"z":[]}}'
    reordered = {"c": {"y": frozenset({"w", "x"}), "z": set()}, "a": (True, None, "Cusco é 𝄞"), "b": 1}
    assert canonical_json(reordered) == canonical_json(state)


def test_state_hash_is_sha256_over_domain_name_version_and_canonical_json():
    expected = hashlib.sha256(b"referralnet/projection-state/v1\x00stream-versions\x00" + struct.pack(">I", 1)
                              + b'{"a":1}').hexdigest()
    assert state_hash("stream-versions", 1, {"a": 1}) == expected
    assert state_hash("stream-versions", 2, {"a": 1}) != expected
    assert state_hash("region-counts", 1, {"a": 1}) != expected


@pytest.mark.parametrize("state", [{"a": 1.5}, {"a": b"\x00"}, {1: "a"}, {"a": {1, "1"}}, {"a": {True}},
                                   {"a": object()}])
def test_values_without_a_canonical_form_are_refused(state):
    with pytest.raises(CanonicalFormError, match=r"state\.a|state: object keys"):
        canonical_json(state)


def test_stream_versions_counts_sequences_types_and_gaps(network):
    org = network.orgs[POLICE]
    projection = StreamVersions()
    empty_hash = projection.state_hash()
    for sequence, event_type in [(1, "ReferralSubmitted"), (2, "HandoffOffered"), (4, "HandoffAccepted")]:
        header = make_header(org, stream_id="ref-a", stream_sequence=sequence, event_type=event_type)
        projection.apply(network.verifier.verify(network.seal(header, {ROUTING: new_data_key()})), {})

    assert projection.last_sequence("ref-a") == 4
    assert projection.last_sequence("ref-unknown") == 0
    stream = projection.stream("ref-a")
    assert stream is not None
    assert (stream.events, stream.out_of_sequence) == (3, 1)  # 4 came after 2
    assert projection.event_counts() == {"ReferralSubmitted": 1, "HandoffOffered": 1, "HandoffAccepted": 1}
    assert len(projection) == 1
    projection.reset()
    assert projection.state_hash() == empty_hash


def test_replayer_drops_duplicates_rejects_by_reason_and_opens_what_the_projection_needs(network):
    police, ngo = network.orgs[POLICE], network.orgs[NGO]
    keys = {region: new_data_key() for region in ("CUS", "LIM", "MDD")}
    wires = []
    for index, region in enumerate(["CUS", "LIM", "CUS", "MDD"]):
        header = make_header(police, stream_id=f"ref-{index}")
        wires.append(network.seal(header, {ROUTING: keys[region]}, {ROUTING: _routing(region)}))
    first_header = network.verifier.verify(wires[0]).header
    resealed = network.seal(first_header, {ROUTING: keys["CUS"]}, {ROUTING: _routing("CUS")})  # new nonce
    future_version = network.seal(make_header(ngo, schema_version=2), {ROUTING: keys["LIM"]},
                                  {ROUTING: _routing("LIM")})
    unknown_key = network.seal(make_header(ngo), {ROUTING: new_data_key()}, {ROUTING: _routing("LIM")})
    log = [*wires, wires[0], wires[2], resealed, flip(wires[1], len(wires[1]) - 1), None, future_version,
           unknown_key]

    key_source = {key.key_id: key for key in keys.values()}

    class DictKeys:
        def key(self, key_id: str) -> DataKey:
            return key_source[key_id]

    replayer = Replayer(RegionCounts(), network.verifier, keys=DictKeys())
    replayer.feed([Record("t.v1", 0, offset, value) for offset, value in enumerate(log[:5])])
    replayer.feed([Record("t.v1", 0, offset + 5, value) for offset, value in enumerate(log[5:])])

    report = replayer.report
    assert replayer.projection.regions == {"CUS": 2, "LIM": 1, "MDD": 1}
    assert (report.records_read, report.applied, report.duplicates_dropped) == (len(log), 4, 2)
    assert report.rejected == {"conflicting_duplicate": 1, "bad_signature": 1, "malformed": 1,
                               "unknown_schema_version": 1, "unknown_key": 1}
    by_offset = {rejection.offset: rejection for rejection in report.rejections}
    assert by_offset[6].event_id == first_header.event_id
    assert by_offset[6].reason == "conflicting_duplicate"
    assert (by_offset[7].reason, by_offset[7].event_id) == ("bad_signature", "")


def test_a_projection_that_opens_sections_needs_a_key_source(network):
    with pytest.raises(ValueError, match="region-counts opens \\['ROUTING'\\]"):
        Replayer(RegionCounts(), network.verifier)
