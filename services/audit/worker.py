"""The audit worker (nameko ``audit-worker``): appends every source record to the ledger and signs checkpoints.

Run with ``nameko run --config worker.yaml services.audit.worker``. Config keys: the runtime's
``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``, ``NETWORK_DIR`` (and optionally ``KAFKA_CONSUMER_OPTIONS``,
``KAFKA_PRODUCER_OPTIONS``), plus ``AUDIT_SOURCE_TOPICS``, ``AUDIT_DEAD_LETTER_TOPICS``,
``AUDIT_WORKER_GROUP``, ``AUDIT_CHECKPOINT_TOPIC``, ``CHECKPOINT_EVERY``, ``CHECKPOINT_SECONDS``,
``AUDIT_BATCH_RECORDS`` and ``AUDIT_VERIFY_THREADS`` (services/audit/bootstrap.py has the table). The
database is migrated on start (locked and idempotent, like the edge's); the source and dead-letter topics
must exist, and the checkpoint topic too (auto-creation would give it the broker's retention).

- ``append_batch`` (a batch consumer, services/audit/batch_entrypoint.py): up to ``AUDIT_BATCH_RECORDS``
  records per poll, their signatures verified on ``AUDIT_VERIFY_THREADS`` OS threads (eventlet's tpool:
  Ed25519 releases the GIL, so the threads really run side by side while the hub keeps serving), appended
  in ONE transaction (LedgerWriter.ingest); the offsets are committed after it. When ``CHECKPOINT_EVERY``
  leaves are pending it checkpoints at once.
- ``make_checkpoint`` (a timer, every ``CHECKPOINT_SECONDS``): a checkpoint when any leaf is pending.
  Either way the checkpoint is stored first, then published to the checkpoint topic (acks=all,
  idempotent producer, key = origin); one stored but not acknowledged is published on the next tick.

One audit worker per network (ADR 12): the leaf order is one writer's.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from eventlet import tpool
from eventlet.greenpool import GreenPool
from kafka import KafkaProducer
from nameko.extensions import DependencyProvider
from nameko.timer import Timer

from services.audit.adapters.database import migrate
from services.audit.application.ledger import LedgerWriter, VerifyMany
from services.audit.application.records import SourceRecord
from services.audit.batch_entrypoint import Subscription, batch_consume
from services.audit.bootstrap import (
    DEFAULT_CHECKPOINT_SECONDS,
    WORKER,
    WorkerSettings,
    build_ledger_writer,
    worker_settings,
)
from services.audit.domain.checkpoint import Checkpoint, encode_checkpoint
from services.core.database import create_engine
from services.core.envelope import EnvelopeError, VerifiedEnvelope, Verifier
from services.core.runtime import TracingProvider
from services.core.runtime import config as cfg
from services.core.runtime.green import cooperative_psycopg

log = logging.getLogger(__name__)

PARALLEL_THRESHOLD = 64  # below this many envelopes a batch is verified in one thread
PUBLISH_TIMEOUT_S = 10.0


def threaded_verify(verifier: Verifier, threads: int) -> VerifyMany:
    """``verify_many`` on ``threads`` OS threads of eventlet's tpool (0: in the calling greenthread).

    ``verifier`` must verify a chunk in the calling thread (``Verifier(..., workers=1)``): its own pool
    would be green under nameko and run nothing in parallel.
    """
    if threads <= 0:
        return verifier.verify_many
    pool = GreenPool(threads)

    def in_thread(chunk: Sequence[bytes]) -> list[VerifiedEnvelope | EnvelopeError]:
        result: list[VerifiedEnvelope | EnvelopeError] = tpool.execute(verifier.verify_many, chunk)
        return result

    def verify_many(wires: Sequence[bytes]) -> list[VerifiedEnvelope | EnvelopeError]:
        if len(wires) < PARALLEL_THRESHOLD or threads == 1:
            return in_thread(wires)
        size = -(-len(wires) // threads)
        results: list[VerifiedEnvelope | EnvelopeError] = []
        for part in pool.imap(in_thread, [wires[start:start + size] for start in range(0, len(wires), size)]):
            results.extend(part)
        return results

    return verify_many


class KafkaCheckpointPublisher:
    """Publishes checkpoints (protobuf bytes, key = origin) with an idempotent acks=all producer."""

    def __init__(self, servers: list[str], topic: str, options: Mapping[str, Any]) -> None:
        self._servers = servers
        self._topic = topic
        self._options = dict(options)
        self._producer: Any = None

    def publish(self, checkpoint: Checkpoint) -> None:
        """Send one checkpoint and wait for the broker's acknowledgement (raises KafkaError otherwise)."""
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self._servers, client_id=f"audit-checkpoints-{os.getpid()}", acks="all",
                enable_idempotence=True, max_block_ms=int(PUBLISH_TIMEOUT_S * 1000), **self._options)
        future = self._producer.send(self._topic, key=checkpoint.origin.encode(), value=encode_checkpoint(checkpoint))
        future.get(timeout=PUBLISH_TIMEOUT_S)

    def close(self) -> None:
        """Flush and close the producer, if one was made."""
        if self._producer is not None:
            try:
                self._producer.close(timeout=5)
            except Exception:  # best effort on the way out
                log.warning("closing the checkpoint producer failed", exc_info=True)
            self._producer = None


