"""Append (with outbox) -> relay -> Kafka -> nameko worker handled, on PostgreSQL and on SQLite.

    python -m bench.pipeline [--events N]

A producer appends N events (one per transaction, 100 streams, sealed routing + 1 KiB case file) through
the EventStore while an OutboxRelay thread publishes the outbox; a ``nameko run`` worker
(bench/_pipeline_worker.py) consumes, verifies, dedupes and opens each one in its own database. Latency is
the worker's claim time minus the event's occurred-at time (same clock); throughput counts from the first
append to the last event handled. In the same run, the raw figure produces and consumes the same
envelopes with bare kafka-python.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer

from bench.report import report
from deploy.local.postgres import running_postgres
from deploy.local.process import free_ports, stop_process_group
from deploy.local.stack import REPO_ROOT, running_kafka
from services.core.database import create_engine
from services.core.envelope import EnvelopeSigner, Sealer, SectionKind
from services.core.eventstore.schema import events, processed_events
from services.core.eventstore.store import EventStore, NewEvent
from services.core.eventstore.transaction import unit_of_work
from services.core.identity.keystore import load_service_signing_key
from services.core.identity.network import init_network
from services.core.keyvault.keys import DataKey
from services.core.messaging.relay import OutboxRelay
from services.core.messaging.topics import dead_letter_topic, ensure_topics
from services.core.migrations import upgrade

STREAMS = 100
ROUTING = json.dumps({"service_types": ["shelter", "legal_aid"], "region": "madre_de_dios",
                      "urgency": "immediate", "minor": False}).encode()
CASE_FILE = os.urandom(1024)
WAIT_S = 300


def _keys(folder: Path) -> tuple[DataKey, DataKey, Path]:
    routing = DataKey(f"dk-{uuid.uuid4().hex}", os.urandom(32))
    case_file = DataKey(f"dk-{uuid.uuid4().hex}", os.urandom(32))
    keys_file = folder / "worker-keys.json"
    keys_file.write_text(json.dumps({routing.key_id: routing.key.hex()}))
    keys_file.chmod(0o600)
    return routing, case_file, keys_file


def _start_worker(folder: Path, bootstrap: str, database_url: str, topic: str, keys_file: Path,
                  ) -> subprocess.Popen[bytes]:
    config = folder / "worker.json"
    config.write_text(json.dumps({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": database_url,
                                  "NETWORK_DIR": str(folder / "network"), "max_workers": 10}))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PIPELINE_TOPIC": topic,
           "PIPELINE_KEYS_FILE": str(keys_file)}
    with (folder / "worker.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "nameko", "run", "--config", str(config),
                                 "bench._pipeline_worker"], cwd=REPO_ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _handled(consumer_engine: sa.Engine) -> int:
    with consumer_engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(processed_events)).scalar_one())


def _wait_handled(consumer_engine: sa.Engine, count: int, worker: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while _handled(consumer_engine) < count:
        if worker.poll() is not None or time.monotonic() > deadline:
            msg = f"the worker handled {_handled(consumer_engine)} of {count} events:\n{log.read_text()[-3000:]}"
            raise RuntimeError(msg)
        time.sleep(0.1)


def run_backend(folder: Path, bootstrap: str, producer_url: str, consumer_url: str, count: int) -> dict[str, float]:
    """One pipeline run; returns events/s, p50 and p99 latency in ms."""
    upgrade(producer_url)
    upgrade(consumer_url)
    topic = f"referralnet.bench-{uuid.uuid4().hex[:8]}.events.v1"
    ensure_topics(bootstrap, [topic, dead_letter_topic("pipeline-bench")], partitions=3, replication_factor=1,
                  min_insync_replicas=1)
    routing_key, case_key, keys_file = _keys(folder)
    signer = EnvelopeSigner("svc:intake", "svc:intake#sig-1", load_service_signing_key(folder / "network", "intake"))
    store = EventStore(Sealer(signer), "svc:intake", "intake", "svc:intake#sig-1", topic)
    producer_engine, consumer_engine = create_engine(producer_url), create_engine(consumer_url)
    sections = {SectionKind.ROUTING: (routing_key, ROUTING), SectionKind.CASE_FILE: (case_key, CASE_FILE)}
    relay = OutboxRelay(producer_engine, bootstrap)
    stop = threading.Event()
    relay_thread = threading.Thread(target=relay.run, args=(stop,), kwargs={"idle_sleep_s": 0.005}, daemon=True)
    worker = _start_worker(folder, bootstrap, consumer_url, topic, keys_file)
    try:
        relay_thread.start()
        with unit_of_work(producer_engine) as session:  # warm-up: the worker has joined once this is handled
            store.append(session, "warm-up", 0, [NewEvent("BenchEventRecorded", 1, sections)])
        _wait_handled(consumer_engine, 1, worker, folder / "worker.log")
        started_us = time.time_ns() // 1000
        versions = dict.fromkeys(range(STREAMS), 0)
        for index in range(count):
            stream = index % STREAMS
            with unit_of_work(producer_engine) as session:
                store.append(session, f"bench-{stream}", versions[stream],
                             [NewEvent("BenchEventRecorded", 1, sections)])
            versions[stream] += 1
        _wait_handled(consumer_engine, count + 1, worker, folder / "worker.log")
    finally:
        stop.set()
        relay_thread.join(timeout=30)
        relay.close()
        stop_process_group(worker.pid, grace_s=60)  # SIGTERM (graceful nameko stop), SIGKILL if it hangs
    with producer_engine.connect() as connection:
        occurred = dict(connection.execute(sa.select(events.c.event_id, events.c.occurred_at_us)
                                           .where(events.c.stream_id != "warm-up")).all())
    with consumer_engine.connect() as connection:
        handled = dict(connection.execute(sa.select(processed_events.c.event_id,
                                                    processed_events.c.processed_at_us)).all())
    producer_engine.dispose()
    consumer_engine.dispose()
    latencies = sorted((handled[event_id] - at) / 1000 for event_id, at in occurred.items())
    last = max(handled[event_id] for event_id in occurred)
    return {"per_s": count / ((last - started_us) / 1e6), "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1]}


def raw_roundtrip(bootstrap: str, count: int, value: bytes) -> float:
    """Bare kafka-python: produce ``count`` records of ``value`` (idempotent, acks=all), consume them back."""
    topic = f"referralnet.bench-raw-{uuid.uuid4().hex[:8]}.v1"
    ensure_topics(bootstrap, [topic], partitions=3, replication_factor=1, min_insync_replicas=1)
    started = time.perf_counter()
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
    for index in range(count):
        producer.send(topic, key=f"bench-{index % STREAMS}".encode(), value=value)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    seen = 0
    deadline = time.monotonic() + WAIT_S
    while seen < count and time.monotonic() < deadline:
        seen += sum(len(batch) for batch in consumer.poll(timeout_ms=500).values())
    consumer.close()
    return seen / (time.perf_counter() - started)


def run(count: int) -> dict[str, float]:
    """Both backends and the raw figure, on one local Kafka (and one local PostgreSQL)."""
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp, running_kafka(Path(tmp) / "kafka") as bootstrap:
        folder = Path(tmp)
        init_network(folder / "network")
        sqlite = run_backend(folder, bootstrap, f"sqlite+pysqlite:///{folder / 'producer.db'}",
                             f"sqlite+pysqlite:///{folder / 'consumer.db'}", count)
        with running_postgres(folder / "pg", port=free_ports(1)[0], fsync=False) as postgres_url:
            consumer_url = postgres_url.rsplit("/", 1)[0] + "/consumer"
            engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
            with engine.connect() as connection:
                connection.execute(sa.text("CREATE DATABASE consumer"))
            engine.dispose()
            postgres = run_backend(folder, bootstrap, postgres_url, consumer_url, count)
        raw = raw_roundtrip(bootstrap, count, os.urandom(1503))
    return {
        "pipeline_sqlite_per_s": round(sqlite["per_s"], 1), "pipeline_pg_per_s": round(postgres["per_s"], 1),
        "pipeline_p50_ms": round(postgres["p50_ms"], 1), "pipeline_p99_ms": round(postgres["p99_ms"], 1),
        "pipeline_sqlite_p50_ms": round(sqlite["p50_ms"], 1), "pipeline_sqlite_p99_ms": round(sqlite["p99_ms"], 1),
        "raw_roundtrip_per_s": round(raw, 1), "pipeline_raw_ratio": round(postgres["per_s"] / raw, 3),
        "pipeline_events": count,
    }


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000)
    report("pipeline", run(parser.parse_args().events))


if __name__ == "__main__":
    main()
