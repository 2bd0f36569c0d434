"""Fixtures of the reliability suite: one referral network on servers this suite may break.

What is real: everything, and all of it is the suite's own, because the tests kill and restart it. A local
three-node Apache Kafka cluster in KRaft mode (replication factor 3, min.insync.replicas 2; always local,
never KAFKA_BOOTSTRAP_SERVERS, since its nodes get killed); a throwaway PostgreSQL server (always local,
never DATABASE_URL, since it gets restarted) holding one database per service; a freshly initialised
development network; the edges and nameko workers of intake, referral, audit and notify as real processes
(:class:`deploy.local.network.LocalNetwork`), killed with SIGKILL and restarted by the tests; the partners'
webhook receiver and SMTP server (:class:`deploy.local.inbox.PartnerInbox`, 127.0.0.1) that every provider's
and coordinator's endpoints point at. What is replaced: nothing.

The faults are drawn from a seeded RNG: ``RELIABILITY_SEED`` replays a run, else the seed is drawn and
printed. The tests share the network and run in file order (kill -9 chaos, then Kafka faults, then
restarts); each checks the whole network's end state, so each also re-checks what the ones before did.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest

from deploy.local.errors import StackError
from deploy.local.inbox import PartnerInbox
from deploy.local.kafka import KafkaCluster
from deploy.local.network import LocalNetwork
from deploy.local.postgres import PostgresServer
from deploy.local.process import free_ports
from tests.stack_support import running_inbox, running_kafka, running_network

SEED_ENV = "RELIABILITY_SEED"


@pytest.fixture(scope="package")
def reliability_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """The suite's own three-node KRaft cluster."""
    with running_kafka(tmp_path_factory.mktemp("reliability-kafka"), 3, "the local 3-node Kafka cluster") as cluster:
        yield cluster


@pytest.fixture(scope="package")
def reliability_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """The suite's own PostgreSQL server (fsync off)."""
    server = PostgresServer(tmp_path_factory.mktemp("reliability-postgres"), free_ports(1)[0], fsync=False)
    try:
        server.start()
    except StackError as exc:
        pytest.fail(f"PostgreSQL did not start:\n{exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def reliability_inbox() -> Iterator[PartnerInbox]:
    """The partners' webhook receiver and mail server."""
    with running_inbox(PartnerInbox()) as inbox:
        yield inbox


@pytest.fixture(scope="package")
def reliability_network(tmp_path_factory: pytest.TempPathFactory, reliability_kafka: KafkaCluster,
                        reliability_postgres: PostgresServer, reliability_inbox: PartnerInbox,
                        ) -> Iterator[LocalNetwork]:
    """The whole network on the suite's Kafka cluster and PostgreSQL server."""
    with running_network(tmp_path_factory.mktemp("reliability-network"), reliability_kafka.bootstrap_servers,
                         reliability_inbox, "the reliability network", postgres_url=reliability_postgres.url,
                         ready_timeout_s=120.0) as network:
        yield network


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A seeded RNG for the faults; the seed is printed (``RELIABILITY_SEED`` replays it)."""
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(1 << 32))
    print(f"\n{request.node.name}: {SEED_ENV}={seed}")
    return random.Random(seed)  # noqa: S311 -- fault injection, replayable from the seed


@pytest.fixture(scope="package")
def accepted_referrals() -> set[str]:
    """Referral ids of every submission answered OK so far in the suite (each test adds its own; the end state
    is checked against all of them, since the network is shared)."""
    return set()
