"""Fixtures shared by every tier.

What is real: Apache Kafka (a KRaft broker started from the jars resolved from Maven Central, on
127.0.0.1, or the cluster named by KAFKA_BOOTSTRAP_SERVERS), PostgreSQL (a throwaway cluster from Debian's
package, or DATABASE_URL) and SQLite files. What is replaced: nothing. A server that cannot start fails
the run with its log tail; no test is ever skipped for a missing server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local.errors import StackError
from deploy.local.kafka import KafkaCluster
from deploy.local.postgres import resolve_database_url
from deploy.local.process import free_ports
from deploy.local.stack import external_kafka
from tests.stack_support import running_kafka


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a running Kafka for the whole session (one local node unless one is named)."""
    external = external_kafka()
    if external:
        yield external
        return
    with running_kafka(tmp_path_factory.mktemp("kafka"), 1, "the local Kafka broker") as cluster:
        yield cluster.bootstrap_servers


@pytest.fixture
def kafka_cluster3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A fresh local three-node KRaft cluster this test may break (always local: its nodes get killed)."""
    with running_kafka(tmp_path_factory.mktemp("kafka3"), 3, "the local 3-node Kafka cluster") as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLAlchemy URL of a PostgreSQL database, for the whole session.

    ``DATABASE_URL`` when set; else a throwaway cluster (fsync off) stopped at session end.
    """
    base_dir = tmp_path_factory.mktemp("postgres")
    try:
        resolved = resolve_database_url(base_dir, port=free_ports(1)[0], fsync=False)
    except StackError as exc:
        pytest.fail(f"PostgreSQL did not start:\n{exc}", pytrace=False)
    try:
        yield resolved.url
    finally:
        if resolved.server is not None:
            resolved.server.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLAlchemy URL of a fresh SQLite database file in the test's own directory."""
    return f"sqlite+pysqlite:///{tmp_path / 'roundtrip.db'}"
