"""Rebuilding a projection from a real Kafka log gives the state it had when built live.

A few thousand sealed events (synthetic orgs and keys) go to a fresh three-partition topic with a
KafkaProducer, keyed by stream id, as the outbox relay will publish them; a StreamVersions projection is
built live as they are produced. The log also holds what a real log may hold: re-published duplicates,
a record whose signature was tampered with, one signed by an org outside the directory, and bytes that
are no envelope. ``rebuild_from_topic`` reads it back from offset 0 and must reach the same state hash.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from kafka import KafkaProducer

from services.core.envelope import BadSignatureError, EventHeader, Sealer
from services.core.projections import ReplayError, StreamVersions, rebuild_from_topic
from services.core.telemetry import kafka_headers
from tests.kafka_topics import TopicFactory
from tests.unit.envelope_support import ORG_IDS, POLICE, ROUTING, Network, SyntheticOrg, flip, make_header
from tests.unit.envelope_support import new_data_key as data_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

STREAMS = 150
EVENTS_PER_STREAM = 20  # 3,000 genuine events
DUPLICATE_EVERY = 50  # a re-published earlier event after every 50th: 60 duplicates
EVENT_TYPES = ("ReferralSubmitted", "HandoffOffered", "HandoffAccepted", "ServiceStarted", "ServiceCompleted")


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    made = Network.create(workers=None)  # batches verified on a thread per core, as in production
    yield made
    made.close()


@pytest.fixture(scope="module")
def new_topic(kafka_bootstrap: str) -> Iterator[Callable[[], str]]:
    factory = TopicFactory(kafka_bootstrap, "replay")
    yield factory
    factory.close()


@dataclass
class PublishedLog:
    topic: str
    live_hash: str
    genuine: int
    duplicates: int
    rejected_at: dict[str, tuple[int, int]]  # reason -> (partition, offset)
    total: int


class EventSource:
    """Sealed events of STREAMS streams, in sequence order per stream; each stream has one producing org."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.streams = [f"ref-{uuid.uuid4().hex[:12]}" for _ in range(STREAMS)]
        self.keys = [data_key() for _ in range(STREAMS)]
        self.sequences = [0] * STREAMS

    def next(self, index: int) -> tuple[EventHeader, bytes]:
        self.sequences[index] += 1
        sequence = self.sequences[index]
        org = self.network.orgs[ORG_IDS[index % 2]]
        header = make_header(org, stream_id=self.streams[index], stream_sequence=sequence,
                             event_type=EVENT_TYPES[(sequence - 1) % len(EVENT_TYPES)])
        return header, self.network.seal(header, {ROUTING: self.keys[index]})


def _producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5,
                         client_id="replay-test-producer")


def _send(producer: KafkaProducer, topic: str, header: EventHeader, wire: bytes):
    return producer.send(topic, key=header.stream_id.encode(), value=wire,
                         headers=kafka_headers(header.event_id, header.event_type, "", ""))


@pytest.fixture(scope="module")
def published(kafka_bootstrap: str, network: Network, new_topic: Callable[[], str]) -> PublishedLog:
    topic, source, live = new_topic(), EventSource(network), StreamVersions()
    producer = _producer(kafka_bootstrap)
    sent: list[tuple[EventHeader, bytes]] = []
    duplicates = 0
    for round_ in range(EVENTS_PER_STREAM):
        for index in range(STREAMS):
            header, wire = source.next(index)
            _send(producer, topic, header, wire)
            live.apply(network.verifier.verify(wire), {})  # the live projection, as a consumer builds it
            sent.append((header, wire))
            if len(sent) % DUPLICATE_EVERY == 0:
                _send(producer, topic, *sent[-10 - round_])  # the relay re-publishing after a crash
                duplicates += 1

    tampered_header = make_header(network.orgs[POLICE])
    tampered = network.seal(tampered_header, {ROUTING: data_key()})
    tampered = flip(tampered, len(tampered) - 1)  # the last byte is the signature's
    with pytest.raises(BadSignatureError):
        network.verifier.verify(tampered)
    outsider = SyntheticOrg.create("ngo-pun-09")  # signs with a key the directory does not hold
    outsider_header = make_header(outsider)
    outsider_wire = Sealer(outsider.signer).seal(outsider_header, {ROUTING: (data_key(), b"synthetic")})
    futures = {
        "bad_signature": _send(producer, topic, tampered_header, tampered),
        "unknown_key": _send(producer, topic, outsider_header, outsider_wire),
        "malformed": producer.send(topic, key=b"ref-garbage", value=b"not an envelope"),
    }
    producer.flush(timeout=60)
    rejected_at = {reason: (meta.partition, meta.offset) for reason, future in futures.items()
                   for meta in [future.get(timeout=30)]}
    producer.close()
    return PublishedLog(topic, live.state_hash(), len(sent), duplicates, rejected_at,
                        len(sent) + duplicates + len(futures))


