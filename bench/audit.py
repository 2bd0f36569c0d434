"""The audit ledger: durable appends, the auditor's replay against a raw consume, proofs at a million leaves.

    python -m bench.audit [--events N] [--batch N] [--skip-proofs]

On a Kafka and a PostgreSQL of its own (or the ones named by KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL):

1. N events are sealed up front by ``svc:intake`` with the development network's keys (a ConsentRecorded as
   the routing section, under the network routing key; 100 subject streams) and produced to a fresh
   3-partition topic (idempotent, acks=all) with the relay's headers. Not timed.
2. ``ledger_appends_per_s``: the audit worker's batch path (``LedgerWriter.ingest``, what ``append_batch``
   calls) driven directly over those records, read back from Kafka beforehand (the read is not timed), in
   batches of ``--batch`` (500, the worker's default). Each batch is ONE committed transaction: every
   signature verified (``Verifier.verify_many``, a thread per core), every routing section opened and
   decoded (the subject index), the leaves and their complete subtrees appended to the SqlTree, the runs
   kept; after each batch a signed checkpoint when 1,000 leaves are pending (``CHECKPOINT_EVERY``), and one
   for the rest at the end. Figure = N / wall time of all of that, on PostgreSQL (fsync on): the headline;
   on SQLite (WAL, synchronous FULL): ``ledger_appends_per_s_sqlite``.
3. The checkpoints made on PostgreSQL are published to a checkpoint topic, and ``replay_events_per_s`` =
   N / wall time of the auditor's whole replay (``run_replay``, what ``referralnet audit replay`` runs):
   connect, read both topics from offset 0, verify every signature, open and decode every routing section,
   rebuild the tree and check every checkpoint, the compliance checks, report.json and report.html. Its
   read+verify phase alone is ``replay_read_verify_per_s``. The replay must be clean and reach the
   PostgreSQL ledger's root (the bench fails otherwise).
4. ``raw_consume_per_s``: bare kafka-python consuming the same topic in the same run (big fetches, no
   group; the consumer's first metadata poll is not timed, as in bench.kafka_raw);
   ``replay_raw_ratio`` = replay_events_per_s / raw_consume_per_s.
5. ``inclusion_proof_ms_1m``: ``bench.audit_proofs.bench_inclusion_proof_1m()`` (a SqlTree of a million
   leaves on SQLite; look-up, proof and verification per proof).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import uuid6
from kafka import KafkaConsumer, KafkaProducer
from sqlalchemy.orm import Session

from bench.report import report
from deploy.local.postgres import running_postgres
from deploy.local.stack import running_kafka
from services.audit.adapters.database import migrate
from services.audit.adapters.tree_store import SqlTree
from services.audit.application.ledger import LedgerTopics, LedgerWriter
from services.audit.application.records import SourceRecord
from services.audit.bootstrap import build_ledger_writer
from services.audit.domain.checkpoint import Checkpoint, encode_checkpoint
from services.audit.replay.auditor import ReplayOptions, run_replay
from services.audit.replay.log_reader import LogReader
from services.core.database import create_engine, normalize_url
from services.core.envelope import EnvelopeSigner, EventHeader, Sealer, SectionKind, Verifier, new_event_id
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.consent.v1 import consent_pb2 as consent
from services.core.generated.referralnet.intake.v1 import events_pb2 as intake
from services.core.identity.keystore import load_directory, load_service_signing_key
from services.core.identity.network import init_network
from services.core.identity.records import service_owner, signing_key_id
from services.core.keyvault.routing_keys import load_routing_keys
from services.core.messaging.topics import ensure_topics

STREAMS = 100
PARTITIONS = 3
CHECKPOINT_EVERY = 1000
START_US = 1_800_000_000_000_000
TARGETS = {"ledger_appends_per_s": 5000.0, "replay_raw_ratio": 0.5, "inclusion_proof_ms_1m": 1.0}


def seal_events(network_dir: Path, count: int) -> list[tuple[str, str, bytes]]:
    """``(stream_id, event_id, wire)`` of ``count`` ConsentRecorded events by svc:intake over STREAMS streams."""
    owner = service_owner("intake")
    sealer = Sealer(EnvelopeSigner(owner, signing_key_id(owner), load_service_signing_key(network_dir, "intake")))
    routing = load_routing_keys(network_dir).current()
    subjects = [f"sub-{uuid6.uuid7().hex}" for _ in range(STREAMS)]
    sequences = [itertools.count(1) for _ in range(STREAMS)]
    sealed = []
    for number in range(count):
        stream = number % STREAMS
        at = START_US + number
        grant = consent.ConsentGrant(recipient=consent.ConsentRecipient(role=vocab.ORG_ROLE_SHELTER),
                                     purposes=[consent.PURPOSE_SERVICE_DELIVERY],
                                     categories=[consent.DATA_CATEGORY_ROUTING], given_by=consent.CONSENT_GIVER_SUBJECT)
        grant.expires_at.FromMicroseconds(at + 10**13)
        message = intake.ConsentRecorded(consent_id=f"con-{uuid6.uuid7().hex}", subject_id=subjects[stream],
                                         grant=grant, recorded_by_org="pol-mdd-01", recorded_at_unix_micros=at)
        header = EventHeader(event_id=new_event_id(), event_type="ConsentRecorded", schema_version=1,
                             stream_id=f"subject-{subjects[stream]}", stream_sequence=next(sequences[stream]),
                             occurred_at_unix_micros=at, producer_org=owner, producer_service="intake",
                             signing_key_id=signing_key_id(owner))
        wire = sealer.seal(header, {SectionKind.ROUTING: (routing, message.SerializeToString(deterministic=True))})
        sealed.append((header.stream_id, header.event_id, wire))
    return sealed


def produce(bootstrap: str, topic: str, sealed: Sequence[tuple[str, str, bytes]]) -> None:
    """Send every sealed event (key = stream, header event-id) and wait for all acknowledgements."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5,
                             batch_size=256 * 1024)
    try:
        futures = [producer.send(topic, key=stream.encode(), value=wire, headers=[("event-id", event_id.encode())])
                   for stream, event_id, wire in sealed]
        producer.flush(timeout=300)
        for future in futures:
            future.get(timeout=60)
    finally:
        producer.close(timeout=30)


