"""``referralnet audit replay`` against a real Kafka: clean logs, tampered and forged envelopes, broken
checkpoint chains, and the same root as the audit worker for the same tree size.

What is real: Apache Kafka (the session's broker; every test uses topics of its own, never the session's
e2e network's), the network folder (``init_network``), intake's and referral's EventStores sealing and the
outbox relay publishing their events, the audit service's checkpoint signing key, the audit worker (``nameko
run services.audit.worker``) in the determinism test, and the CLI itself (``services.core.cli.main``).
Replaced: nothing. Attacks are what someone with broker access could do: produce bytes into a topic.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message
from kafka import KafkaProducer
from sqlalchemy.orm import Session

from services.audit.adapters import custody_store
from services.audit.adapters.database import migrate as migrate_audit
from services.audit.adapters.tree_store import SqlTree
from services.audit.application.records import SourceRecord
from services.audit.bootstrap import build_queries
from services.audit.domain.checkpoint import Checkpoint, CheckpointSigner, LeafRun, encode_checkpoint
from services.audit.domain.merkle import MemoryTree
from services.audit.replay.log_reader import LogReader
from services.core.cli import main
from services.core.database import create_engine
from services.core.envelope import EnvelopeError, EnvelopeSigner, Sealer, SectionKind, Verifier
from services.core.events.catalogues import INTAKE_EVENTS, REFERRAL_EVENTS
from services.core.eventstore import EventStore, NewEvent, unit_of_work
from services.core.eventstore.store import StoredEvent
from services.core.generated.referralnet.audit.v1 import audit_pb2
from services.core.generated.referralnet.envelope.v1 import envelope_pb2
from services.core.grpcedge.caller import Caller
from services.core.identity.keystore import load_directory, load_service_signing_key
from services.core.identity.network import NetworkCreated, init_network
from services.core.identity.records import service_owner, signing_key_id
from services.core.keyvault.routing_keys import load_routing_keys
from services.core.messaging.relay import OutboxRelay
from services.core.messaging.topics import dead_letter_topic, ensure_topics
from services.core.migrations import upgrade
from services.core.runtime.dead_letter import DeadLetter, Origin, dead_letter_headers
from tests.integration.support.nameko_process import ROOT, NamekoProcess, wait_until, write_config
from tests.unit.audit_replay_support import AuditWorld, Journey

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
PROVIDER = "alb-cus-01"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> NetworkCreated:
    return init_network(tmp_path_factory.mktemp("audit-replay-it") / "network")


@dataclass(frozen=True)
class Topics:
    """This test's own topics (names like the network's, with a random tag)."""

    intake: str
    referral: str
    dead_letters: str
    checkpoints: str

    @property
    def sources(self) -> list[str]:
        return [self.intake, self.referral]


@pytest.fixture
def topics(kafka_bootstrap: str) -> Topics:
    tag = uuid.uuid4().hex[:10]
    made = Topics(f"referralnet.ar-{tag}-intake.events.v1", f"referralnet.ar-{tag}-referral.events.v1",
                  dead_letter_topic(f"ar-{tag}-referral-worker"), f"referralnet.ar-{tag}.checkpoints.v1")
    ensure_topics(kafka_bootstrap, [*made.sources, made.dead_letters, made.checkpoints], partitions=3,
                  replication_factor=1, min_insync_replicas=1)
    return made


class Producers:
    """intake and referral as the network runs them: EventStores signing as svc:intake / svc:referral over one
    SQLite file, the outbox relay publishing to this test's topics."""

    def __init__(self, folder: Path, network_dir: Path, bootstrap: str, topics: Topics) -> None:
        url = f"sqlite+pysqlite:///{folder / 'producers.db'}"
        upgrade(url)
        self.engine = create_engine(url)
        self.keys = load_routing_keys(network_dir)
        self.stores = {service: EventStore(
            Sealer(EnvelopeSigner(service_owner(service), signing_key_id(service_owner(service)),
                                  load_service_signing_key(network_dir, service))),
            service_owner(service), service, signing_key_id(service_owner(service)), topic)
            for service, topic in (("intake", topics.intake), ("referral", topics.referral))}
        self.relay = OutboxRelay(self.engine, bootstrap)

    def emit(self, producer: str, stream_id: str, _sequence: int, at_us: int, message: Message,
             ) -> tuple[str, StoredEvent]:
        service = producer.removeprefix("svc:")
        catalogue = INTAKE_EVENTS if service == "intake" else REFERRAL_EVENTS
        event_type, version, payload = catalogue.encode(message)
        store = self.stores[service]
        with unit_of_work(self.engine) as session:
            [stored] = store.append(session, stream_id, store.version(session, stream_id), [NewEvent(
                event_type, version, {SectionKind.ROUTING: (self.keys.current(), payload)},
                occurred_at_unix_micros=at_us)])
        return stored.event_id, stored

    def publish(self) -> None:
        while self.relay.publish_pending():
            pass

    def close(self) -> None:
        self.relay.close(timeout_s=10)
        self.engine.dispose()