def test_rebuild_from_offset_0_reaches_the_live_state_hash(kafka_bootstrap, network, published):
    rebuilt, report = rebuild_from_topic(StreamVersions(), kafka_bootstrap, [published.topic], network.verifier)

    assert rebuilt.state_hash() == published.live_hash
    assert report.records_read == published.total
    assert report.applied == published.genuine == STREAMS * EVENTS_PER_STREAM
    assert report.duplicates_dropped == published.duplicates == 60
    assert report.rejected == {"bad_signature": 1, "unknown_key": 1, "malformed": 1}
    assert {r.reason: (r.partition, r.offset) for r in report.rejections} == published.rejected_at
    assert all(r.topic == published.topic and r.event_id == "" for r in report.rejections)
    assert set(report.start_offsets.values()) == {0}
    assert sum(report.end_offsets.values()) == published.total
    assert len(rebuilt) == STREAMS
    assert rebuilt.event_counts() == dict.fromkeys(EVENT_TYPES, STREAMS * EVENTS_PER_STREAM // len(EVENT_TYPES))
    for stream_id in rebuilt.state()["streams"]:  # type: ignore[index]
        stream = rebuilt.stream(stream_id)
        assert stream is not None
        assert (stream.last_sequence, stream.events, stream.out_of_sequence) == (EVENTS_PER_STREAM, 20, 0)


def test_dropping_and_rebuilding_twice_gives_the_same_hash(kafka_bootstrap, network, published):
    projection = StreamVersions()
    hashes = []
    for _ in range(2):
        rebuilt, report = rebuild_from_topic(projection, kafka_bootstrap, [published.topic], network.verifier)
        hashes.append(rebuilt.state_hash())
        assert report.applied == published.genuine  # reset first: the second pass did not double-count
    _, fresh = rebuild_from_topic(StreamVersions(), kafka_bootstrap, [published.topic], network.verifier)

    assert hashes == [published.live_hash, published.live_hash]
    assert fresh.duplicates_dropped == published.duplicates


def test_rebuild_stops_at_the_end_offsets_taken_at_start_while_producers_keep_writing(
        kafka_bootstrap, network, new_topic):
    topic, source = new_topic(), EventSource(network)
    producer = _producer(kafka_bootstrap)
    for index in range(STREAMS):
        _send(producer, topic, *source.next(index))
    producer.flush(timeout=60)
    stop, wrote = threading.Event(), threading.Event()

    def keep_producing() -> None:
        deadline = time.monotonic() + 60  # bounded even if the rebuild never returned
        while not stop.is_set() and time.monotonic() < deadline:
            for index in range(0, STREAMS, 10):
                _send(producer, topic, *source.next(index))
            producer.flush(timeout=30)
            wrote.set()

    writer = threading.Thread(target=keep_producing, name="replay-test-writer")
    writer.start()
    assert wrote.wait(timeout=30), "the writer thread wrote nothing"
    try:
        during, report = rebuild_from_topic(StreamVersions(), kafka_bootstrap, [topic], network.verifier)
    finally:
        stop.set()
        writer.join(timeout=60)
    producer.close()
    again, pinned = rebuild_from_topic(StreamVersions(), kafka_bootstrap, [topic], network.verifier,
                                       until=report.end_offsets)
    _, latest = rebuild_from_topic(StreamVersions(), kafka_bootstrap, [topic], network.verifier)

    assert not writer.is_alive()
    assert report.records_read == sum(report.end_offsets.values()) >= STREAMS
    assert again.state_hash() == during.state_hash()  # the same log prefix, the same state
    assert pinned.records_read == report.records_read
    assert latest.records_read > report.records_read  # the writer did write while the first rebuild ran


def test_missing_topic_or_an_unreachable_bound_is_an_error(kafka_bootstrap, network, published):
    with pytest.raises(ReplayError, match="does not exist"):
        rebuild_from_topic(StreamVersions(), kafka_bootstrap, [f"replay.absent-{uuid.uuid4().hex[:8]}"],
                           network.verifier, consumer_config={"allow_auto_create_topics": True})  # forced off
    beyond = {(published.topic, partition): 10**9 for partition in range(3)}
    with pytest.raises(ReplayError, match="before the requested 1000000000"):
        rebuild_from_topic(StreamVersions(), kafka_bootstrap, [published.topic], network.verifier, until=beyond)
