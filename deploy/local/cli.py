"""``python -m deploy.local``: bring the local stack up, show it, take it down.

``up`` starts Apache Kafka (one node, or three with ``--kafka-nodes 3``) and, with ``--postgres``,
PostgreSQL; both stay running until ``down``. ``env`` prints the variables other commands use to reach
them. ``check`` proves the stack answers: a record goes through Kafka and a query through PostgreSQL.
``network`` runs the referral network (intake, referral, audit and notify, edges and workers) in the foreground
on the stack's Kafka (or a Kafka of its own) until Ctrl-C; see :mod:`deploy.local.network`.
Servers named by KAFKA_BOOTSTRAP_SERVERS or DATABASE_URL are used as they are and never started or stopped.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from deploy.local.errors import StackError
from deploy.local.kafka import KAFKA_VERSION, KafkaCluster
from deploy.local.postgres import PostgresServer, external_database_url, port_from_env, stop_saved
from deploy.local.stack import external_kafka, state_dir

DEFAULT_KAFKA_PORT = 19092
ENV_FILE = "stack.env"


def kafka_ports(nodes: int) -> list[int]:
    """Broker ports for ``make up``: ``KAFKA_PORT`` (default 19092) and the next ones for a cluster."""
    raw = os.environ.get("KAFKA_PORT", str(DEFAULT_KAFKA_PORT))
    if not raw.isdigit() or not 0 < int(raw) <= 65536 - nodes:
        msg = f"KAFKA_PORT must be a TCP port number, not {raw!r}"
        raise StackError(msg)
    return [int(raw) + i for i in range(nodes)]


def up(base: Path, kafka_nodes: int, with_postgres: bool) -> None:
    """Start what is not running yet and record how to reach it in ``<state>/stack.env``."""
    base.mkdir(parents=True, exist_ok=True)
    bootstrap = external_kafka()
    if bootstrap:
        print(f"kafka: using the existing cluster at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS)")
    else:
        bootstrap = _kafka_up(base, kafka_nodes)
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    if with_postgres:
        env["DATABASE_URL"] = _postgres_up(base)
    (base / ENV_FILE).write_text("".join(f"export {key}='{value}'\n" for key, value in env.items()))
    (base / ENV_FILE).chmod(0o600)
    print(f"stack is up; `source {base / ENV_FILE}` points clients at it")


def _kafka_up(base: Path, nodes: int) -> str:
    running = KafkaCluster.from_state(base)
    if running is not None and running.running_nodes():
        print(f"kafka: already running at {running.bootstrap_servers}")
        return running.bootstrap_servers
    cluster = KafkaCluster(base, size=nodes, broker_ports=kafka_ports(nodes))
    started = time.monotonic()
    cluster.start()
    print(f"kafka {KAFKA_VERSION}: {nodes} node(s) up at {cluster.bootstrap_servers} "
          f"in {time.monotonic() - started:.1f}s (logs in {base}/kafka-*/logs)")
    return cluster.bootstrap_servers


def _postgres_up(base: Path) -> str:
    external = external_database_url()
    if external:
        print("postgres: using the existing server named by DATABASE_URL")
        return external
    saved = PostgresServer.from_state(base)
    if saved is not None and saved.is_running():
        print(f"postgres: already running on 127.0.0.1:{saved.port}")
        return saved.url
    server = PostgresServer(base, port_from_env())
    started = time.monotonic()
    url = server.start()
    print(f"postgres: up on 127.0.0.1:{server.port} in {time.monotonic() - started:.1f}s (log {server.log_path})")
    return url


def down(base: Path) -> None:
    """Stop every server ``up`` started under ``base``; servers named by the environment are left alone."""
    cluster = KafkaCluster.from_state(base)
    if cluster is not None:
        cluster.stop()
        print(f"kafka: stopped {len(cluster.nodes)} node(s)")
    if stop_saved(base):
        print("postgres: stopped")
    (base / ENV_FILE).unlink(missing_ok=True)
    print("stack is down")


def check(base: Path) -> None:
    """Prove the stack answers: one record through Kafka, one query through PostgreSQL."""
    bootstrap = external_kafka()
    if not bootstrap:
        cluster = KafkaCluster.from_state(base)
        if cluster is None or not cluster.running_nodes():
            msg = "kafka is not running: start it with `make up`"
            raise StackError(msg)
        bootstrap = cluster.bootstrap_servers
    print(f"kafka: {_kafka_round_trip(bootstrap)}")
    saved = PostgresServer.from_state(base)
    url = external_database_url() or (saved.url if saved is not None and saved.is_running() else None)
    if url is not None:
        print(f"postgres: {_postgres_version(url)}")


def _kafka_round_trip(bootstrap: str) -> str:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer  # noqa: PLC0415  (slow import)
    from kafka.admin import NewTopic  # noqa: PLC0415

    topic = f"stack.check.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="stack-check")
    brokers = len(admin.describe_cluster()["brokers"])
    admin.create_topics([NewTopic(topic, 1, min(brokers, 3))])
    admin.wait_for_topics([topic], timeout_ms=30_000)
    try:
        started = time.monotonic()
        producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
        producer.send(topic, key=b"check", value=b"hola").get(timeout=30)
        producer.close()
        consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                 consumer_timeout_ms=15_000, group_id=None)
        values = []
        for record in consumer:
            values.append(record.value)
            break
        consumer.close()
        elapsed_ms = (time.monotonic() - started) * 1000
    finally:
        admin.delete_topics([topic])
        admin.close()
    if values != [b"hola"]:
        msg = f"kafka at {bootstrap} did not give back the record it acknowledged (got {values!r})"
        raise StackError(msg)
    return f"{brokers} broker(s) at {bootstrap}; produce (acks=all) + consume round trip {elapsed_ms:.0f} ms"


def _postgres_version(url: str) -> str:
    from sqlalchemy import create_engine, text  # noqa: PLC0415  (slow import)

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            version = connection.execute(text("select version()")).scalar_one()
    finally:
        engine.dispose()
    return str(version).split(",")[0]


def demo(base: Path) -> None:
    """The walk-through on a network of its own (deploy/local/demo.py); stops everything it started."""
    from deploy.local.demo import run_demo  # noqa: PLC0415  (imports the services)

    run_demo(base)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m deploy.local``; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m deploy.local", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start Kafka (and PostgreSQL with --postgres)")
    up_parser.add_argument("--kafka-nodes", type=int, choices=(1, 3), default=1)
    up_parser.add_argument("--postgres", action="store_true", help="also start a local PostgreSQL")
    commands.add_parser("down", help="stop everything `up` started")
    commands.add_parser("check", help="prove the running stack answers")
    commands.add_parser("env", help="print the export lines that point clients at the stack")
    commands.add_parser("demo", help="run the network and the partners' walk-through, then stop it")
    network_parser = commands.add_parser("network", help="run the network's services in the foreground (Ctrl-C stops)")
    network_parser.add_argument("--postgres", action="store_true",
                                help="PostgreSQL databases (the stack's, DATABASE_URL's or a new one), not SQLite")
    args = parser.parse_args(argv)
    base = state_dir()
    try:
        if args.command == "up":
            up(base, args.kafka_nodes, args.postgres)
        elif args.command == "down":
            down(base)
        elif args.command == "check":
            check(base)
        elif args.command == "network":
            from deploy.local.network import run_network  # noqa: PLC0415  (imports the services)

            run_network(base, with_postgres=args.postgres)
        elif args.command == "env":
            env_file = base / ENV_FILE
            print(env_file.read_text() if env_file.exists() else "# the stack is not up: run `make up`", end="")
        else:
            demo(base)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
