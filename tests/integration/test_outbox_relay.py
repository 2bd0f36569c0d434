"""The outbox relay against a real Kafka broker, on a SQLite file and on PostgreSQL.

What is real: Kafka (the session broker), SQLite files, PostgreSQL (each test in a schema of its own), the
envelope's cryptography and OpenTelemetry's SDK (a tracer provider of the test's own; the global one is left
alone). What is replaced: nothing; the crash is a real SIGKILL of a relay process. Throughput is printed,
not asserted.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import ConfigResource
from kafka.errors import KafkaError
from kafka.structs import TopicPartition
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.orm import Session

from deploy.local.process import free_ports
from services.core.envelope import Sealer, SectionKind, new_event_id, now_micros
from services.core.eventstore.outbox import pending, pending_count
from services.core.eventstore.schema import events, outbox
from services.core.eventstore.store import EventStore, NewEvent
from services.core.messaging.producer import kafka_producer_factory
from services.core.messaging.relay import OutboxRelay
from services.core.messaging.topics import (
    CHECKPOINT_TOPIC,
    TopicConfigError,
    dead_letter_topic,
    ensure_topics,
    events_topic,
    network_topics,
)
from services.core.migrations import upgrade
from services.core.telemetry.propagation import current_trace_context
from tests.unit.envelope_support import POLICE, ROUTING_PLAINTEXT, SyntheticOrg, new_data_key

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 6
URL_FIXTURES = {"postgresql": "postgres_url", "sqlite": "sqlite_url"}  # dialect name -> conftest fixture
EVENT_TYPES = ("ReferralSubmitted", "HandoffOffered", "HandoffAccepted")


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(params=sorted(URL_FIXTURES))
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with the event store's tables: a fresh SQLite file, or a fresh PostgreSQL schema."""
    url: str = request.getfixturevalue(URL_FIXTURES[request.param])
    if request.param == "sqlite":
        _create_tables(url)
        yield url
        return
    schema = f"relay_{uuid.uuid4().hex[:12]}"
    server = sa.create_engine(url)
    with server.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    scoped_url = scoped.render_as_string(hide_password=False)
    _create_tables(scoped_url)
    try:
        yield scoped_url
    finally:
        with server.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        server.dispose()


def _create_tables(url: str) -> None:
    upgrade(url)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Iterator[Callable[[], str]]:
    """Create uniquely named append-only topics (through ensure_topics) and delete them afterwards."""
    created: list[str] = []

    def create() -> str:
        name = f"relay-test.{uuid.uuid4().hex[:12]}.events.v1"
        ensure_topics(kafka_bootstrap, [name], partitions=PARTITIONS, replication_factor=1, min_insync_replicas=1)
        created.append(name)
        return name

    yield create
    _delete_topics(kafka_bootstrap, created)


