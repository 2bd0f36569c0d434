"""The audit worker as it runs: ``nameko run services.audit.worker`` against real Kafka.

What is real: Apache Kafka (the session's broker), a ``network init`` network, intake's and referral's
events sealed and signed as ``svc:intake`` / ``svc:referral`` by EventStores and published by the
OutboxRelay, the worker process (its batch entrypoint, tpool verification, checkpoint timer and producer)
and its migrated SQLite database, read here after it. What is replaced: nothing; the topics, the consumer
group and the checkpoint topic are the test's own (``AUDIT_SOURCE_TOPICS``, ``AUDIT_DEAD_LETTER_TOPICS``,
``AUDIT_WORKER_GROUP``, ``AUDIT_CHECKPOINT_TOPIC``), so a network running in the same session never sees
them. The crash is a real SIGKILL by a subclass of the worker (``CrashingAuditWorker`` below), right after a
batch's transaction committed and before its offsets were.

Each checkpoint is checked the way an auditor would: its signature against the directory, its link to the
previous one, and its root against a MemoryTree built by replaying its runs from Kafka with the same rules
(verify, skip duplicates and rejects).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from google.protobuf.message import Message
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.structs import TopicPartition
from sqlalchemy.orm import Session

from services.audit.adapters import custody_store as store
from services.audit.adapters.custody_tables import subject_leaves
from services.audit.adapters.database import migrate
from services.audit.adapters.tree_store import SqlTree
from services.audit.batch_entrypoint import batch_consume
from services.audit.domain.checkpoint import Checkpoint, check_extends, parse_checkpoint, verify_checkpoint
from services.audit.domain.merkle import MemoryTree
from services.audit.worker import AuditWorker, audit_subscription
from services.core.database import create_engine
from services.core.envelope import EnvelopeError, EnvelopeSigner, Sealer, Verifier
from services.core.eventstore import EventStore, NewEvent, unit_of_work
from services.core.identity.keystore import load_service_signing_key
from services.core.identity.network import NetworkCreated, init_network
from services.core.identity.records import service_owner, signing_key_id
from services.core.keyvault.routing_keys import NetworkRoutingKeys, load_routing_keys
from services.core.messaging.relay import OutboxRelay
from services.core.messaging.topics import dead_letter_topic, ensure_topics
from services.core.migrations import upgrade
from services.referral.adapters.events import sealed_event as sealed_referral_event
from tests.integration.support.events import producer, send_raw
from tests.integration.support.nameko_process import ROOT, NamekoProcess, wait_until, write_config
from tests.unit.audit_ledger_support import Envelopes, ReferralFeed, dead_letter_record, flip_last_byte
from tests.unit.referral_support import SubjectFeed, sealed_intake_event

pytestmark = pytest.mark.integration
SERVICE = "services.audit.worker"
CRASHING_SERVICE = "tests.integration.test_audit_worker:CrashingAuditWorker"
CRASH_AFTER = "AUDIT_TEST_CRASH_AFTER_BATCHES"
FAST_GROUP = {"session_timeout_ms": 6_000, "heartbeat_interval_ms": 1_000}


class CrashingAuditWorker(AuditWorker):
    """The audit worker, SIGKILLed right after the Nth batch's transaction committed (before its offsets)."""

    batches = 0

    @batch_consume(audit_subscription)
    def append_batch(self, records: list[Any]) -> None:
        AuditWorker.append_batch(self, records)
        CrashingAuditWorker.batches += 1
        if CrashingAuditWorker.batches >= int(os.environ.get(CRASH_AFTER, "0") or 10**9):
            os.kill(os.getpid(), signal.SIGKILL)


class WorkerProcess(NamekoProcess):
    """``nameko run`` of the audit worker (or of the crashing subclass)."""

    def __init__(self, name: str, config: Path, env: dict[str, str], log_path: Path, service: str = SERVICE) -> None:
        super().__init__(name, config, env, log_path)
        self.service = service

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nameko", "run", "--config", str(self.config), self.service],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self


