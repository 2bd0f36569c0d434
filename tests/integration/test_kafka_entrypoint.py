"""The Kafka entrypoint under ``nameko run``: exactly-once effects, crash, poison records, rebalancing.

What is real: Apache Kafka, PostgreSQL (a fresh database per test), ``nameko run`` subprocesses of
tests/integration/support/effects_service.py (eventlet-patched, as in production), envelopes sealed with
the keys of a ``network init`` network. Nothing is replaced. Every wait has a deadline and every process
is stopped in a ``finally``.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.core.database import create_engine
from services.core.envelope import SectionKind, parse_envelope
from services.core.eventstore.schema import METADATA, outbox, processed_events
from services.core.eventstore.store import EventStore, NewEvent
from services.core.eventstore.transaction import unit_of_work
from services.core.identity.network import init_network
from services.core.identity.records import signing_key_id
from services.core.messaging.relay import OutboxRelay
from services.core.messaging.topics import dead_letter_topic
from services.core.migrations import upgrade
from services.core.runtime.dead_letter import header_map
from tests.integration.support import effects_service
from tests.integration.support.effects_service import applications, effects
from tests.integration.support.events import Event, EventFactory, Topics, produce, read_all, send_raw
from tests.integration.support.nameko_process import NamekoProcess, wait_until, write_config
from tests.processes import processes_mentioning
from tests.unit.envelope_support import header_bytes_of, rebuild, sections_of

pytestmark = pytest.mark.integration

FAST_GROUP_TIMEOUTS = {"session_timeout_ms": 6_000, "heartbeat_interval_ms": 1_000}


@pytest.fixture(scope="module")
def network_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_network(tmp_path_factory.mktemp("runtime") / "network").layout.root


@pytest.fixture
def database(postgres_url: str) -> Iterator[sa.Engine]:
    """A fresh PostgreSQL database with the consumer's tables (until migrations land: create_all)."""
    name = "rt_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = sa.create_engine(sa.make_url(postgres_url).set(database=name))
    METADATA.create_all(engine, tables=[processed_events])
    effects_service.METADATA.create_all(engine)
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.dispose()


