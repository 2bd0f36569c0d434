"""One place that decides between an existing server (from the environment) and a local one."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from deploy.local.kafka import KafkaCluster

KAFKA_ENV = "KAFKA_BOOTSTRAP_SERVERS"
REPO_ROOT = Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    """Where `make up` keeps data, logs and state: `$REFERRALNET_STATE_DIR`, else `.local-stack/`."""
    return Path(os.environ.get("REFERRALNET_STATE_DIR") or REPO_ROOT / ".local-stack")


def external_kafka() -> str | None:
    """The bootstrap servers of an existing cluster named by ``KAFKA_BOOTSTRAP_SERVERS``, if any."""
    return os.environ.get(KAFKA_ENV) or None


@contextlib.contextmanager
def running_kafka(base_dir: Path, size: int = 1) -> Iterator[str]:
    """Yield bootstrap servers: the external cluster when one is named, else a local one started here."""
    external = external_kafka()
    if external:
        yield external
        return
    with KafkaCluster(base_dir, size=size) as cluster:
        yield cluster.bootstrap_servers