def _delete_topics(bootstrap: str, names: Sequence[str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="relay-test-admin")
    existing = set(admin.list_topics()) & set(names)  # a test that failed early may not have made them all
    if existing:
        admin.delete_topics(sorted(existing))
    admin.close()


# --- writing events through the event store ------------------------------------------------------------


@dataclass
class Appended:
    """What was appended: each event's stream and sequence, type, envelope and the trace it was appended in."""

    position: dict[str, tuple[str, int]] = field(default_factory=dict)
    event_type: dict[str, str] = field(default_factory=dict)
    envelope: dict[str, bytes] = field(default_factory=dict)
    traceparent: dict[str, str] = field(default_factory=dict)


class Writer:
    """Appends synthetic events through EventStore, inside spans of a local OpenTelemetry tracer."""

    def __init__(self) -> None:
        org = SyntheticOrg.create(POLICE)
        self._org = org
        self._sealer = Sealer(org.signer)
        self._key = new_data_key()
        self._tracer = TracerProvider().get_tracer("tests.outbox_relay")
        self.appended = Appended()
        self._versions: dict[str, int] = defaultdict(int)

    def store(self, topic: str) -> EventStore:
        return EventStore(self._sealer, self._org.org_id, "intake", self._org.signing_key_id, topic)

    def interleaved(self, engine: sa.Engine, topic: str, *, streams: int, rounds: int, per_append: int) -> list[str]:
        """``rounds`` transactions, each appending ``per_append`` events to every one of ``streams`` streams."""
        names = [f"ref-{uuid.uuid4().hex[:16]}" for _ in range(streams)]
        store = self.store(topic)
        for _ in range(rounds):
            with self._tracer.start_as_current_span("submit-round"), Session(engine) as session, session.begin():
                for stream in names:
                    self.append(session, store, stream, per_append)
        return names

    def append(self, session: Session, store: EventStore, stream: str, count: int) -> None:
        traceparent, _ = current_trace_context()
        assert traceparent, "appends must run inside a span"
        version = self._versions[stream]
        new = [NewEvent(EVENT_TYPES[(version + i) % len(EVENT_TYPES)], 1,
                        {SectionKind.ROUTING: (self._key, ROUTING_PLAINTEXT)}) for i in range(count)]
        for event in store.append(session, stream, version, new):
            self.appended.position[event.event_id] = (stream, event.stream_sequence)
            self.appended.event_type[event.event_id] = event.event_type
            self.appended.envelope[event.event_id] = event.envelope
            self.appended.traceparent[event.event_id] = traceparent
        self._versions[stream] = version + count

    def in_span(self) -> AbstractContextManager[object]:
        return self._tracer.start_as_current_span("submit")


# --- reading Kafka and the outbox back -----------------------------------------------------------------


@dataclass(frozen=True)
class WireRecord:
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: dict[str, bytes]

    @property
    def event_id(self) -> str:
        return self.headers["event-id"].decode()


def read_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[WireRecord]:
    """Every record of ``topic`` up to its current end, by partition and offset."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", max_poll_records=2_000)
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    records: list[WireRecord] = []
    deadline = time.monotonic() + timeout_s
    while any(consumer.position(tp) < ends[tp] for tp in partitions):
        assert time.monotonic() < deadline, f"read {len(records)} records of {sum(ends.values())} in {timeout_s}s"
        for batch in consumer.poll(timeout_ms=500).values():
            records += [WireRecord(r.partition, r.offset, r.key, r.value, dict(r.headers)) for r in batch]
    consumer.close()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def first_occurrences(records: Sequence[WireRecord]) -> list[WireRecord]:
    """What a consumer that drops duplicates by the ``event-id`` header processes."""
    seen: set[str] = set()
    kept = []
    for record in records:
        if record.event_id not in seen:
            seen.add(record.event_id)
            kept.append(record)
    return kept


def assert_each_event_once_in_stream_order(records: Sequence[WireRecord], appended: Appended) -> None:
    counts = Counter(record.event_id for record in records)
    assert set(counts) == set(appended.position), "events missing from the topic, or foreign ones on it"
    assert max(counts.values()) == 1, "an event was delivered twice"
    partitions: dict[str, set[int]] = defaultdict(set)
    sequences: dict[str, list[int]] = defaultdict(list)
    for record in records:  # by partition and offset
        stream, sequence = appended.position[record.event_id]
        assert record.key == stream.encode(), "the record key must be the stream id"
        partitions[stream].add(record.partition)
        sequences[stream].append(sequence)
    assert all(len(found) == 1 for found in partitions.values()), "a stream was spread over partitions"
    assert all(found == list(range(1, len(found) + 1)) for found in sequences.values()), "a stream is out of order"


def outbox_state(engine: sa.Engine) -> list[tuple[int, str, int | None]]:
    """(outbox id, event id, published_at_us) of every outbox row, by outbox id."""
    query = (sa.select(outbox.c.id, events.c.event_id, outbox.c.published_at_us)
             .join(events, events.c.position == outbox.c.event_position).order_by(outbox.c.id))
    with engine.connect() as conn:
        return [(row.id, row.event_id, row.published_at_us) for row in conn.execute(query)]


def unpublished(engine: sa.Engine) -> int:
    with Session(engine) as session:
        return pending_count(session)


def drain(relay: OutboxRelay) -> int:
    total = 0
    while published := relay.publish_pending():
        total += published
    return total


# --- tests ---------------------------------------------------------------------------------------------


def test_relay_publishes_10k_events_exactly_once_in_stream_order_with_trace_headers(engine, new_topic,
                                                                                      kafka_bootstrap, capsys):
    topic = new_topic()
    writer = Writer()
    writer.interleaved(engine, topic, streams=100, rounds=20, per_append=5)
    appended = writer.appended
    assert len(appended.position) == 10_000
    yields: list[int] = []

    relay = OutboxRelay(engine, kafka_bootstrap, batch_size=1_000, cooperative_yield=lambda: yields.append(1))
    started = time.perf_counter()
    try:
        published = drain(relay)
        elapsed = time.perf_counter() - started
        assert relay.publish_pending() == 0
    finally:
        relay.close()
    with capsys.disabled():
        print(f"\n[outbox relay, {engine.dialect.name}] {published} events published and marked in {elapsed:.2f}s: "
              f"{published / elapsed:,.0f} events/s")

    assert published == 10_000
    assert len(yields) == 10_000 // 100, "the cooperative yield hook runs every 100 sends"
    assert unpublished(engine) == 0
    assert all(published_at is not None for _, _, published_at in outbox_state(engine))
    records = read_topic(kafka_bootstrap, topic)
    assert_each_event_once_in_stream_order(records, appended)
    for record in records:
        event_id = record.event_id
        assert record.value == appended.envelope[event_id], "the record value must be the stored envelope"
        assert record.headers["event-type"].decode() == appended.event_type[event_id]
        assert record.headers["traceparent"].decode() == appended.traceparent[event_id]
    assert len({record.headers["traceparent"] for record in records}) == 20  # one span per appending round


def test_relay_killed_after_the_ack_and_before_the_mark_loses_nothing_and_resends_only_that_page(
        database_url, engine, new_topic, kafka_bootstrap, tmp_path):
    topic = new_topic()
    writer = Writer()
    writer.interleaved(engine, topic, streams=30, rounds=20, per_append=5)
    appended = writer.appended
    total, page = 3_000, 500
    assert len(appended.position) == total
    acked_file = tmp_path / "acked-ids.json"

    crashed = subprocess.run(
        [sys.executable, "-m", "tests.integration.support.crashing_relay", "--database-url", database_url,
         "--bootstrap-servers", kafka_bootstrap, "--batch-size", str(page), "--crash-on-page", "3",
         "--acked-ids-file", str(acked_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=45, check=False)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]

    state = outbox_state(engine)
    ids = [outbox_id for outbox_id, _, _ in state]
    crashed_page = json.loads(acked_file.read_text())
    assert crashed_page == ids[2 * page:3 * page], "the crash hit the third page, after all of it was acknowledged"
    assert [outbox_id for outbox_id, _, at in state if at is not None] == ids[:2 * page]
    assert len(read_topic(kafka_bootstrap, topic)) == 3 * page, "the crashed page did reach Kafka"

    relay = OutboxRelay(engine, kafka_bootstrap, batch_size=page)
    try:
        assert drain(relay) == total - 2 * page
    finally:
        relay.close()

    assert unpublished(engine) == 0
    records = read_topic(kafka_bootstrap, topic)
    counts = Counter(record.event_id for record in records)
    event_of = {outbox_id: event_id for outbox_id, event_id, _ in state}
    assert len(records) == total + page, "exactly the crashed page is on the wire twice"
    assert {event_id for event_id, seen in counts.items() if seen == 2} == {event_of[i] for i in crashed_page}
    assert max(counts.values()) == 2
    assert_each_event_once_in_stream_order(first_occurrences(records), appended)


def test_unreachable_kafka_raises_logs_and_leaves_every_row_pending_until_it_is_back(engine, new_topic,
                                                                                     kafka_bootstrap, caplog):
    topic = new_topic()
    writer = Writer()
    streams = writer.interleaved(engine, topic, streams=5, rounds=2, per_append=5)
    nowhere = f"127.0.0.1:{free_ports(1)[0]}"  # a free port: nothing answers there
    factory = kafka_producer_factory(nowhere, bootstrap_timeout_ms=800, max_block_ms=800, request_timeout_ms=800,
                                     delivery_timeout_ms=2_000)
    relay = OutboxRelay(engine, factory, batch_size=20, ack_timeout_s=3)

    started = time.monotonic()
    with pytest.raises(KafkaError):
        relay.publish_pending()
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 2.5
    with caplog.at_level(logging.WARNING, logger="services.core.messaging.relay"):
        relay.run(lambda: time.monotonic() > deadline, idle_sleep_s=0.2, max_backoff_s=0.5)
    relay.close()

    assert "outbox relay round failed (KafkaTimeoutError" in caplog.text
    assert not any(stream in caplog.text for stream in streams), "logs carry ids of rows and events, not streams"
    assert unpublished(engine) == 50
    assert all(published_at is None for _, _, published_at in outbox_state(engine))

    back = OutboxRelay(engine, kafka_bootstrap)
    try:
        assert drain(back) == 50
    finally:
        back.close()
    assert_each_event_once_in_stream_order(read_topic(kafka_bootstrap, topic), writer.appended)


def test_a_failed_send_leaves_its_row_and_the_rest_of_its_stream_pending(engine, new_topic, kafka_bootstrap,
                                                                         caplog):
    good = new_topic()
    missing = f"relay-test.{uuid.uuid4().hex[:12]}.not-created.v1"
    writer = Writer()
    to_good, to_missing = writer.store(good), writer.store(missing)
    blocked, free = "ref-blocked-" + uuid.uuid4().hex[:8], "ref-free-" + uuid.uuid4().hex[:8]
    with writer.in_span(), Session(engine) as session, session.begin():
        for store in (to_good, to_missing, to_good):  # the blocked stream's 2nd event goes to a missing topic
            writer.append(session, store, blocked, 1)
            writer.append(session, to_good, free, 1)
    event = {position: event_id for event_id, position in writer.appended.position.items()}

    relay = OutboxRelay(engine, kafka_producer_factory(kafka_bootstrap, max_block_ms=1_500))
    try:
        with caplog.at_level(logging.WARNING, logger="services.core.messaging.relay"):
            assert relay.publish_pending() == 4
        pending_events = {event_id for _, event_id, at in outbox_state(engine) if at is None}
        assert pending_events == {event[blocked, 2], event[blocked, 3]}
        on_wire = [record.event_id for record in read_topic(kafka_bootstrap, good)]
        assert sorted(on_wire) == sorted([event[blocked, 1], *(event[free, n] for n in (1, 2, 3))])
        assert f"(event {event[blocked, 2]}) not acknowledged" in caplog.text
        assert "KafkaTimeoutError" in caplog.text
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="relay-test-admin")
        assert missing not in admin.list_topics(), "a send must never create a topic"
        admin.close()

        ensure_topics(kafka_bootstrap, [missing], partitions=PARTITIONS, replication_factor=1, min_insync_replicas=1)
        assert relay.publish_pending() == 2
    finally:
        relay.close()
        _delete_topics(kafka_bootstrap, [missing])
    good_records = read_topic(kafka_bootstrap, good)
    assert [record.event_id for record in good_records if record.key == blocked.encode()] == [
        event[blocked, 1], event[blocked, 3]]
    assert unpublished(engine) == 0


def test_relay_process_stops_gracefully_on_sigterm_and_marks_only_what_kafka_holds(database_url, engine, new_topic,
                                                                                   kafka_bootstrap):
    topic = new_topic()
    writer = Writer()
    writer.interleaved(engine, topic, streams=20, rounds=25, per_append=10)
    total = 5_000
    process = subprocess.Popen(
        [sys.executable, "-m", "services.core.messaging.relay", "--database-url", database_url,
         "--bootstrap-servers", kafka_bootstrap, "--batch-size", "250", "--idle-sleep", "0.1"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 30
        while unpublished(engine) == total:  # SIGTERM as soon as the relay is busy
            assert process.poll() is None and time.monotonic() < deadline, "the relay process published nothing"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr[-3000:]
    assert "stopping after the current round" in stderr and "outbox relay stopped" in stderr

    marked = {event_id for _, event_id, at in outbox_state(engine) if at is not None}
    assert marked, "the relay published before it stopped"
    on_wire = {record.event_id for record in read_topic(kafka_bootstrap, topic)}
    assert marked <= on_wire, "a row was marked published that Kafka does not hold"

    relay = OutboxRelay(engine, kafka_bootstrap)
    try:
        drain(relay)
    finally:
        relay.close()
    assert unpublished(engine) == 0
    assert_each_event_once_in_stream_order(first_occurrences(read_topic(kafka_bootstrap, topic)), writer.appended)


def test_an_envelope_whose_header_does_not_parse_is_still_published_but_without_trace_context(
        engine, new_topic, kafka_bootstrap, caplog):
    topic = new_topic()
    writer = Writer()
    [stream] = writer.interleaved(engine, topic, streams=1, rounds=1, per_append=2)
    unreadable = b"\xff\x01 not an envelope"
    with Session(engine) as session, session.begin():  # what a corrupted row would look like
        position = session.execute(sa.insert(events).values(
            stream_id=stream, stream_sequence=3, event_id=new_event_id(), event_type="HandoffOffered",
            schema_version=1, occurred_at_us=now_micros(), envelope=unreadable, canonical_hash=bytes(32),
        ).returning(events.c.position)).scalar_one()
        session.execute(sa.insert(outbox).values(event_position=position, topic=topic, created_at_us=now_micros()))

    with caplog.at_level(logging.WARNING, logger="services.core.eventstore.outbox"), Session(engine) as session:
        assert len(pending(session, 2)) == 2
        records = pending(session, 10)
    assert [record.outbox_id for record in records] == sorted(record.outbox_id for record in records)
    assert [record.stream_sequence for record in records] == [1, 2, 3]
    assert [record.traceparent for record in records[:2]] == [writer.appended.traceparent[r.event_id]
                                                              for r in records[:2]]
    assert (records[2].traceparent, records[2].tracestate, records[2].envelope) == ("", "", unreadable)
    assert f"outbox row {records[2].outbox_id}: no readable trace context" in caplog.text

    relay = OutboxRelay(engine, kafka_bootstrap)
    try:
        assert drain(relay) == 3
    finally:
        relay.close()
    wire = read_topic(kafka_bootstrap, topic)
    assert [record.value for record in wire][-1] == unreadable
    assert "traceparent" not in wire[-1].headers and wire[-1].headers["event-type"] == b"HandoffOffered"


def test_ensure_topics_creates_append_only_topics_accepts_them_again_and_refuses_drifted_ones(kafka_bootstrap):
    prefix = f"relay-test.{uuid.uuid4().hex[:12]}"
    names = [f"{prefix}.intake.events.v1", f"{prefix}.checkpoints.v1", f"{prefix}.worker.dlq.v1"]
    drifted = f"{prefix}.drifted.v1"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="relay-test-admin")
    try:
        first = ensure_topics(kafka_bootstrap, names, partitions=3, replication_factor=1, min_insync_replicas=1)
        again = ensure_topics(kafka_bootstrap, names, partitions=3, replication_factor=1, min_insync_replicas=1)
        assert (sorted(first.created), first.existing) == (sorted(names), ())
        assert (again.created, sorted(again.existing)) == ((), sorted(names))
        described = admin.describe_configs([ConfigResource("TOPIC", name, None) for name in names],
                                           config_filter="all")["topic"]
        for name in names:
            configs = {key: described[name][key]["value"] for key in (
                "retention.ms", "retention.bytes", "cleanup.policy", "min.insync.replicas",
                "unclean.leader.election.enable")}
            assert configs == {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete",
                               "min.insync.replicas": "1", "unclean.leader.election.enable": "false"}
        assert {len(topic["partitions"]) for topic in admin.describe_topics(names)} == {3}

        admin.create_topics({drifted: {"num_partitions": 1, "replication_factor": 1,
                                       "configs": {"retention.ms": "604800000"}}})
        with pytest.raises(TopicConfigError, match=rf"{drifted}: retention\.ms=604800000 \(wanted -1\)"):
            ensure_topics(kafka_bootstrap, [names[0], drifted], partitions=3, replication_factor=1,
                          min_insync_replicas=1)
    finally:
        admin.delete_topics([*names, drifted])
        admin.close()


def test_network_topics_name_every_events_topic_the_checkpoints_and_one_dlq_per_consumer():
    topics = network_topics(["referral-worker", "audit-worker", "referral-worker"])
    assert topics == [events_topic("intake"), events_topic("referral"), events_topic("audit"), events_topic("notify"),
                      CHECKPOINT_TOPIC, dead_letter_topic("referral-worker"), dead_letter_topic("audit-worker")]
    assert topics[0] == "referralnet.intake.events.v1"