def read_back(bootstrap: str, topic: str) -> list[SourceRecord]:
    """Every record of the topic, partition by partition (what the worker's polls would hand over)."""
    records: list[SourceRecord] = []
    with LogReader(bootstrap) as reader:
        reader.read(reader.bounds([topic]), records.extend)
    return records


def interleaved(records: Sequence[SourceRecord], batch: int) -> list[list[SourceRecord]]:
    """Batches as a poll gives them: a slice of each partition in turn, each in offset order."""
    by_partition: dict[int, list[SourceRecord]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(record)
    share = max(1, batch // len(by_partition))
    batches: list[list[SourceRecord]] = []
    for start in itertools.count(0, share):
        current = [record for part in by_partition.values() for record in part[start:start + share]]
        if not current:
            return batches
        batches.append(current)
    return batches


def ledger_appends(engine: sa.Engine, network_dir: Path, topic: str, batches: Sequence[Sequence[SourceRecord]],
                   ) -> tuple[float, LedgerWriter, int]:
    """Ingest every batch as the worker does, checkpointing every CHECKPOINT_EVERY leaves; (seconds, writer, size)."""
    migrate(engine)
    directory = load_directory(network_dir)
    verifier = Verifier(directory)
    writer = build_ledger_writer(engine, network_dir, directory=directory,
                                 topics=LedgerTopics(frozenset([topic])), verify_many=verifier.verify_many)
    writer.ingest(batches[0][:1])  # warm-up (connections, statements); the figure counts every record below
    started = time.perf_counter()
    for batch in batches:
        writer.ingest(batch)
        writer.checkpoint(CHECKPOINT_EVERY)
    writer.checkpoint(1)
    elapsed = time.perf_counter() - started
    with Session(engine) as session:
        size = SqlTree().size(session)
    verifier.close()
    return elapsed, writer, size


class _Publisher:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self._producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
        self._topic = topic

    def publish(self, checkpoint: Checkpoint) -> None:
        self._producer.send(self._topic, key=checkpoint.origin.encode(), value=encode_checkpoint(checkpoint)).get(
            timeout=30)

    def close(self) -> None:
        self._producer.close(timeout=10)


def raw_consume(bootstrap: str, topic: str, count: int) -> float:
    """Records per second of a bare kafka-python consumer reading the whole topic (as bench.kafka_raw does)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                             enable_auto_commit=False, fetch_max_bytes=50 * 1024 * 1024,
                             max_partition_fetch_bytes=8 * 1024 * 1024, max_poll_records=5000)
    seen = sum(len(batch) for batch in consumer.poll(timeout_ms=0).values())  # metadata, before the clock
    started = time.perf_counter()
    deadline = started + 600
    while seen < count and time.perf_counter() < deadline:
        seen += sum(len(batch) for batch in consumer.poll(timeout_ms=1000).values())
    elapsed = time.perf_counter() - started
    consumer.close()
    if seen < count:
        raise RuntimeError(f"the raw consumer read {seen} of {count} records")
    return count / elapsed


@dataclass(frozen=True)
class Setup:
    """Where one run works: its folder, network folder, Kafka, events topic and checkpoint topic."""

    folder: Path
    network_dir: Path
    bootstrap: str
    topic: str
    checkpoint_topic: str


def ledger_figures(setup: Setup, postgres_url: str, batches: Sequence[Sequence[SourceRecord]],
                   ) -> tuple[dict[str, float], bytes]:
    """Appends per second on PostgreSQL and SQLite; the PostgreSQL ledger's checkpoints published. (figures, root)"""
    folder, network_dir, bootstrap, topic = setup.folder, setup.network_dir, setup.bootstrap, setup.topic
    events = sum(len(batch) for batch in batches)
    figures: dict[str, float] = {}
    pg_engine = create_engine(_fresh_pg_database(postgres_url, f"bench_audit_{uuid.uuid4().hex[:8]}"))
    try:
        seconds, writer, size = ledger_appends(pg_engine, network_dir, topic, batches)
        if size != events:
            raise RuntimeError(f"the PostgreSQL ledger has {size} leaves, not {events}")
        figures["ledger_appends_per_s"] = events / seconds
        print(f"ledger on PostgreSQL: {events:,} appends in {seconds:.1f}s", flush=True)
        publisher = _Publisher(bootstrap, setup.checkpoint_topic)
        try:
            figures["audit_checkpoints"] = writer.publish_pending(publisher)
        finally:
            publisher.close()
        with Session(pg_engine) as session:
            root = SqlTree().root(session, events)
    finally:
        pg_engine.dispose()
    sqlite_engine = create_engine(f"sqlite+pysqlite:///{folder / 'ledger.db'}")
    try:
        seconds, _, size = ledger_appends(sqlite_engine, network_dir, topic, batches)
    finally:
        sqlite_engine.dispose()
    if size != events:
        raise RuntimeError(f"the SQLite ledger has {size} leaves, not {events}")
    figures["ledger_appends_per_s_sqlite"] = events / seconds
    print(f"ledger on SQLite: {events:,} appends in {seconds:.1f}s", flush=True)
    return figures, root


def replay_figures(setup: Setup, events: int, root: bytes) -> dict[str, float]:
    """The auditor's replay (checked clean and at ``root``) and the raw consume of the same topic."""
    started = time.perf_counter()
    replayed = run_replay(ReplayOptions(bootstrap=setup.bootstrap, network_dir=setup.network_dir,
                                        out_dir=setup.folder / "report", source_topics=[setup.topic],
                                        dead_letter_topics=[], checkpoint_topic=setup.checkpoint_topic, progress=False))
    seconds = time.perf_counter() - started
    result = replayed.report
    if not result.clean or result.tree_size != events or result.root_hash != root.hex():
        msg = (f"the replay is not clean or not the ledger's root: {len(result.violations)} violations, "
               f"size {result.tree_size}, root {result.root_hash} vs {root.hex()}")
        raise RuntimeError(msg)
    print(f"replay: {events:,} events in {seconds:.1f}s ({result.read_seconds:.1f}s reading and verifying)", flush=True)
    figures = {"replay_events_per_s": events / seconds, "replay_read_verify_per_s": result.records_per_second,
               "raw_consume_per_s": raw_consume(setup.bootstrap, setup.topic, events)}
    figures["replay_raw_ratio"] = figures["replay_events_per_s"] / figures["raw_consume_per_s"]
    return figures


def run(folder: Path, events: int, batch: int, proofs: bool) -> dict[str, float]:
    """Every figure of the module docstring."""
    network_dir = folder / "network"
    init_network(network_dir)
    figures: dict[str, float] = {"audit_events": events, "audit_batch_records": batch}
    with running_kafka(folder / "kafka") as bootstrap, running_postgres(folder / "pg") as postgres_url:
        tag = uuid.uuid4().hex[:8]
        topic, checkpoints = f"referralnet.bench-audit-{tag}.events.v1", f"referralnet.bench-audit-{tag}.checkpoints.v1"
        ensure_topics(bootstrap, [topic, checkpoints], partitions=PARTITIONS, replication_factor=1,
                      min_insync_replicas=1)
        started = time.perf_counter()
        sealed = seal_events(network_dir, events)
        print(f"sealed {events:,} events in {time.perf_counter() - started:.1f}s", flush=True)
        produce(bootstrap, topic, sealed)
        del sealed
        batches = interleaved(read_back(bootstrap, topic), batch)
        setup = Setup(folder, network_dir, bootstrap, topic, checkpoints)
        ledger, root = ledger_figures(setup, postgres_url, batches)
        figures.update(ledger)
        del batches
        figures.update(replay_figures(setup, events, root))
    if proofs:
        from bench.audit_proofs import bench_inclusion_proof_1m  # noqa: PLC0415

        figures.update(bench_inclusion_proof_1m())
    return figures


def _fresh_pg_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server and return its URL."""
    url = sa.engine.make_url(normalize_url(server_url))
    engine = create_engine(url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def main() -> None:
    """Run the benchmark, print the table, write bench/results/audit.json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--skip-proofs", action="store_true", help="leave out the 1,000,000-leaf proof figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as folder:
        figures = run(Path(folder), args.events, args.batch, proofs=not args.skip_proofs)
    for name, target in TARGETS.items():
        if name in figures:
            met = figures[name] <= target if name.endswith("_ms_1m") else figures[name] >= target
            print(f"target {name} {'<' if name.endswith('_ms_1m') else '>='} {target:g}: "
                  f"{'met' if met else 'NOT met'} ({figures[name]:,.3f})")
    report("audit", figures)


if __name__ == "__main__":
    main()