@dataclass
class Scenario:
    """One topic, one consumer group, its dead-letter topic, and the worker processes started for it."""

    bootstrap: str
    engine: sa.Engine
    network: Path
    folder: Path
    topics: Topics
    partitions: int
    group: str = field(default_factory=lambda: "effects-" + uuid.uuid4().hex[:8])
    processes: list[NamekoProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.topic = self.topics.create("rt." + uuid.uuid4().hex[:12], self.partitions)
        self.dead_letters = self.topics.create(dead_letter_topic(self.group), 1)
        self.factory = EventFactory(self.network)
        self.keys = self.factory.write_keys(self.folder / "keys.json")
        url = self.engine.url.render_as_string(hide_password=False)
        self.config = write_config(self.folder / f"{self.group}.json", {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "DATABASE_URL": url, "NETWORK_DIR": str(self.network),
            "max_workers": 10, "KAFKA_CONSUMER_OPTIONS": FAST_GROUP_TIMEOUTS})

    def start(self, name: str, **env: str) -> NamekoProcess:
        process = NamekoProcess(name, self.config, {
            "EFFECTS_TOPIC": self.topic, "EFFECTS_GROUP": self.group, "EFFECTS_KEYS_FILE": str(self.keys), **env,
        }, self.folder / f"{name}.log")
        self.processes.append(process)
        return process.start()

    def count(self, table: sa.Table) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    def members(self) -> int:
        return self.topics.stable_members(self.group)

    def applied_by(self, process: NamekoProcess) -> int:
        with self.engine.connect() as connection:
            query = sa.select(sa.func.count()).select_from(applications).where(applications.c.pid == process.pid)
            return int(connection.execute(query).scalar_one())

    def committed(self) -> int:
        return sum(self.topics.committed(self.group).values())

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture
def scenario(kafka_bootstrap, database, network_dir, tmp_path) -> Iterator[Callable[[int], Scenario]]:
    topics = Topics(kafka_bootstrap)
    made: list[Scenario] = []

    def make(partitions: int) -> Scenario:
        made.append(Scenario(kafka_bootstrap, database, network_dir, tmp_path, topics, partitions))
        return made[-1]

    try:
        yield make
    finally:
        for each in made:
            each.stop_all()
        topics.close()
    for each in made:
        assert processes_mentioning(str(each.config)) == [], "a nameko process outlived its test"


def assert_exactly_once_in_stream_order(engine: sa.Engine, events: list[Event]) -> dict[int, int]:
    """Every event applied once, each stream's events in sequence order; returns applications per pid."""
    with engine.connect() as connection:
        applied = dict(connection.execute(sa.select(effects.c.event_id, effects.c.applied)).all())
        log = connection.execute(sa.select(applications).order_by(applications.c.id)).all()
    assert len(applied) == len(events), f"{len(events) - len(applied)} events have no effect"
    assert set(applied.values()) == {1}, "an event's effect was applied more than once"
    assert {event.event_id for event in events} == set(applied)
    assert len(log) == len(events), "an application was logged twice"
    by_stream: dict[str, list[int]] = defaultdict(list)
    by_pid: dict[int, int] = defaultdict(int)
    for row in log:
        by_stream[row.stream_id].append(row.stream_sequence)
        by_pid[row.pid] += 1
    expected: dict[str, list[int]] = defaultdict(list)
    for event in events:
        expected[event.stream_id].append(event.sequence)
    assert by_stream == expected, "a stream's events were applied out of order"
    return dict(by_pid)


def stats_of(process: NamekoProcess) -> dict[str, int]:
    """The counters the entrypoint logs when it stops: ``stopping: {'committed': 10, ...}``."""
    found = re.findall(r"stopping: \{([^}]*)\}", process.log())
    assert found, f"{process.name} logged no final counters:\n{process.tail()}"
    return {key: int(value) for key, value in re.findall(r"'(\w+)': (\d+)", found[-1])}


def test_a_consumer_without_its_dead_letter_topic_refuses_to_start_and_says_why(scenario):
    run = scenario(partitions=1)
    run.topics.admin.delete_topics([run.dead_letters])
    run.topics.created.remove(run.dead_letters)
    worker = run.start("worker")
    assert worker.wait_exit(60) == 1
    assert f"topics ['{run.dead_letters}'] do not exist" in worker.log()


def test_every_event_takes_effect_exactly_once_in_stream_order(scenario, capsys):
    run = scenario(partitions=6)
    events = list(run.factory.streams(streams=60, per_stream=40))
    produce(run.bootstrap, run.topic, events)
    worker = run.start("worker")
    wait_until(lambda: run.count(effects) > 0, 60, "the first effect", (worker,))
    started = time.monotonic()
    wait_until(lambda: run.count(effects) >= len(events), 120, "every effect", (worker,))
    elapsed = time.monotonic() - started
    wait_until(lambda: run.committed() == len(events), 30, "every offset committed", (worker,))
    assert worker.terminate() == 0

    assert_exactly_once_in_stream_order(run.engine, events)
    assert run.count(processed_events) == len(events)
    assert stats_of(worker) == {"committed": len(events)}
    assert read_all(run.bootstrap, run.dead_letters, expected=1, timeout_s=2) == []
    with capsys.disabled():
        print(f"\n  one worker (10 greenthreads, PostgreSQL): {len(events)} events in {elapsed:.1f}s = "
              f"{len(events) / elapsed:.0f} events/s")


def test_a_worker_killed_after_its_commit_redelivers_and_the_duplicate_is_dropped(scenario):
    run = scenario(partitions=3)
    events = list(run.factory.streams(streams=30, per_stream=30))
    produce(run.bootstrap, run.topic, events)

    crashing = run.start("crashing", EFFECTS_CRASH_AFTER="400")
    assert crashing.wait_exit(90) == -signal.SIGKILL, crashing.tail()
    applied_before, committed_before = run.count(effects), run.committed()
    assert applied_before >= 400
    assert committed_before < applied_before, "the crash left no applied-but-uncommitted record to redeliver"

    restarted = run.start("restarted")
    wait_until(lambda: run.count(effects) >= len(events), 120, "every effect after the restart", (restarted,))
    wait_until(lambda: run.committed() == len(events), 30, "every offset committed", (restarted,))
    assert restarted.terminate() == 0

    assert_exactly_once_in_stream_order(run.engine, events)
    stats = stats_of(restarted)
    assert stats["duplicate"] == applied_before - committed_before, "each redelivered applied record is a duplicate"
    assert stats["committed"] == len(events) - applied_before


def tampered(event: Event) -> bytes:
    """The event with one ciphertext byte flipped, signature and digests left as the producer made them."""
    sections = sections_of(event.wire)
    sections[0].ciphertext = bytes([sections[0].ciphertext[0] ^ 0x01]) + sections[0].ciphertext[1:]
    signature = parse_envelope(event.wire).signature
    return rebuild(header_bytes_of(event.wire), sections, None, signature=signature, recompute_digests=False)


def test_poison_records_are_dead_lettered_with_their_reason_and_the_next_record_is_processed(scenario):
    run = scenario(partitions=1)
    factory, stream = run.factory, "poison-" + uuid.uuid4().hex[:8]
    goods = [factory.event(f"{stream}-good-{i}", 1) for i in range(6)]
    foreign = EventFactory(run.network)  # same producer, but a routing key this service does not hold
    poison = [
        (b"garbage", b"\x00\x01 not an envelope \xff", "malformed"),
        (b"tampered", tampered(factory.event(f"{stream}-t", 1)), "tampered_section"),
        (b"rogue", factory.signed_by_unknown_key(f"{stream}-r", 1).wire, "unknown_key"),
        (b"failing", factory.event(f"{stream}-f", 1, event_type=effects_service.FAILING_TYPE).wire, "handler_failed"),
        (b"foreign", foreign.event(f"{stream}-x", 1).wire, "unknown_key"),
    ]
    records = [(goods[0].stream_id.encode(), goods[0].wire)]
    for (key, value, _), good in zip(poison, goods[1:], strict=True):
        records += [(key, value), (good.stream_id.encode(), good.wire)]
    offsets = send_raw(run.bootstrap, run.topic, records)

    worker = run.start("worker")
    wait_until(lambda: run.count(effects) == len(goods), 60, "every good record's effect", (worker,))
    wait_until(lambda: run.committed() == len(records), 30, "every offset, poison included, committed", (worker,))
    assert worker.terminate() == 0

    letters = read_all(run.bootstrap, run.dead_letters, expected=len(poison))
    assert len(letters) == len(poison)
    by_offset = {int(header_map(letter.headers)["original-offset"]): letter for letter in letters}
    expected_attempts = {"garbage": "0", "tampered": "0", "rogue": "0", "failing": "3", "foreign": "1"}
    for (key, value, reason), offset in zip(poison, offsets[1::2], strict=True):
        letter = by_offset[offset]  # streams are independent: dead letters need not come in offset order
        headers = header_map(letter.headers)
        assert (letter.key, letter.value) == (key, value), "the dead letter must carry the original bytes"
        assert headers["reason"] == reason, headers
        assert (headers["original-topic"], headers["original-partition"]) == (run.topic, "0")
        assert headers["consumer"] == run.group
        assert headers["attempts"] == expected_attempts[key.decode()]
        assert datetime.fromisoformat(headers["time"]).tzinfo is not None
        assert all(b"region" not in header for _, header in letter.headers), "no plaintext in headers"
    stats = stats_of(worker)
    assert stats == {"committed": len(goods), "dead_lettered": len(poison), "retries": 2}
    assert_exactly_once_in_stream_order(run.engine, goods)


def test_members_joining_and_leaving_under_load_lose_nothing_and_apply_everything_once(scenario):
    run = scenario(partitions=6)
    events = list(run.factory.streams(streams=60, per_stream=50))
    first, second = run.start("first"), run.start("second")
    wait_until(lambda: run.members() == 2, 60, "two members holding partitions", (first, second))

    producer = threading.Thread(target=produce, args=(run.bootstrap, run.topic, events),
                                kwargs={"pause_every": 100, "pause_seconds": 0.2}, daemon=True)
    producer.start()
    try:
        wait_until(lambda: run.count(effects) >= 300, 60, "processing under way", (first, second))
        third = run.start("third")
        wait_until(lambda: run.members() == 3, 60, "three members holding partitions", (first, second, third))
        wait_until(lambda: run.applied_by(third) >= 50, 60, "the third member working", (first, second, third))
        assert run.count(effects) < len(events), "the load must still be running when a member leaves"
        assert first.terminate(60) == 0, "a SIGTERM must stop the worker cleanly"
        wait_until(lambda: run.members() == 2, 60, "two members again", (second, third))
    finally:
        producer.join(timeout=120)
    assert not producer.is_alive()
    wait_until(lambda: run.count(effects) >= len(events), 120, "every effect", (second, third))
    wait_until(lambda: run.committed() == len(events), 30, "every offset committed", (second, third))
    for process in (second, third):
        assert process.terminate() == 0

    by_pid = assert_exactly_once_in_stream_order(run.engine, events)
    assert {first.pid, second.pid, third.pid} <= set(by_pid), f"every member should have worked: {by_pid}"
    assert read_all(run.bootstrap, run.dead_letters, expected=1, timeout_s=2) == []


def test_outbox_relay_to_worker_10k_events_take_effect_exactly_once_in_stream_order(scenario, tmp_path):
    """The whole chain: EventStore append (with outbox) -> OutboxRelay -> Kafka -> the nameko worker."""
    run = scenario(partitions=6)
    producer_url = f"sqlite+pysqlite:///{tmp_path / 'producer.db'}"
    upgrade(producer_url)
    producer_engine = create_engine(producer_url)
    org = run.factory.org_id
    store = EventStore(run.factory.sealer, org, "intake", signing_key_id(org), run.topic)
    streams = [f"ref-{uuid.uuid4().hex[:8]}-{i:03d}" for i in range(100)]
    events: list[Event] = []
    for batch in range(2):  # two commands per stream, 50 events each
        for stream in streams:
            new = [NewEvent("EffectRequested", 1, {SectionKind.ROUTING: (
                run.factory.routing_key, json.dumps({"region": "MDD", "urgency": "high"}).encode())})
                for _ in range(50)]
            with unit_of_work(producer_engine) as session:
                stored = store.append(session, stream, batch * 50, new)
            events += [Event(e.event_id, e.stream_id, e.stream_sequence, e.envelope) for e in stored]
    relay = OutboxRelay(producer_engine, run.bootstrap)
    stop = threading.Event()
    relaying = threading.Thread(target=relay.run, args=(stop,), kwargs={"idle_sleep_s": 0.05}, daemon=True)
    worker = run.start("worker")
    relaying.start()
    try:
        wait_until(lambda: run.count(effects) >= len(events), 240, "every effect", (worker,))
        wait_until(lambda: run.committed() == len(events), 30, "every offset committed", (worker,))
    finally:
        stop.set()
        relaying.join(timeout=30)
        relay.close()
    assert worker.terminate() == 0
    with producer_engine.connect() as connection:
        unpublished = connection.execute(sa.select(sa.func.count()).select_from(outbox)
                                         .where(outbox.c.published_at_us.is_(None))).scalar_one()
    producer_engine.dispose()
    assert len(events) == 10_000
    assert unpublished == 0
    assert_exactly_once_in_stream_order(run.engine, events)