@dataclass(frozen=True)
class AuditTopics:
    """The test's own topics and group."""

    intake: str
    referral: str
    dead_letters: str
    checkpoints: str
    group: str


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> NetworkCreated:
    return init_network(tmp_path_factory.mktemp("audit-worker-it") / "network")


@pytest.fixture
def topics(kafka_bootstrap: str) -> AuditTopics:
    return make_topics(kafka_bootstrap)


def make_topics(kafka_bootstrap: str) -> AuditTopics:
    """Fresh events, dead-letter and checkpoint topics and a fresh group, all named for this test only."""
    suffix = uuid.uuid4().hex[:10]
    made = AuditTopics(f"referralnet.intake-audit-{suffix}.events.v1", f"referralnet.referral-audit-{suffix}.events.v1",
                       dead_letter_topic(f"referral-worker-audit-{suffix}"),
                       f"referralnet.audit-{suffix}.checkpoints.v1", f"audit-worker-test-{suffix}")
    ensure_topics(kafka_bootstrap, [made.intake, made.referral], partitions=3, replication_factor=1,
                  min_insync_replicas=1)
    ensure_topics(kafka_bootstrap, [made.dead_letters, made.checkpoints], partitions=1, replication_factor=1,
                  min_insync_replicas=1)
    return made


def worker_config(path: Path, network: NetworkCreated, bootstrap: str, topics: AuditTopics, database_url: str,
                  **overrides: object) -> Path:
    values: dict[str, object] = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": database_url, "NETWORK_DIR": str(network.layout.root),
        "AUDIT_SOURCE_TOPICS": [topics.intake, topics.referral], "AUDIT_DEAD_LETTER_TOPICS": [topics.dead_letters],
        "AUDIT_WORKER_GROUP": topics.group, "AUDIT_CHECKPOINT_TOPIC": topics.checkpoints,
        "CHECKPOINT_EVERY": 1000, "CHECKPOINT_SECONDS": 0.5, "AUDIT_BATCH_RECORDS": 500,
        "KAFKA_CONSUMER_OPTIONS": FAST_GROUP}
    values.update(overrides)
    return write_config(path, values)


class SourceServices:
    """Intake's and referral's side: EventStores signing as their services, one outbox relayed to Kafka."""

    def __init__(self, folder: Path, network: NetworkCreated, bootstrap: str, topics: AuditTopics) -> None:
        url = f"sqlite+pysqlite:///{folder / 'sources.db'}"
        upgrade(url)
        self.engine = create_engine(url)
        self.keys: NetworkRoutingKeys = load_routing_keys(network.layout.root)
        self.intake = _store(network, "intake", topics.intake)
        self.referral = _store(network, "referral", topics.referral)
        self.relay = OutboxRelay(self.engine, bootstrap)

    def publish(self, store_: EventStore, stream: str, events: Sequence[NewEvent]) -> list[str]:
        """Append ``events`` to ``stream`` and relay the outbox; the event ids."""
        with unit_of_work(self.engine) as session:
            stored = store_.append(session, stream, store_.version(session, stream), list(events))
        while self.relay.publish_pending():
            pass
        return [event.event_id for event in stored]

    def intake_events(self, subject_id: str, messages: Sequence[Message], at: int) -> list[str]:
        return self.publish(self.intake, f"subject-{subject_id}",
                            [sealed_intake_event(message, self.keys, at) for message in messages])

    def referral_events(self, referral_id: str, messages: Sequence[Message], at: int) -> list[str]:
        return self.publish(self.referral, f"referral-{referral_id}",
                            [sealed_referral_event(message, self.keys, at) for message in messages])

    def close(self) -> None:
        self.relay.close(timeout_s=10)
        self.engine.dispose()


def _store(network: NetworkCreated, service: str, topic: str) -> EventStore:
    owner = service_owner(service)
    signer = EnvelopeSigner(owner, signing_key_id(owner), load_service_signing_key(network.layout.root, service))
    return EventStore(Sealer(signer), owner, service, signing_key_id(owner), topic)


