"""``@batch_consume``: a nameko entrypoint handing its service method whole batches of Kafka records.

For a consumer whose work is one transaction per batch (the audit ledger appends a batch of leaves at
once), where ``services.core.runtime.kafka_entrypoint`` hands out one record per worker. The same lessons
(docs/adr/0008):

- the KafkaConsumer is created in the polling greenthread (a nameko managed thread started in
  ``start()``), after eventlet's monkey-patching; topics that do not exist stop the container at once;
- one batch at a time: poll up to ``max_records``, spawn ONE nameko worker with the batch (records in
  poll order: partition by partition, each in offset order), wait for it, and only when it returned
  (its transaction committed) commit each partition's offset after the batch's last record;
- a worker that raises committed nothing: the same batch is handed over again after a backoff (0.5 s,
  doubling up to 10 s), never skipped; on stop it is left uncommitted and read again next time;
- rebalancing (kafka-python 3 runs the listener on its IO loop while a batch may be running): the revoked
  partitions' part of the running batch gets ``revoke_grace_seconds`` to finish; finished, its offsets
  are committed while the partitions are still ours; unfinished, the partitions are sought back to the
  batch's first offsets (kafka-python keeps a re-assigned partition's position) and dropped from the
  batch, so nothing is committed for them later. Whatever the worker still writes for them is read again
  by their next owner, which is why the handler must be idempotent (the ledger dedupes by event id).

Records are :class:`~services.audit.application.records.SourceRecord` (no kafka-python types reach the
handler). The subscription (topics, group, batch size) is read from the container's config at setup.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import eventlet
from kafka import KafkaConsumer, OffsetAndMetadata
from kafka.errors import KafkaError
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import Entrypoint

from services.audit.application.records import SourceRecord
from services.core.runtime import config as cfg
from services.core.runtime.kafka_entrypoint import RebalanceForwarder
from services.core.runtime.outage import BrokerOutage

log = logging.getLogger(__name__)
Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass(frozen=True)
class Subscription:
    """Which topics, as which consumer group, and how many records per batch."""

    topics: tuple[str, ...]
    group_id: str
    max_records: int = 500


@dataclass(eq=False)
class _Batch:
    """One polled batch: its records, each partition's first and last offset, and how its work went."""

    records: list[SourceRecord]
    first: dict[Any, int]  # kafka TopicPartition -> offset
    last: dict[Any, int]
    done: threading.Event = field(default_factory=threading.Event)  # green under nameko run
    error: BaseException | None = None
    abandoned: set[Any] = field(default_factory=set)  # revoked before the batch committed
    committed: set[Any] = field(default_factory=set)  # offsets committed already (on revocation)

    def remaining(self) -> list[SourceRecord]:
        """The records of the partitions still ours."""
        if not self.abandoned:
            return self.records
        gone = {(partition.topic, partition.partition) for partition in self.abandoned}
        return [record for record in self.records if (record.topic, record.partition) not in gone]


