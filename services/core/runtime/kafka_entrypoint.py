"""``@consume``: a nameko entrypoint that is a Kafka consumer-group member, committing only finished work.

One polling greenthread per entrypoint (a nameko managed thread, started in ``start()``) owns the
KafkaConsumer: it polls, verifies each record's envelope when the record's turn comes (one at a time per
stream, so a stream's events apply in order), spawns one nameko worker per record (the worker pool is
the back-pressure), and commits, itself, only the contiguous run of finished offsets per partition.

A record is finished when its worker's transaction committed (the dedupe claim included), when it was a
duplicate, or when the dead-letter topic acknowledged it. It is dead-lettered at once when its envelope
does not verify or its handler raises an EnvelopeError or UnprocessableEvent, and after ``attempts``
tries (exponential backoff) when its handler keeps failing. Nothing is skipped silently.

Rebalancing (kafka-python 3 runs listeners on its own IO loop): on revoke, nothing new starts for the
revoked partitions, running workers get ``revoke_grace_seconds`` to finish, what finished is committed,
unfinished records are sought back (kafka-python keeps a re-assigned partition's position), and the
partitions stop being tracked, so a worker finishing later counts for nothing. See docs/adr/0008.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

import eventlet
from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, KafkaProducer, OffsetAndMetadata
from kafka.errors import KafkaError
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import Entrypoint

from services.core.envelope import EnvelopeError, Opener, VerifiedEnvelope, Verifier
from services.core.events.errors import UnprocessableEvent
from services.core.messaging.topics import dead_letter_topic
from services.core.runtime import config as cfg
from services.core.runtime.dead_letter import DeadLetter, Origin, dead_letter_headers
from services.core.runtime.delivery import ConsumedEvent
from services.core.runtime.dependencies import Settlement, UnitOfWork
from services.core.runtime.dispatch import Dispatcher, Pending
from services.core.runtime.outage import BrokerOutage
from services.core.telemetry.propagation import header_value

log = logging.getLogger(__name__)
Handler = TypeVar("Handler", bound=Callable[..., Any])

DONE, REJECTED, FAILED, DEAD_LETTERED, DLQ_FAILED = "done", "rejected", "failed", "dead_lettered", "dlq_failed"


@dataclass(frozen=True)
class Completion:
    """What happened to a record's work: reported by workers and dead-letter sends, applied by the poller."""

    kind: str
    settlement: Settlement | None = None
    letter: DeadLetter | None = None
    error_type: str = ""


def completion_of(settlement: Settlement | None, error: BaseException | None) -> Completion:
    """A worker's outcome: done (committed or duplicate), rejected (dead-letter now), or failed (retry)."""
    if error is None:
        return Completion(DONE, settlement=settlement)
    if isinstance(error, EnvelopeError | UnprocessableEvent):
        return Completion(REJECTED, letter=DeadLetter.rejected(error))
    return Completion(FAILED, error_type=type(error).__name__)