def publish_traffic(sources: SourceServices, subjects: int, per_subject: int) -> list[str]:
    """Consents on ``subjects`` intake streams and as many offers on one referral stream each; the ids."""
    ids: list[str] = []
    for _ in range(subjects):
        feed = SubjectFeed()
        consents = [feed.consent(org_id="alb-mdd-01")[1] for _ in range(per_subject)]
        ids += sources.intake_events(feed.subject_id, consents, feed.clock())
        referral_feed = ReferralFeed(feed)
        offers = [referral_feed.offer("alb-mdd-01", consents[0].consent_id)[1] for _ in range(per_subject)]
        ids += sources.referral_events(referral_feed.referral_id, offers, feed.clock())
    return ids


def ledger_event_ids(engine: sa.Engine) -> list[str]:
    with Session(engine) as session:
        return [leaf.event_id for _, leaf in SqlTree().leaves(session, 0, 1_000_000)]


def tree_size(engine: sa.Engine) -> int:
    with Session(engine) as session:
        return SqlTree().size(session)


def checkpoints_on(bootstrap: str, topic: str) -> list[Checkpoint]:
    """Every checkpoint published so far, in order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    end = consumer.end_offsets([partition])[partition]
    found: list[Checkpoint] = []
    deadline = time.monotonic() + 20
    while consumer.position(partition) < end and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            found += [parse_checkpoint(record.value) for record in batch]
    consumer.close()
    return found


def newest_checkpoint_size(bootstrap: str, topic: str) -> int:
    published = checkpoints_on(bootstrap, topic)
    return published[-1].tree_size if published else 0


def replayed_leaf_inputs(bootstrap: str, checkpoints: Sequence[Checkpoint], verifier: Verifier) -> list[bytes]:
    """The leaf inputs a replay of the checkpoints' runs gives: verified, first time an event id is seen."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             isolation_level="read_committed")
    seen: set[str] = set()
    leaves: list[bytes] = []
    try:
        for checkpoint in checkpoints:
            for run in checkpoint.runs:
                partition = TopicPartition(run.topic, run.partition)
                consumer.assign([partition])
                consumer.seek(partition, run.first_offset)
                deadline = time.monotonic() + 20
                while consumer.position(partition) <= run.last_offset and time.monotonic() < deadline:
                    for batch in consumer.poll(timeout_ms=500).values():
                        for record in batch:
                            if record.offset > run.last_offset:
                                continue
                            result = verifier.verify_many([record.value or b""])[0]
                            if isinstance(result, EnvelopeError) or result.header.event_id in seen:
                                continue
                            seen.add(result.header.event_id)
                            leaves.append(result.canonical_hash())
    finally:
        consumer.close()
    return leaves


def assert_checkpoints_witness_the_tree(bootstrap: str, topic: str, network: NetworkCreated,
                                        engine: sa.Engine) -> list[Checkpoint]:
    """Every published checkpoint verifies, extends its predecessor and has the root a replay of its runs gives."""
    published = checkpoints_on(bootstrap, topic)
    assert published, "no checkpoint was published"
    verifier = Verifier(network.directory, workers=1)
    leaf_inputs = replayed_leaf_inputs(bootstrap, published, verifier)
    replay = MemoryTree()
    previous: Checkpoint | None = None
    for checkpoint in published:
        verify_checkpoint(checkpoint, network.directory)
        before = replay.size
        while replay.size < checkpoint.tree_size and replay.size < len(leaf_inputs):
            replay.append(leaf_inputs[replay.size])
        check_extends(previous, checkpoint, replay.size - before)
        assert replay.root(checkpoint.tree_size) == checkpoint.root_hash
        previous = checkpoint
    assert len(leaf_inputs) == published[-1].tree_size
    with Session(engine) as session:
        assert SqlTree().root(session, published[-1].tree_size) == published[-1].root_hash
    verifier.close()
    return published