@pytest.fixture
def producers(tmp_path: Path, network: NetworkCreated, kafka_bootstrap: str, topics: Topics) -> Iterator[Producers]:
    made = Producers(tmp_path, network.layout.root, kafka_bootstrap, topics)
    try:
        yield made
    finally:
        made.close()


def journeys(producers: Producers, count: int) -> list[Journey]:
    """``count`` subjects, each: consent, submission, an offer accepted 7 minutes later, a key release."""
    world = AuditWorld()
    made = []
    for _ in range(count):
        story = Journey(world, emit=producers.emit)
        consent_id, _ = story.consent()
        story.submit([consent_id])
        handoff_id, _ = story.offer(PROVIDER, consent_id)
        story.tick(7)
        story.accept(handoff_id, PROVIDER)
        story.tick()
        story.release(PROVIDER, consent_id, handoff_id)
        made.append(story)
    producers.publish()
    return made


def read_all(bootstrap: str, names: list[str]) -> list[SourceRecord]:
    """Every record of ``names`` now, per partition in offset order (the replay's own group-less reader)."""
    found: list[SourceRecord] = []
    with LogReader(bootstrap) as reader:
        reader.read(reader.bounds(names), found.extend)
    return sorted(found, key=lambda record: (record.topic, record.partition, record.offset))


def worker_runs(records: list[SourceRecord]) -> list[LeafRun]:
    """One run per partition, in topic/partition order: what a worker reading them that way would list."""
    runs: dict[tuple[str, int], LeafRun] = {}
    for record in records:
        known = runs.get((record.topic, record.partition))
        first = known.first_offset if known else record.offset
        runs[(record.topic, record.partition)] = LeafRun(record.topic, record.partition, first, record.offset)
    return list(runs.values())


def leaves_of(network_dir: Path, records: list[SourceRecord], seen: set[str] | None = None) -> list[bytes]:
    """The leaf inputs those records give with the worker's rules (verified, first of each event id)."""
    verifier, seen, leaves = Verifier(load_directory(network_dir), workers=1), seen if seen is not None else set(), []
    for record in records:
        try:
            envelope = verifier.verify(record.value or b"")
        except EnvelopeError:  # not a leaf
            continue
        if envelope.header.event_id not in seen:
            seen.add(envelope.header.event_id)
            leaves.append(envelope.canonical_hash())
    return leaves


def signer(network_dir: Path) -> CheckpointSigner:
    return CheckpointSigner.for_directory(load_directory(network_dir), load_service_signing_key(network_dir, "audit"))