class LedgerRuntime:
    """What the worker's entrypoints call: the writer, the checkpoint publisher and the checkpoint rule."""

    def __init__(self, writer: LedgerWriter, publisher: KafkaCheckpointPublisher, settings: WorkerSettings) -> None:
        self.writer = writer
        self.publisher = publisher
        self.settings = settings
        self._publishing = threading.Lock()  # green under nameko run: one publisher at a time, in order

    def after_batch(self) -> None:
        """Checkpoint at once when ``CHECKPOINT_EVERY`` leaves are pending (never fails the batch)."""
        self._checkpoint(self.settings.checkpoint_every)

    def tick(self) -> None:
        """Checkpoint whatever is pending, and publish what was not acknowledged yet."""
        self._checkpoint(1)

    def _checkpoint(self, minimum_leaves: int) -> None:
        try:
            self.writer.checkpoint(minimum_leaves)
        except Exception:  # the leaves stay pending: the next tick tries again
            log.exception("ledger: making a checkpoint failed; the next tick tries again")
            return
        with self._publishing:
            try:
                self.writer.publish_pending(self.publisher)
            except Exception as error:  # stored, not acknowledged: the next tick publishes it
                log.warning("ledger: publishing a checkpoint to %s failed (%s); the next tick tries again",
                            self.settings.checkpoint_topic, type(error).__name__)


class LedgerProvider(DependencyProvider):  # type: ignore[misc]  # nameko is untyped
    """Builds the ledger from the nameko config once: database (migrated), keys, verifier, publisher."""

    def setup(self) -> None:
        """Read the config, migrate the database, load the network folder's keys."""
        config = self.container.config
        settings = worker_settings(config)
        folder = cfg.network_dir(config)
        directory = cfg.directory_at(folder)
        cooperative_psycopg()
        url = cfg.database_url(config)
        self.engine = create_engine(url) if url.startswith("sqlite") else create_engine(
            url, pool_size=2, max_overflow=2, pool_pre_ping=True)
        migrate(self.engine)
        self.verifier = Verifier(directory, workers=1)
        writer = build_ledger_writer(self.engine, folder, directory=directory, topics=settings.topics,
                                     verify_many=threaded_verify(self.verifier, settings.verify_threads))
        publisher = KafkaCheckpointPublisher(cfg.bootstrap_servers(config), settings.checkpoint_topic,
                                             cfg.options(config, cfg.KAFKA_PRODUCER_OPTIONS))
        self.runtime = LedgerRuntime(writer, publisher, settings)

    def stop(self) -> None:
        """Close the producer, the verifier and the pooled connections."""
        self.runtime.publisher.close()
        self.verifier.close()
        self.engine.dispose()

    def get_dependency(self, worker_ctx: Any) -> LedgerRuntime:  # noqa: ANN401 -- nameko's WorkerContext
        """The ledger runtime (shared by the workers; the writer serialises its transactions)."""
        return self.runtime


def audit_subscription(config: Mapping[str, Any]) -> Subscription:
    """The worker's subscription: every source and dead-letter topic, its group, its batch size."""
    settings = worker_settings(config)
    return Subscription(settings.topics.all, settings.group_id, settings.batch_records)


class CheckpointTimer(Timer):  # type: ignore[misc]
    """nameko's timer, with its interval read from ``CHECKPOINT_SECONDS`` at setup."""

    def __init__(self, **kwargs: Any) -> None:  # noqa: ANN401 -- nameko's extension keywords
        super().__init__(interval=DEFAULT_CHECKPOINT_SECONDS, **kwargs)

    def setup(self) -> None:
        """Take the interval from the config."""
        self.interval = worker_settings(self.container.config).checkpoint_seconds


checkpoint_timer = CheckpointTimer.decorator


class AuditWorker:
    """Appends source records to the ledger and signs its checkpoints."""

    name = WORKER
    ledger = LedgerProvider()
    tracer = TracingProvider()  # configures this process's tracing (services/core/telemetry/setup.py)

    @batch_consume(audit_subscription)
    def append_batch(self, records: list[SourceRecord]) -> None:
        """Append one polled batch in one transaction; the entrypoint commits its offsets afterwards."""
        outcome = self.ledger.writer.ingest(records)
        log.debug("ledger: batch of %d records: %d appended, %d duplicates, %d rejected, %d dead letters",
                  len(records), outcome.appended, outcome.duplicates, outcome.rejected, outcome.dead_letters)
        if outcome.rejected:
            log.warning("ledger: %d record(s) of this batch were rejected (recorded, named by event id or position)",
                        outcome.rejected)
        if outcome.duplicates:
            log.info("ledger: %d record(s) of this batch were leaves already (read again): skipped",
                     outcome.duplicates)
        self.ledger.after_batch()

    @checkpoint_timer()  # type: ignore[untyped-decorator]  # nameko is untyped
    def make_checkpoint(self) -> None:
        """Checkpoint what is pending and publish what is unpublished."""
        self.ledger.tick()