class KafkaConsumerEntrypoint(Entrypoint):  # type: ignore[misc]  # nameko is untyped
    """A consumer-group member calling its service method with one ConsumedEvent per record."""

    def __init__(self, topics: Iterable[str], group_id: str, *, consumer: str | None = None, attempts: int = 3,
                 backoff_seconds: float = 0.5, commit_interval_seconds: float = 0.5,
                 revoke_grace_seconds: float = 5.0, max_buffered: int | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.topics = list(topics)
        self.group_id = group_id
        self.consumer_name = consumer or group_id
        self.dead_letter_topic = dead_letter_topic(self.consumer_name)
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.commit_interval_seconds = commit_interval_seconds
        self.revoke_grace_seconds = revoke_grace_seconds
        self.max_buffered = max_buffered
        self.stats: Counter[str] = Counter()

    # -- nameko lifecycle ---------------------------------------------------------------------------------

    def setup(self) -> None:
        """Read the config, load the directory once, and find the service's UnitOfWork."""
        config = self.container.config
        self._servers = cfg.bootstrap_servers(config)
        self._consumer_options = cfg.options(config, cfg.KAFKA_CONSUMER_OPTIONS)
        self._producer_options = cfg.options(config, cfg.KAFKA_PRODUCER_OPTIONS)
        self._verifier = Verifier(cfg.directory_at(cfg.network_dir(config)), workers=1)
        self._opener = Opener()
        self._uow = self._unit_of_work()
        self._buffer_limit = self.max_buffered or max(100, 10 * self.container.max_workers)
        self._dispatcher = Dispatcher()
        self._completions: deque[tuple[Pending, Completion]] = deque()
        self._completed = threading.Event()  # green under nameko run: wakes the poller at each completion
        self._retries: list[tuple[float, int, Pending, DeadLetter | None]] = []
        self._sequence = itertools.count()
        self._stopping = self._killed = self._paused = self._poller_done = False
        self._next_commit = 0.0
        self._thread: Any = None
        self._consumer: Any = None
        self._producer: Any = None

    def start(self) -> None:
        """Spawn the polling greenthread (the consumer is created there, after monkey-patching)."""
        self._thread = self.container.spawn_managed_thread(self._run, identifier=f"kafka:{self.group_id}")

    def stop(self) -> None:
        """Stop polling, let running workers finish, commit what finished, leave the group."""
        self._stopping = True
        if self._thread is not None:
            try:
                self._thread.wait()
            except Exception:
                log.exception("the polling greenthread of %s ended with an error", self.group_id)

    def kill(self) -> None:
        """Stop at once: nothing more is committed (unfinished records are redelivered later)."""
        self._stopping = self._killed = True
        # When the poller raised (e.g. a missing topic), nameko kills the container from that greenthread's
        # exit callback: killing it then would abort the container's kill and leave the process hanging.
        if self._thread is not None and not self._poller_done:
            self._thread.kill()

    def _unit_of_work(self) -> UnitOfWork:
        found = [dep for dep in self.container.dependencies if isinstance(dep, UnitOfWork)]
        if len(found) != 1:
            msg = (f"{self.container.service_name}: a Kafka consumer needs exactly one UnitOfWork dependency "
                   f"(its transaction holds the dedupe claim); found {len(found)}")
            raise cfg.RuntimeConfigError(msg)
        return found[0]

    # -- the polling greenthread ----------------------------------------------------------------------------

    def _run(self) -> None:
        self._outage = BrokerOutage(self.consumer_name)
        self._consumer = KafkaConsumer(
            bootstrap_servers=self._servers, group_id=self.group_id, client_id=f"{self.consumer_name}-{os.getpid()}",
            enable_auto_commit=False, isolation_level="read_committed", auto_offset_reset="earliest",
            **self._consumer_options)
        self._producer = KafkaProducer(
            bootstrap_servers=self._servers, client_id=f"{self.consumer_name}-dlq-{os.getpid()}",
            enable_idempotence=True, acks="all", linger_ms=5, max_block_ms=10_000, **self._producer_options)
        try:
            self._consumer.subscribe(self.topics, listener=RebalanceForwarder(self))
            self._require_topics()
            log.info("consumer %s joined group %s on %s", self.consumer_name, self.group_id, self.topics)
            while not self._stopping:
                self._cycle()
            self._finish()
        finally:
            self._poller_done = True
            self._close()

    def _require_topics(self) -> None:
        """Fail fast on a missing topic; also loads the subscribed topics' metadata before the first join.

        Without that, kafka-python 3.0.12 joins with no partition metadata, then rejoins once it arrives,
        and that rejoin's completion is lost when ``poll()`` times out during SyncGroup (its ``need_rejoin``
        turns False when the leader's new assignment matches the metadata): the consumer then sits with its
        partitions "pending revocation" for good. Measured: 3 of 8 starts stuck before this call was added.
        """
        existing = self._consumer.topics()  # always a fresh, all-topics metadata request
        missing = [topic for topic in [*self.topics, self.dead_letter_topic] if topic not in existing]
        if missing:
            msg = f"consumer {self.consumer_name}: topics {missing} do not exist (create them before starting)"
            raise cfg.RuntimeConfigError(msg)

    def _cycle(self) -> None:
        self._apply_completions()
        self._start_due_retries()
        self._commit()
        self._dispatch_ready()
        room = self._buffer_limit - len(self._dispatcher)
        self._pause(room <= 0)
        busy = self._dispatcher.busy() > 0 or bool(self._retries)
        # While work runs, poll without waiting (fetching goes on in kafka-python's IO loop) and sleep until
        # a worker reports instead: a completion frees its stream's next record at once. Measured: a 5 ms
        # poll timeout gave 380 events/s, 25 ms gave 270.
        try:
            records = self._consumer.poll(timeout_ms=0 if busy else 200, max_records=max(1, room))
        except KafkaError as error:  # a retriable one (every broker down...) waits; see runtime/outage.py
            self._outage.failed(error)
            return
        self._outage.answered()
        for partition, batch in records.items():
            for record in batch:  # no yield in here: a revocation sees every returned record tracked
                self._dispatcher.fetched(partition, record.offset, record.key, record)
        if busy and not records and not self._completions:
            self._completed.wait(0.02)

    def _pause(self, full: bool) -> None:
        if full and not self._paused:
            self._consumer.pause(*self._consumer.assignment())
        elif not full and self._paused:
            self._consumer.resume(*self._consumer.paused())
        self._paused = full

    def _dispatch_ready(self) -> None:
        while not self._stopping and (item := self._dispatcher.next_ready()) is not None:
            self._start(item)

    def _start(self, item: Pending) -> None:
        """Verify the record (first attempt) and spawn its worker, or dead-letter it."""
        record = item.payload
        if item.attempt == 0:
            try:
                item.verified = self._verifier.verify(record.value or b"")
            except EnvelopeError as error:
                self._dead_letter(item, DeadLetter.rejected(error))
                return
        item.attempt += 1
        item.busy = True
        envelope: VerifiedEnvelope = item.verified
        event = ConsumedEvent(
            envelope=envelope, topic=record.topic, partition=record.partition, offset=record.offset,
            consumer=self.consumer_name, attempt=item.attempt,
            traceparent=header_value(record.headers, "traceparent") or envelope.header.traceparent,
            tracestate=header_value(record.headers, "tracestate") or envelope.header.tracestate,
            opener=self._opener)
        try:
            self.container.spawn_worker(self, (event,), {}, handle_result=partial(self.handle_result, item))
        except ContainerBeingKilled:
            item.busy = False
            self._stopping = True

    def handle_result(self, item: Pending, worker_ctx: Any, result: object, exc_info: Any) -> tuple[object, Any]:  # noqa: ANN401
        """In the worker: settle its transaction, then report the outcome to the polling greenthread."""
        try:
            settlement = self._uow.settle(worker_ctx, succeeded=exc_info is None)
        except Exception:  # a failed commit is a failed attempt, retried like any other
            exc_info = sys.exc_info()
            settlement = None
        self._report(item, completion_of(settlement, exc_info[1] if exc_info is not None else None))
        return result, exc_info

    def _report(self, item: Pending, completion: Completion) -> None:
        self._completions.append((item, completion))
        self._completed.set()

    def _apply_completions(self) -> None:
        self._completed.clear()
        while self._completions:
            item, completion = self._completions.popleft()
            item.busy = False
            if completion.kind in (DONE, DEAD_LETTERED):
                if self._dispatcher.finished(item):
                    self.stats[str(completion.settlement or completion.kind)] += 1
            elif not self._may_start(item):
                continue  # revoked, being revoked or stopping: the record stays unfinished, redelivered
            elif completion.kind == REJECTED:
                self._dead_letter(item, completion.letter)
            elif completion.kind == FAILED and item.attempt < self.attempts:
                self.stats["retries"] += 1
                self._schedule(item, self.backoff_seconds * 2 ** (item.attempt - 1))
            elif completion.kind == FAILED:
                event_id = item.verified.header.event_id
                self._dead_letter(item, DeadLetter.handler_failed(completion.error_type, item.attempt, event_id))
            else:  # DLQ_FAILED: try the dead-letter send again later
                self._schedule(item, self.backoff_seconds, completion.letter)

    def _may_start(self, item: Pending) -> bool:
        return not self._stopping and self._dispatcher.may_start(item)

    def _schedule(self, item: Pending, delay: float, letter: DeadLetter | None = None) -> None:
        heapq.heappush(self._retries, (time.monotonic() + delay, next(self._sequence), item, letter))

    def _start_due_retries(self) -> None:
        while self._retries and self._retries[0][0] <= time.monotonic():
            _, _, item, letter = heapq.heappop(self._retries)
            if not self._may_start(item):
                continue
            if letter is None:
                self._start(item)
            else:
                self._dead_letter(item, letter)

    def _dead_letter(self, item: Pending, letter: DeadLetter | None) -> None:
        assert letter is not None  # noqa: S101 -- every rejection carries its letter
        record = item.payload
        origin = Origin(record.topic, record.partition, record.offset, self.consumer_name)
        headers = dead_letter_headers(letter, origin, record.headers, attempts=item.attempt)
        item.busy = True
        log.warning("consumer %s: %s[%s]@%s dead-lettered to %s: %s", self.consumer_name, record.topic,
                    record.partition, record.offset, self.dead_letter_topic, letter.reason)
        try:
            future = self._producer.send(self.dead_letter_topic, key=record.key, value=record.value, headers=headers)
        except KafkaError as exc:
            self._report(item, Completion(DLQ_FAILED, letter=letter, error_type=type(exc).__name__))
            return
        future.add_callback(lambda _metadata: self._report(item, Completion(DEAD_LETTERED)))
        future.add_errback(lambda exc: self._report(
            item, Completion(DLQ_FAILED, letter=letter, error_type=type(exc).__name__)))

    def _commit(self, *, force: bool = False) -> None:
        """Commit each owned partition's contiguous finished run (from the polling greenthread only)."""
        now = time.monotonic()
        if not force and now < self._next_commit:
            return
        self._next_commit = now + self.commit_interval_seconds
        pending = self._dispatcher.tracker.pending_commits()
        if not pending:
            return
        offsets = {partition: OffsetAndMetadata(position, "", -1) for partition, (_, position) in pending.items()}
        try:
            self._consumer.commit(offsets, timeout_ms=5_000)
        except KafkaError as exc:  # a rebalance in progress, the coordinator moving...: commit again later
            log.warning("consumer %s: offset commit failed (%s); will retry", self.consumer_name, type(exc).__name__)
            return
        for state, position in pending.values():
            state.committed = position

    def _finish(self, grace_seconds: float = 30.0) -> None:
        """On stop: wait for running workers and dead-letter sends, then commit what finished."""
        deadline = time.monotonic() + grace_seconds
        while self._dispatcher.busy() and time.monotonic() < deadline:
            eventlet.sleep(0.01)
            self._apply_completions()
        self._apply_completions()
        self._commit(force=True)
        log.info("consumer %s stopping: %s", self.consumer_name, dict(self.stats))

    def _close(self) -> None:
        for client in (self._consumer, self._producer):
            if client is None:
                continue
            try:
                if client is self._consumer:
                    client.close(autocommit=False, timeout_ms=5_000)
                else:
                    client.close(timeout=5)
            except Exception:  # closing is best effort; the broker drops the member anyway
                log.warning("consumer %s: closing a Kafka client failed", self.consumer_name, exc_info=True)
        self._verifier.close()

    # -- rebalancing (called on kafka-python's IO greenthread) ---------------------------------------------------

    async def revoked(self, partitions: Iterable[Any], *, commit: bool) -> None:
        """Finish or abandon the revoked partitions' work, commit what finished, stop tracking them."""
        partitions = set(partitions)
        if not partitions or self._killed:
            return
        self._dispatcher.close(partitions)
        deadline = time.monotonic() + self.revoke_grace_seconds
        while self._dispatcher.busy(partitions) and time.monotonic() < deadline:
            eventlet.sleep(0.01)  # workers run meanwhile; this loop holds kafka's IO loop, not the hub
            self._apply_completions()
        self._apply_completions()
        released = self._dispatcher.revoke(partitions)
        for partition, state in released.items():
            if state.resume is not None:  # kafka-python keeps the position of a partition assigned again
                with contextlib.suppress(ValueError):  # unassigned already: the next owner starts at the commit
                    self._consumer.seek(partition, state.resume)
        offsets = {p: OffsetAndMetadata(s.commit, "", -1) for p, s in released.items() if s.commit is not None}
        log.info("consumer %s: partitions revoked %s (commit %s)", self.consumer_name, sorted(map(_name, partitions)),
                 {_name(p): o.offset for p, o in offsets.items()} if commit else "skipped: lost")
        if commit and offsets:
            try:
                await self._consumer.commit_async(offsets)
                log.debug("consumer %s: revocation commit done", self.consumer_name)
            except KafkaError as exc:
                log.warning("consumer %s: commit on revocation failed (%s)", self.consumer_name, type(exc).__name__)

    def assigned(self, partitions: Iterable[Any]) -> None:
        """Track newly assigned partitions afresh (their position is the committed offset)."""
        partitions = list(partitions)
        self._dispatcher.assign(partitions)
        log.info("consumer %s: partitions assigned %s", self.consumer_name, sorted(map(_name, partitions)))


def _name(partition: Any) -> str:  # noqa: ANN401 -- a kafka TopicPartition
    return f"{partition.topic}[{partition.partition}]"


class RebalanceHandler(Protocol):
    """What a consumer entrypoint does when partitions are revoked, lost or assigned."""

    async def revoked(self, partitions: Iterable[Any], *, commit: bool) -> None: ...

    def assigned(self, partitions: Iterable[Any]) -> None: ...


class RebalanceForwarder(AsyncConsumerRebalanceListener):  # type: ignore[misc]
    """Forwards kafka-python's rebalance callbacks to an entrypoint (async: it may await a commit).

    Lost partitions are revoked without a commit: another member may already own them.
    """

    def __init__(self, entrypoint: RebalanceHandler) -> None:
        self._entrypoint = entrypoint

    async def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        await self._entrypoint.revoked(revoked, commit=True)

    async def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        self._entrypoint.assigned(assigned)

    async def on_partitions_lost(self, lost: Iterable[Any]) -> None:
        await self._entrypoint.revoked(lost, commit=False)


def consume(topics: Iterable[str], group_id: str, *,
            entrypoint: type[KafkaConsumerEntrypoint] = KafkaConsumerEntrypoint,
            **options: Any) -> Callable[[Handler], Handler]:  # noqa: ANN401
    """Make a service method the handler of ``topics`` for consumer group ``group_id``.

    Options (keywords of KafkaConsumerEntrypoint): ``consumer`` (name for dedupe and the dead-letter topic,
    default the group id), ``attempts`` (3), ``backoff_seconds`` (0.5, doubled per retry),
    ``commit_interval_seconds`` (0.5), ``revoke_grace_seconds`` (5.0), ``max_buffered`` records.
    ``entrypoint`` is a subclass to use instead (e.g. one adding metrics or, in tests, a fault hook).
    """
    decorate: Callable[[Handler], Handler] = entrypoint.decorator(topics=list(topics), group_id=group_id, **options)
    return decorate