def publish_checkpoints(bootstrap: str, topic: str, checkpoints: list[Checkpoint]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for checkpoint in checkpoints:
            producer.send(topic, key=checkpoint.origin.encode(), value=encode_checkpoint(checkpoint)).get(timeout=30)
    finally:
        producer.close(timeout=10)


def produce_raw(bootstrap: str, topic: str, value: bytes, *, key: bytes | None = None,
                headers: list[tuple[str, bytes]] | None = None) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.send(topic, value=value, key=key, headers=headers or []).get(timeout=30)
    finally:
        producer.close(timeout=10)


def root_of(leaves: list[bytes]) -> bytes:
    tree = MemoryTree()
    for leaf in leaves:
        tree.append(leaf)
    return tree.root()


def replay(bootstrap: str, network_dir: Path, topics: Topics, out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    status = main(["audit", "replay", "--bootstrap", bootstrap, "--network", str(network_dir),
                   "--ca", str(network_dir / "ca" / "ca.pem"), "--out", str(out), "--topics", *topics.sources,
                   "--dead-letter-topics", topics.dead_letters, "--checkpoint-topic", topics.checkpoints,
                   "--no-progress", *extra])
    return status, json.loads((out / "report.json").read_text())


def test_a_clean_log_replays_to_the_signed_roots_and_exits_0(kafka_bootstrap: str, network: NetworkCreated,
                                                              topics: Topics, producers: Producers,
                                                              tmp_path: Path) -> None:
    network_dir = network.layout.root
    journeys(producers, 3)
    intake_records = read_all(kafka_bootstrap, [topics.intake])
    referral_records = read_all(kafka_bootstrap, [topics.referral])
    seen: set[str] = set()
    first_leaves = leaves_of(network_dir, intake_records, seen)
    second_leaves = first_leaves + leaves_of(network_dir, referral_records, seen)
    sign = signer(network_dir)
    first = sign.sign(len(first_leaves), root_of(first_leaves), 1, None, worker_runs(intake_records))
    second = sign.sign(len(second_leaves), root_of(second_leaves), 2, first, worker_runs(referral_records))
    publish_checkpoints(kafka_bootstrap, topics.checkpoints, [first, second])
    journeys(producers, 1)  # read by nobody yet: the pending tail

    status, report = replay(kafka_bootstrap, network_dir, topics, tmp_path / "clean")

    assert status == 0, report["violations"]
    assert (report["verdict"], report["violations"]) == ("clean", [])
    assert (report["tree_size"], report["root_hash"]) == (len(second_leaves), root_of(second_leaves).hex())
    assert (report["checkpoints_checked"], report["checkpoints_ok"]) == (2, 2)
    assert report["pending"] == {"records": 5, "verified": 5, "rejected": 0}
    assert report["records_read"] == len(second_leaves) + 5 and report["rate"]["records_per_s"] > 0
    assert report["events_checked"] == 20 and report["disclosures_by_kind"] == {"key_release": 4, "offer": 4}
    assert report["funnel"]["by_service_type"] == [
        {"label": "shelter", "offered": 4, "accepted": 4, "completed": 0, "offers": 4}]
    assert report["funnel"]["time_to_acceptance"]["median_s"] == 7 * 60.0
    page = (tmp_path / "clean" / "report.html").read_text()
    assert "Clean: every check passed" in page and root_of(second_leaves).hex() in page


def test_altered_and_forged_envelopes_produced_into_a_topic_are_named_by_event_id(
        kafka_bootstrap: str, network: NetworkCreated, topics: Topics, producers: Producers, tmp_path: Path) -> None:
    network_dir = network.layout.root
    [story] = journeys(producers, 1)
    genuine = read_all(kafka_bootstrap, [topics.intake])
    released = next(record for record in genuine if record.header("event-id") == story.event_ids["KeyReleased"])
    altered = envelope_pb2.Envelope.FromString(released.value or b"")
    ciphertext = bytearray(altered.sections[0].ciphertext)
    ciphertext[0] ^= 0x01  # the attacker edits the sealed routing facts of a real release
    altered.sections[0].ciphertext = bytes(ciphertext)
    produce_raw(kafka_bootstrap, topics.intake, altered.SerializeToString(), key=b"subject-x")
    stranger = init_network(tmp_path / "stranger")  # another CA, and another svc:intake key under the same key id
    (tmp_path / "stranger-db").mkdir()
    stranger_producers = Producers(tmp_path / "stranger-db", stranger.layout.root, kafka_bootstrap, topics)
    try:
        forger = Journey(AuditWorld(), emit=stranger_producers.emit)
        _, forged = forger.consent()  # sealed in the stranger's store; never relayed, produced by hand below
    finally:
        stranger_producers.close()
    forged_wire = forged.envelope
    produce_raw(kafka_bootstrap, topics.intake, forged_wire, key=b"subject-y")
    letter = dead_letter_headers(DeadLetter("bad_signature", "ids only"),
                                 Origin(topics.intake, 0, 99, "ar-referral-worker"))
    produce_raw(kafka_bootstrap, topics.dead_letters, forged_wire, headers=letter)
    records = read_all(kafka_bootstrap, topics.sources)
    leaves = leaves_of(network_dir, records)
    publish_checkpoints(kafka_bootstrap, topics.checkpoints,
                        [signer(network_dir).sign(len(leaves), root_of(leaves), 1, None, worker_runs(records))])

    status, report = replay(kafka_bootstrap, network_dir, topics, tmp_path / "tampered")

    assert status == 1
    found = {(violation["check"], tuple(violation["event_ids"])) for violation in report["violations"]}
    assert found == {("tampered_section", (story.event_ids["KeyReleased"],)),
                     ("bad_signature", (forger.event_ids["ConsentRecorded"],)),
                     ("dead_lettered", (forger.event_ids["ConsentRecorded"],))}
    assert (report["tree_size"], report["root_hash"], report["checkpoints_ok"]) == (5, root_of(leaves).hex(), 1)
    assert report["rejected"] == 3 and report["dead_letters"] == 1  # two source records and the dead letter
    page = (tmp_path / "tampered" / "report.html").read_text()
    assert story.event_ids["KeyReleased"] in page and forger.event_ids["ConsentRecorded"] in page


@pytest.mark.parametrize("fault", ["wrong_previous_hash", "root_mismatch"])
def test_a_checkpoint_that_does_not_extend_the_previous_one_is_detected(
        kafka_bootstrap: str, network: NetworkCreated, topics: Topics, producers: Producers, tmp_path: Path,
        fault: str) -> None:
    network_dir = network.layout.root
    journeys(producers, 2)
    intake_records = read_all(kafka_bootstrap, [topics.intake])
    referral_records = read_all(kafka_bootstrap, [topics.referral])
    seen: set[str] = set()
    first_leaves = leaves_of(network_dir, intake_records, seen)
    all_leaves = first_leaves + leaves_of(network_dir, referral_records, seen)
    sign = signer(network_dir)
    first = sign.sign(len(first_leaves), root_of(first_leaves), 1, None, worker_runs(intake_records))
    previous, root = first, root_of(all_leaves)
    if fault == "wrong_previous_hash":  # a rewritten first checkpoint: same size, another hash
        previous = sign.sign(len(first_leaves), root_of(first_leaves), 99, None, worker_runs(intake_records))
    else:
        root = root_of(list(reversed(all_leaves)))
    second = sign.sign(len(all_leaves), root, 2, previous, worker_runs(referral_records))
    publish_checkpoints(kafka_bootstrap, topics.checkpoints, [first, second])

    status, report = replay(kafka_bootstrap, network_dir, topics, tmp_path / fault)

    assert status == 1
    [violation] = report["violations"]
    assert violation["check"] == "checkpoint_inconsistent"
    assert f"checkpoint of size {len(all_leaves)}" in violation["detail"]
    expected = "wrong_previous_hash" if fault == "wrong_previous_hash" else "differs from the recomputed root"
    assert expected in violation["detail"]
    assert report["root_hash"] == root_of(all_leaves).hex()  # recomputed from the runs, whatever was signed


def test_a_topic_that_does_not_exist_is_a_usage_error(kafka_bootstrap: str, network: NetworkCreated,
                                                      topics: Topics, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["audit", "replay", "--bootstrap", kafka_bootstrap, "--network", str(network.layout.root),
                   "--out", str(tmp_path / "out"), "--topics", "referralnet.no-such-topic.events.v1",
                   "--dead-letter-topics", "--checkpoint-topic", topics.checkpoints, "--no-progress"])
    assert status == 2
    assert "topic referralnet.no-such-topic.events.v1 does not exist" in capsys.readouterr().err


class AuditWorkerProcess(NamekoProcess):
    """``nameko run services.audit.worker`` (the support class runs the effects service)."""

    def start(self) -> AuditWorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nameko", "run", "--config", str(self.config), "services.audit.worker"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self


def test_the_replayed_root_equals_the_audit_workers_root_for_the_same_size(
        kafka_bootstrap: str, network: NetworkCreated, topics: Topics, producers: Producers, tmp_path: Path) -> None:
    network_dir = network.layout.root
    url = f"sqlite+pysqlite:///{tmp_path / 'audit.db'}"
    migrate_audit(url)
    config = write_config(tmp_path / "audit-worker.json", {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DATABASE_URL": url, "NETWORK_DIR": str(network_dir),
        "AUDIT_SOURCE_TOPICS": topics.sources, "AUDIT_DEAD_LETTER_TOPICS": [topics.dead_letters],
        "AUDIT_CHECKPOINT_TOPIC": topics.checkpoints, "AUDIT_WORKER_GROUP": f"audit-worker-{uuid.uuid4().hex[:8]}",
        "CHECKPOINT_EVERY": 7, "CHECKPOINT_SECONDS": 0.5, "AUDIT_BATCH_RECORDS": 6, "max_workers": 2})
    worker = AuditWorkerProcess("audit-worker", config, {}, tmp_path / "audit-worker.log")
    engine = create_engine(url)
    tree = SqlTree()

    def published_size() -> int:
        with Session(engine) as session:
            latest = tree.latest_checkpoint(session)
            return latest.tree_size if latest and custody_store.is_published(session, latest.tree_size) else 0

    try:
        worker.start()
        journeys(producers, 3)
        first = read_all(kafka_bootstrap, topics.sources)
        republished = first[0]  # the relay sent one twice, and an attacker slipped in garbage
        produce_raw(kafka_bootstrap, republished.topic, republished.value or b"", headers=list(republished.headers))
        produce_raw(kafka_bootstrap, topics.referral, b"\x0a\x03not an envelope")
        journeys(producers, 2)
        expected = 25
        wait_until(lambda: published_size() == expected, 90, f"the worker's checkpoint of {expected} leaves", (worker,))
        status, report = replay(kafka_bootstrap, network_dir, topics, tmp_path / "determinism")
        with Session(engine) as session:
            stored_root = tree.root(session, expected)
        queries = build_queries(engine, network_dir)
        answer = queries.compliance_report(Caller("aud-lim-01", _auditor_role(network_dir), "en"),
                                           audit_pb2.ComplianceReportRequest())
    finally:
        worker.stop()
        engine.dispose()

    assert (report["tree_size"], report["root_hash"]) == (expected, stored_root.hex())
    assert report["checkpoints_checked"] == report["checkpoints_ok"] >= 2, report["checkpoints"]
    assert report["pending"]["records"] == 0 and report["duplicates"] == 1
    assert status == 1  # the garbage record: rejected by the worker and the CLI alike
    cli = sorted((violation["check"], tuple(violation["event_ids"]), violation["detail"])
                 for violation in report["violations"])
    service = sorted((violation.check, tuple(violation.event_ids), violation.detail)
                     for violation in answer.violations)
    assert cli == service and [check for check, _, _ in cli] == ["malformed"]
    assert report["events_checked"] == answer.events_checked == expected
    assert report["disclosures_count"] == len(answer.disclosures) == 10


def _auditor_role(network_dir: Path) -> Any:
    return load_directory(network_dir).org("aud-lim-01").role


def test_the_reader_holds_a_partition_back_until_released_and_never_holds_them_all(kafka_bootstrap: str) -> None:
    topic = f"referralnet.replay-hold-{uuid.uuid4().hex[:8]}.events.v1"
    ensure_topics(kafka_bootstrap, [topic], partitions=2, replication_factor=1, min_insync_replicas=1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", batch_size=512, linger_ms=0)
    try:
        for index in range(600):
            producer.send(topic, value=b"%d" % index, partition=index % 2)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)
    seen: list[str] = []  # "p0"/"p1" per batch, "held"/"free" per hold() the reader asked after a poll
    read_0 = 0

    def take(batch: Sequence[SourceRecord]) -> None:
        nonlocal read_0
        seen.extend(f"p{record.partition}" for record in batch[:1])
        read_0 += sum(1 for record in batch if record.partition == 0)

    def hold_1_until_0_is_read() -> set[tuple[str, int]]:
        held = {(topic, 1)} if read_0 < 300 else set()
        seen.append("held" if held else "free")
        return held

    with LogReader(kafka_bootstrap, consumer_config={"max_poll_records": 50}, stall_timeout_s=20) as reader:
        bounds = reader.bounds([topic])
        total = reader.read(bounds, take, hold=hold_1_until_0_is_read)
        everything_held = reader.read(bounds, lambda batch: None, hold=lambda: {(topic, 0), (topic, 1)})

    assert (total, read_0, everything_held) == (600, 300, 600)
    first_held, first_free = seen.index("held"), seen.index("free")
    assert first_held < first_free and "p0" in seen[first_held:first_free]  # the hold lasted several polls
    assert "p1" not in seen[first_held:first_free]  # ... and nothing of the held partition came meanwhile