def committed_offsets(bootstrap: str, group: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="audit-test-admin")
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    return sum(meta.offset for meta in offsets.values() if meta.offset >= 0)


@pytest.fixture
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, sa.Engine]]:
    """The worker's database URL and an engine on it: a SQLite file, or (``indirect`` param ``postgresql``) a
    fresh PostgreSQL database; migrated here too, so the test can read the tables from the start."""
    if getattr(request, "param", "sqlite") == "sqlite":
        url = f"sqlite+pysqlite:///{tmp_path / 'audit.db'}"
        engine = create_engine(url)
        migrate(engine)
        yield url, engine
        engine.dispose()
        return
    server: str = request.getfixturevalue("postgres_url")
    name = "audit_" + uuid.uuid4().hex[:12]
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    migrate(engine)
    try:
        yield url, engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.mark.parametrize("ledger", ["sqlite", "postgresql"], indirect=True)
def test_every_event_becomes_one_leaf_across_a_kill_and_every_checkpoint_witnesses_the_tree(
        tmp_path, network, kafka_bootstrap, topics, ledger):
    url, engine = ledger
    sources = SourceServices(tmp_path, network, kafka_bootstrap, topics)
    try:
        produced = publish_traffic(sources, subjects=30, per_subject=50)  # 3,000 events on 60 streams
    finally:
        sources.close()
    config = worker_config(tmp_path / "audit-worker.json", network, kafka_bootstrap, topics, url,
                           AUDIT_BATCH_RECORDS=50)
    crashing = WorkerProcess("crashing-audit-worker", config, {CRASH_AFTER: "12"}, tmp_path / "crashing.log",
                             service=CRASHING_SERVICE).start()
    try:
        assert crashing.wait_exit(90) == -signal.SIGKILL, crashing.tail()
    finally:
        crashing.stop()
    appended_before = tree_size(engine)
    committed_before = committed_offsets(kafka_bootstrap, topics.group)
    assert appended_before >= 12 * 50 - 50  # the crashed batch committed; one batch may have been short
    assert committed_before < appended_before, "the kill left no appended-but-uncommitted batch to read again"

    worker = WorkerProcess("audit-worker", config, {}, tmp_path / "worker.log").start()
    try:
        wait_until(lambda: tree_size(engine) >= len(produced), 120, "every event as a leaf", (worker,))
        wait_until(lambda: newest_checkpoint_size(kafka_bootstrap, topics.checkpoints) == len(produced), 30,
                   "the checkpoint of every leaf", (worker,))
        wait_until(lambda: committed_offsets(kafka_bootstrap, topics.group) == len(produced), 30,
                   "every offset committed", (worker,))
        assert worker.terminate() == 0
    finally:
        worker.stop()

    leaves = ledger_event_ids(engine)
    assert sorted(leaves) == sorted(produced) and len(leaves) == len(set(leaves))
    with Session(engine) as session:
        assert store.load_rejections(session) == []
        assert store.load_pending_runs(session) == []
        indexed = session.execute(sa.select(sa.func.count()).select_from(subject_leaves)).scalar_one()
    assert indexed == len(produced)  # every event names its subject: each leaf indexed once
    published = assert_checkpoints_witness_the_tree(kafka_bootstrap, topics.checkpoints, network, engine)
    assert len(published) >= 2
    assert stats_of(worker)["records"] == len(produced) - committed_before  # what was uncommitted, read again
    assert "were leaves already (read again): skipped" in worker.log()


