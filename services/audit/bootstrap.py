"""Wiring the audit service from its configuration: the worker's settings, the ledger writer, the edge's queries.

The worker reads these nameko config keys (``nameko run --config worker.yaml services.audit.worker``) besides
the runtime's ``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_CONSUMER_OPTIONS``, ``KAFKA_PRODUCER_OPTIONS``,
``DATABASE_URL`` and ``NETWORK_DIR`` (services/core/runtime/config.py):

| key | what | default |
|---|---|---|
| ``AUDIT_SOURCE_TOPICS`` | events topics whose records become leaves (list or ``a,b``) | intake, referral, notify |
| ``AUDIT_DEAD_LETTER_TOPICS`` | dead-letter topics to account for | intake-, referral- and notify-worker's |
| ``AUDIT_WORKER_GROUP`` | the consumer group | ``audit-worker`` |
| ``AUDIT_CHECKPOINT_TOPIC`` | where signed checkpoints are published | ``referralnet.audit.checkpoints.v1`` |
| ``CHECKPOINT_EVERY`` | a checkpoint as soon as this many leaves are pending | 1000 |
| ``CHECKPOINT_SECONDS`` | else one every so many seconds while any leaf is pending | 5 |
| ``AUDIT_BATCH_RECORDS`` | records per poll, appended in one transaction | 500 |
| ``AUDIT_VERIFY_THREADS`` | OS threads verifying a batch's signatures (eventlet's tpool); 0: in the hub | cores |

Tests and a second network in one Kafka use their own topics and group through these keys.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from services.audit.adapters.source import DEAD_LETTER_TOPICS, SOURCE_TOPICS
from services.audit.application.compliance_report import ComplianceReporter
from services.audit.application.ledger import LedgerTopics, LedgerWriter, VerifyMany
from services.audit.application.queries import AuditQueries
from services.audit.domain.checkpoint import AUDIT_SERVICE, CheckpointSigner
from services.core.envelope import Verifier, now_micros
from services.core.identity.directory import Directory
from services.core.identity.keystore import load_directory, load_service_signing_key
from services.core.keyvault.routing_keys import load_routing_keys
from services.core.messaging.topics import CHECKPOINT_TOPIC
from services.core.runtime.config import RuntimeConfigError

SERVICE = AUDIT_SERVICE
PORT = 50053
WORKER = "audit-worker"

AUDIT_SOURCE_TOPICS = "AUDIT_SOURCE_TOPICS"
AUDIT_DEAD_LETTER_TOPICS = "AUDIT_DEAD_LETTER_TOPICS"
AUDIT_WORKER_GROUP = "AUDIT_WORKER_GROUP"
AUDIT_CHECKPOINT_TOPIC = "AUDIT_CHECKPOINT_TOPIC"
CHECKPOINT_EVERY = "CHECKPOINT_EVERY"
CHECKPOINT_SECONDS = "CHECKPOINT_SECONDS"
AUDIT_BATCH_RECORDS = "AUDIT_BATCH_RECORDS"
AUDIT_VERIFY_THREADS = "AUDIT_VERIFY_THREADS"

DEFAULT_CHECKPOINT_EVERY = 1000
DEFAULT_CHECKPOINT_SECONDS = 5.0
DEFAULT_BATCH_RECORDS = 500


@dataclass(frozen=True)
class WorkerSettings:
    """What the audit worker reads and writes, and how often it checkpoints."""

    topics: LedgerTopics
    group_id: str = WORKER
    checkpoint_topic: str = CHECKPOINT_TOPIC
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    checkpoint_seconds: float = DEFAULT_CHECKPOINT_SECONDS
    batch_records: int = DEFAULT_BATCH_RECORDS
    verify_threads: int = 1


def default_topics() -> LedgerTopics:
    """intake's, referral's and notify's events topics, and their workers' dead-letter topics."""
    return LedgerTopics(frozenset(SOURCE_TOPICS), frozenset(DEAD_LETTER_TOPICS))


def worker_settings(config: Mapping[str, Any]) -> WorkerSettings:
    """The settings from a nameko config; RuntimeConfigError naming the key that is wrong."""
    sources = _topics(config, AUDIT_SOURCE_TOPICS, SOURCE_TOPICS)
    dead = _topics(config, AUDIT_DEAD_LETTER_TOPICS, DEAD_LETTER_TOPICS)
    if not sources:
        raise RuntimeConfigError(f"{AUDIT_SOURCE_TOPICS} names no topic")
    try:
        topics = LedgerTopics(frozenset(sources), frozenset(dead))
    except ValueError as error:
        raise RuntimeConfigError(f"{AUDIT_SOURCE_TOPICS}/{AUDIT_DEAD_LETTER_TOPICS}: {error}") from None
    return WorkerSettings(
        topics=topics,
        group_id=_text(config, AUDIT_WORKER_GROUP, WORKER),
        checkpoint_topic=_text(config, AUDIT_CHECKPOINT_TOPIC, CHECKPOINT_TOPIC),
        checkpoint_every=int(_number(config, CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_EVERY, minimum=1, whole=True)),
        checkpoint_seconds=_number(config, CHECKPOINT_SECONDS, DEFAULT_CHECKPOINT_SECONDS, minimum=0.05),
        batch_records=int(_number(config, AUDIT_BATCH_RECORDS, DEFAULT_BATCH_RECORDS, minimum=1, whole=True)),
        verify_threads=int(_number(config, AUDIT_VERIFY_THREADS, os.cpu_count() or 1, minimum=0, whole=True)),
    )


def _topics(config: Mapping[str, Any], key: str, default: Sequence[str]) -> list[str]:
    value = config.get(key)
    if value is None or value == "":
        return list(default)
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _text(config: Mapping[str, Any], key: str, default: str) -> str:
    value = config.get(key)
    return str(value).strip() if value is not None and str(value).strip() else default


def _number(config: Mapping[str, Any], key: str, default: float, *, minimum: float, whole: bool = False) -> float:
    value = config.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RuntimeConfigError(f"{key} must be a number, not {value!r}") from None
    if not math.isfinite(number) or number < minimum or (whole and number != int(number)):
        kind = "a whole number" if whole else "a number"
        raise RuntimeConfigError(f"{key} must be {kind} >= {minimum:g}, not {value!r}")
    return number


def checkpoint_signer(network_dir: Path, directory: Directory) -> CheckpointSigner:
    """Audit's checkpoint signer: ``svc:audit``'s key from the network folder, checked against the directory."""
    return CheckpointSigner.for_directory(directory, load_service_signing_key(network_dir, AUDIT_SERVICE))


def build_ledger_writer(engine: sa.Engine, network_dir: Path, *, directory: Directory | None = None,
                        topics: LedgerTopics | None = None, verify_many: VerifyMany | None = None,
                        lock: contextlib.AbstractContextManager[object] | None = None,
                        clock: Callable[[], int] = now_micros) -> LedgerWriter:
    """The ledger writer over ``engine`` (migrated) with the network folder's keys and directory."""
    directory = directory or load_directory(network_dir)
    verify = verify_many or Verifier(directory).verify_many
    return LedgerWriter(engine, topics or default_topics(), verify, load_routing_keys(network_dir),
                        checkpoint_signer(network_dir, directory), clock=clock, lock=lock)


def build_queries(engine: sa.Engine, network_dir: Path, *, directory: Directory | None = None) -> AuditQueries:
    """The edge's use cases over ``engine`` (migrated)."""
    directory = directory or load_directory(network_dir)
    reporter = ComplianceReporter(engine, directory, Verifier(directory).verify_many, load_routing_keys(network_dir))
    return AuditQueries(engine, reporter)