class BatchConsumerEntrypoint(Entrypoint):  # type: ignore[misc]  # nameko is untyped
    """A consumer-group member calling its service method with one list of SourceRecords per poll."""

    def __init__(self, subscription: Callable[[Mapping[str, Any]], Subscription], *, backoff_seconds: float = 0.5,
                 max_backoff_seconds: float = 10.0, revoke_grace_seconds: float = 10.0, poll_timeout_ms: int = 200,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.subscription_of = subscription
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.revoke_grace_seconds = revoke_grace_seconds
        self.poll_timeout_ms = poll_timeout_ms
        self.stats: Counter[str] = Counter()

    # -- nameko lifecycle ---------------------------------------------------------------------------------

    def setup(self) -> None:
        """Read the subscription and the Kafka settings from the container's config."""
        config = self.container.config
        self.subscription = self.subscription_of(config)
        self._servers = cfg.bootstrap_servers(config)
        self._options = cfg.options(config, cfg.KAFKA_CONSUMER_OPTIONS)
        self._stopping = self._killed = self._poller_done = False
        self._thread: Any = None
        self._consumer: Any = None
        self._batch: _Batch | None = None

    def start(self) -> None:
        """Spawn the polling greenthread (the consumer is created there)."""
        self._thread = self.container.spawn_managed_thread(
            self._run, identifier=f"kafka-batch:{self.subscription.group_id}")

    def stop(self) -> None:
        """Stop polling, let the running batch finish and commit, leave the group."""
        self._stopping = True
        if self._thread is not None:
            try:
                self._thread.wait()
            except Exception:
                log.exception("the polling greenthread of %s ended with an error", self.subscription.group_id)

    def kill(self) -> None:
        """Stop at once: nothing more is committed (the batch is read again later)."""
        self._stopping = self._killed = True
        if self._thread is not None and not self._poller_done:
            self._thread.kill()

    # -- the polling greenthread ----------------------------------------------------------------------------

    def _run(self) -> None:
        subscription = self.subscription
        self._consumer = KafkaConsumer(
            bootstrap_servers=self._servers, group_id=subscription.group_id,
            client_id=f"{subscription.group_id}-{os.getpid()}", enable_auto_commit=False,
            isolation_level="read_committed", auto_offset_reset="earliest",
            max_poll_records=subscription.max_records, **self._options)
        try:
            self._consumer.subscribe(list(subscription.topics), listener=RebalanceForwarder(self))
            self._require_topics()
            log.info("batch consumer joined group %s on %s", subscription.group_id, list(subscription.topics))
            outage = BrokerOutage(subscription.group_id)
            while not self._stopping:
                try:
                    polled = self._consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=subscription.max_records)
                except KafkaError as error:  # a retriable one (every broker down...) waits: runtime/outage.py
                    outage.failed(error)
                    continue
                outage.answered()
                if polled:
                    self._handle(_batch_of(polled))
            log.info("batch consumer %s stopping: %s", subscription.group_id, dict(self.stats))
        finally:
            self._poller_done = True
            self._close()

    def _require_topics(self) -> None:
        """Fail fast on a missing topic; also loads the topics' metadata before the first join (see
        services/core/runtime/kafka_entrypoint.py: kafka-python 3.0.12 can get stuck otherwise)."""
        existing = self._consumer.topics()
        missing = [topic for topic in self.subscription.topics if topic not in existing]
        if missing:
            msg = f"batch consumer {self.subscription.group_id}: topics {missing} do not exist (create them first)"
            raise cfg.RuntimeConfigError(msg)

    def _handle(self, batch: _Batch) -> None:
        """Run the batch until its worker succeeds (then commit), its partitions are all gone, or we stop."""
        self._batch = batch
        backoff = self.backoff_seconds
        try:
            while True:
                records = batch.remaining()
                if not records:
                    return
                batch.done.clear()
                batch.error = None
                try:
                    self.container.spawn_worker(self, (records,), {}, handle_result=partial(self._handled, batch))
                except ContainerBeingKilled:
                    self._stopping = True
                    return
                batch.done.wait()
                if batch.error is None:
                    self.stats["batches"] += 1
                    self.stats["records"] += len(records)
                    self._commit(batch)
                    return
                self.stats["failed_attempts"] += 1
                if self._stopping:
                    log.warning("batch consumer %s: stopping with a failed batch uncommitted (read again later)",
                                self.subscription.group_id)
                    return
                log.warning("batch consumer %s: a batch of %d records failed (%s); trying again in %.1fs",
                            self.subscription.group_id, len(records), type(batch.error).__name__, backoff)
                self._sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
        finally:
            self._batch = None

    def _handled(self, batch: _Batch, worker_ctx: Any, result: object, exc_info: Any) -> tuple[object, Any]:  # noqa: ANN401
        """In the worker, once the service method returned or raised: report to the polling greenthread."""
        batch.error = exc_info[1] if exc_info is not None else None
        batch.done.set()
        return result, exc_info

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            eventlet.sleep(min(0.1, deadline - time.monotonic()))

    def _commit(self, batch: _Batch) -> None:
        """Commit, for each partition still ours, the offset after the batch's last record."""
        assigned = self._consumer.assignment()
        offsets = {partition: OffsetAndMetadata(last + 1, "", -1) for partition, last in batch.last.items()
                   if partition in assigned and partition not in batch.abandoned | batch.committed}
        if not offsets:
            return
        try:
            self._consumer.commit(offsets, timeout_ms=5_000)
        except KafkaError as exc:  # a rebalance under way...: the batch is read again, and deduplicated
            log.warning("batch consumer %s: offset commit failed (%s); the batch will be read again",
                        self.subscription.group_id, type(exc).__name__)
            return
        batch.committed.update(offsets)

    def _close(self) -> None:
        if self._consumer is None:
            return
        try:
            self._consumer.close(autocommit=False, timeout_ms=5_000)
        except Exception:  # best effort; the broker drops the member anyway
            log.warning("batch consumer %s: closing the consumer failed", self.subscription.group_id, exc_info=True)

    # -- rebalancing (called on kafka-python's IO greenthread) -----------------------------------------------

    async def revoked(self, partitions: Iterable[Any], *, commit: bool) -> None:
        """Finish (and commit) or abandon the running batch's part of the revoked partitions."""
        batch = self._batch
        if batch is None or self._killed:
            return
        mine = set(partitions) & set(batch.last)
        if not mine:
            return
        deadline = time.monotonic() + self.revoke_grace_seconds
        while not batch.done.is_set() and time.monotonic() < deadline:
            eventlet.sleep(0.01)  # the worker runs meanwhile; this holds kafka's IO loop, not the hub
        finished = batch.done.is_set() and batch.error is None
        batch.abandoned |= mine
        if finished and commit:
            offsets = {p: OffsetAndMetadata(batch.last[p] + 1, "", -1) for p in mine - batch.committed}
            try:
                await self._consumer.commit_async(offsets)
                batch.committed |= set(offsets)
            except KafkaError as exc:
                log.warning("batch consumer %s: commit on revocation failed (%s)", self.subscription.group_id,
                            type(exc).__name__)
        elif not finished:
            for partition in mine:  # kafka-python keeps the position of a partition assigned again
                with contextlib.suppress(ValueError, KafkaError):
                    self._consumer.seek(partition, batch.first[partition])
        log.info("batch consumer %s: partitions revoked %s while a batch ran (%s)", self.subscription.group_id,
                 sorted(f"{p.topic}[{p.partition}]" for p in mine), "committed" if finished else "abandoned")

    def assigned(self, partitions: Iterable[Any]) -> None:
        """Log the assignment (positions start at the committed offsets)."""
        log.info("batch consumer %s: partitions assigned %s", self.subscription.group_id,
                 sorted(f"{p.topic}[{p.partition}]" for p in partitions))


def _batch_of(polled: Mapping[Any, list[Any]]) -> _Batch:
    records: list[SourceRecord] = []
    first: dict[Any, int] = {}
    last: dict[Any, int] = {}
    for partition, batch in polled.items():
        for record in batch:
            records.append(SourceRecord(record.topic, record.partition, record.offset, record.value,
                                        tuple(record.headers or ())))
            first.setdefault(partition, record.offset)
            last[partition] = record.offset
    return _Batch(records, first, last)


def batch_consume(subscription: Callable[[Mapping[str, Any]], Subscription],
                  **options: Any) -> Callable[[Handler], Handler]:  # noqa: ANN401
    """Make a service method the handler of batches for the subscription ``subscription(config)`` gives.

    Options (keywords of BatchConsumerEntrypoint): ``backoff_seconds`` (0.5), ``max_backoff_seconds``
    (10), ``revoke_grace_seconds`` (10), ``poll_timeout_ms`` (200).
    """
    decorate: Callable[[Handler], Handler] = BatchConsumerEntrypoint.decorator(subscription=subscription, **options)
    return decorate