@pytest.mark.parametrize("ledger", ["sqlite", "postgresql"], indirect=True)
def test_tampered_and_forged_records_are_flagged_by_event_id_not_leaves_and_dead_letters_are_kept(
        tmp_path, network, kafka_bootstrap, topics, ledger):
    url, engine = ledger
    envelopes = Envelopes(network.layout.root)
    feed = SubjectFeed()
    genuine, altered, forged = (feed.consent(org_id="alb-mdd-01") for _ in range(3))
    altered_wire = flip_last_byte(envelopes.seal(*altered).wire)
    forged_wire = envelopes.forged(*forged)  # signed with pol-mdd-01's key, claiming svc:intake
    genuine_wire = envelopes.seal(*genuine).wire
    key = f"subject-{feed.subject_id}".encode()
    send_raw(kafka_bootstrap, topics.intake, [(key, genuine_wire), (key, altered_wire), (key, forged_wire)])
    letter = dead_letter_record(genuine_wire, reason="handler_failed", consumer="referral-worker",
                                original=(topics.intake, 0, 0), offset=0, topic=topics.dead_letters)
    send_raw(kafka_bootstrap, topics.dead_letters, [(key, letter.value or b"")])
    _send_with_headers(kafka_bootstrap, topics.dead_letters, key, letter.value or b"", letter.headers)
    config = worker_config(tmp_path / "audit-worker.json", network, kafka_bootstrap, topics, url)

    worker = WorkerProcess("audit-worker", config, {}, tmp_path / "worker.log").start()
    try:
        wait_until(lambda: _count(engine, store.load_rejections) == 2 and _count(engine, store.load_dead_letters) == 2,
                   60, "two rejections and two dead letters", (worker,))
        wait_until(lambda: any(c.tree_size == 1 for c in checkpoints_on(kafka_bootstrap, topics.checkpoints)), 30,
                   "the checkpoint of the genuine event", (worker,))
        assert worker.terminate() == 0
    finally:
        worker.stop()

    assert ledger_event_ids(engine) == [genuine[0].event_id]
    with Session(engine) as session:
        rejected = {(r.event_id, r.reason) for r in store.load_rejections(session)}
        letters = store.load_dead_letters(session)
    assert rejected == {(altered[0].event_id, "bad_signature"), (forged[0].event_id, "bad_signature")}
    assert [(d.source_offset, d.reason, d.consumer, d.event_id, d.verified) for d in letters] == [
        (0, "unknown", "", genuine[0].event_id, True),  # produced without its dlq-* headers
        (1, "handler_failed", "referral-worker", genuine[0].event_id, True)]
    assert_checkpoints_witness_the_tree(kafka_bootstrap, topics.checkpoints, network, engine)
    assert "2 record(s) of this batch were rejected" in worker.log()


def test_the_worker_refuses_to_start_without_its_topics_and_says_which(tmp_path, network, kafka_bootstrap, topics,
                                                                      ledger):
    url, _ = ledger
    config = worker_config(tmp_path / "audit-worker.json", network, kafka_bootstrap, topics, url,
                           AUDIT_DEAD_LETTER_TOPICS=["referralnet.no-such-worker.dlq.v1"])
    worker = WorkerProcess("audit-worker", config, {}, tmp_path / "worker.log").start()
    try:
        assert worker.wait_exit(60) != 0
    finally:
        worker.stop()
    assert "['referralnet.no-such-worker.dlq.v1'] do not exist" in worker.log()


def stats_of(process: NamekoProcess) -> dict[str, int]:
    """The counters the batch entrypoint logs when it stops: ``stopping: {'batches': 3, 'records': 120}``."""
    found = re.findall(r"stopping: \{([^}]*)\}", process.log())
    assert found, f"{process.name} logged no final counters:\n{process.tail()}"
    return {key: int(value) for key, value in re.findall(r"'(\w+)': (\d+)", found[-1])}


def _count(engine: sa.Engine, load: Any) -> int:
    with Session(engine) as session:
        return len(load(session))


def _send_with_headers(bootstrap: str, topic: str, key: bytes, value: bytes,
                       headers: Sequence[tuple[str, bytes]]) -> None:
    client = producer(bootstrap)
    try:
        client.send(topic, key=key, value=value, headers=list(headers)).get(timeout=30)
    finally:
        client.close()
