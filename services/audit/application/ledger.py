"""Writing the ledger: a batch of source records in one transaction, then signed checkpoints (docs/adr/0012).

``ingest`` takes one batch as the worker polled it (records in the order they are to be appended) and,
in ONE transaction:

- appends every verified record of a source topic as a leaf, in batch order, once per event id (a record
  whose event id is a leaf already, or repeats one earlier in the batch, is a duplicate and not a leaf;
  if its canonical hash differs from the leaf's, it is also recorded as a rejection, reason
  ``duplicate_event_id``: two different envelopes under one event id);
- records every source record that did not verify (reason = the envelope error's, ``null_value`` for a
  record without a value), named by the event id it claims, else by its position;
- records every record of a dead-letter topic with its ``dlq-*`` headers (never a leaf: its envelope is
  one read before, or one that did not verify);
- indexes the new leaves by the subject their routing section names (opened with the network routing
  key; an event whose routing section cannot be read is a leaf all the same, just not indexed);
- keeps the batch's runs of source records ``(topic, partition, first, last)`` in append order, pending
  for the next checkpoint. Replaying those runs with the same rules gives the same leaves.

The caller commits the batch's Kafka offsets only after ``ingest`` returned.

``checkpoint`` signs the tree's size and root with the pending runs when enough leaves are pending, stores
the checkpoint and drops the runs it took, in one transaction. ``publish_pending`` then hands every stored
checkpoint the checkpoint topic has not acknowledged to a publisher, oldest first, and records each
acknowledgement: a checkpoint stored but not published (a crash, Kafka down) goes out on the next call.

One writer (ADR 12): ``lock`` keeps a batch and a checkpoint of this process from interleaving; a second
worker process on the same database is refused by the tree's keys (TreeConflictError).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.audit.adapters import custody_store as store
from services.audit.adapters.source import read_source_event
from services.audit.adapters.tree_store import LeafRecord, SqlTree
from services.audit.application.records import NULL_VALUE, SourceRecord, claimed_event_id, dead_letter_facts
from services.audit.domain.checkpoint import Checkpoint, CheckpointSigner, LeafRun
from services.core.envelope import EnvelopeError, Opener, VerifiedEnvelope, now_micros
from services.core.events import UnprocessableEvent
from services.core.keyvault.routing_keys import NetworkRoutingKeys

log = logging.getLogger(__name__)

DUPLICATE_EVENT_ID = "duplicate_event_id"
MAX_DETAIL = 512

VerifyMany = Callable[[Sequence[bytes]], list[VerifiedEnvelope | EnvelopeError]]
"""Verifies a batch of envelopes (``Verifier.verify_many``, or the worker's thread-pool version)."""


class CheckpointPublisher(Protocol):
    """Sends a checkpoint to the checkpoint topic; returns once the broker acknowledged it, raises otherwise."""

    def publish(self, checkpoint: Checkpoint) -> None:
        """Publish one checkpoint (acks=all)."""


@dataclass(frozen=True)
class LedgerTopics:
    """Which topics carry events (their verified records become leaves) and which are dead-letter topics."""

    sources: frozenset[str]
    dead_letters: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.sources & self.dead_letters:
            raise ValueError(f"topics both source and dead-letter: {sorted(self.sources & self.dead_letters)}")

    @property
    def all(self) -> tuple[str, ...]:
        """Every topic to subscribe to, sorted."""
        return tuple(sorted(self.sources | self.dead_letters))


@dataclass
class IngestOutcome:
    """What one batch did."""

    appended: int = 0
    duplicates: int = 0
    rejected: int = 0
    dead_letters: int = 0
    runs: list[LeafRun] = field(default_factory=list)
    tree_size: int = 0


@dataclass
class _Leaf:
    record: LeafRecord
    subject_id: str | None


@dataclass
class _Batch:
    leaves: list[_Leaf] = field(default_factory=list)
    duplicates_in_batch: list[LeafRecord] = field(default_factory=list)
    rejections: list[store.Rejection] = field(default_factory=list)
    dead_letters: list[store.DeadLetter] = field(default_factory=list)
    runs: list[LeafRun] = field(default_factory=list)


class LedgerWriter:
    """Appends batches of source records to the ledger and makes its checkpoints (see the module)."""

    def __init__(self, engine: sa.Engine, topics: LedgerTopics, verify_many: VerifyMany,
                 routing_keys: NetworkRoutingKeys, signer: CheckpointSigner, *, tree: SqlTree | None = None,
                 clock: Callable[[], int] = now_micros, lock: contextlib.AbstractContextManager[object] | None = None,
                 ) -> None:
        self._engine = engine
        self._topics = topics
        self._verify_many = verify_many
        self._keys = routing_keys
        self._signer = signer
        self._tree = tree or SqlTree()
        self._clock = clock
        self._lock: contextlib.AbstractContextManager[object] = lock if lock is not None else threading.Lock()
        self._opener = Opener()

    @property
    def topics(self) -> LedgerTopics:
        """The topics this ledger reads."""
        return self._topics

    # -- batches ------------------------------------------------------------------------------------------

    def ingest(self, records: Sequence[SourceRecord]) -> IngestOutcome:
        """Append one batch (see the module docstring); returns what it did once it committed."""
        batch = self._examine(records)
        outcome = IngestOutcome(rejected=len(batch.rejections), dead_letters=len(batch.dead_letters),
                                runs=batch.runs)
        with self._lock, Session(self._engine) as session, session.begin():
            fresh = self._append(session, batch, outcome)
            store.add_subject_leaves(session, fresh)
            store.add_rejections(session, batch.rejections)
            store.add_dead_letters(session, batch.dead_letters)
            store.add_pending_runs(session, batch.runs)
            if not outcome.appended:  # else _append knows it: the new leaves end the tree
                outcome.tree_size = self._tree.size(session)
        return outcome

    def _append(self, session: Session, batch: _Batch, outcome: IngestOutcome) -> list[tuple[str, int]]:
        """Append the batch's leaves; the (subject, index) pairs of the new ones. Fills the outcome's counts."""
        candidates = [leaf.record for leaf in batch.leaves]
        indexes = self._tree.append(session, candidates) if candidates else []
        outcome.appended = len(indexes)
        if indexes:
            outcome.tree_size = indexes[-1] + 1
        outcome.duplicates = len(batch.duplicates_in_batch) + len(candidates) - len(indexes)
        if len(indexes) == len(candidates):
            new = list(zip(batch.leaves, indexes, strict=True))
            earlier_leaves: list[LeafRecord] = []
        else:  # some were leaves already (a batch read again): tell which, and check they are the same envelopes
            stored = store.stored_leaf_inputs(session, [record.event_id for record in candidates])
            first_new = min(indexes, default=self._tree.size(session))
            new = [(leaf, stored[leaf.record.event_id][0]) for leaf in batch.leaves
                   if stored[leaf.record.event_id][0] >= first_new]
            earlier_leaves = [record for record in candidates if stored[record.event_id][0] < first_new]
        conflicting = self._conflicting(session, [*batch.duplicates_in_batch, *earlier_leaves])
        batch.rejections.extend(conflicting)
        outcome.rejected += len(conflicting)
        return [(leaf.subject_id, index) for leaf, index in new if leaf.subject_id]

    def _conflicting(self, session: Session, duplicates: Sequence[LeafRecord]) -> list[store.Rejection]:
        """Duplicates whose envelope is not the leaf's: one event id, two different envelopes."""
        if not duplicates:
            return []
        stored = store.stored_leaf_inputs(session, [record.event_id for record in duplicates])
        now = self._clock()
        found = []
        for record in duplicates:
            leaf = stored.get(record.event_id)
            if leaf is not None and leaf[1] != record.leaf_input:
                detail = (f"event {record.event_id} at {record.topic}[{record.partition}]@{record.offset} is not the "
                          f"envelope of leaf {leaf[0]} with the same event id")
                found.append(store.Rejection(record.topic, record.partition, record.offset, record.event_id,
                                             DUPLICATE_EVENT_ID, detail, now))
        return found

    def _examine(self, records: Sequence[SourceRecord]) -> _Batch:
        """Verify the batch at once, then sort each record into leaves, rejections, dead letters and runs."""
        results = self._verify_many([record.value or b"" for record in records]) if records else []
        batch = _Batch()
        seen: dict[str, LeafRecord] = {}
        now = self._clock()
        spans: list[tuple[str, int, int, int]] = []  # the runs, as plain tuples until the end
        for record, result in zip(records, results, strict=True):
            if record.topic in self._topics.dead_letters:
                batch.dead_letters.append(self._dead_letter(record, result, now))
                continue
            _extend_spans(spans, record)
            if record.value is None or isinstance(result, EnvelopeError):
                batch.rejections.append(_rejection(record, result, now))
                continue
            leaf = _leaf_record(record, result)
            if leaf.event_id in seen:
                batch.duplicates_in_batch.append(leaf)
                continue
            seen[leaf.event_id] = leaf
            batch.leaves.append(_Leaf(leaf, self._subject_of(result)))
        batch.runs = [LeafRun(*span) for span in spans]
        return batch

    def _subject_of(self, envelope: VerifiedEnvelope) -> str | None:
        try:
            message = read_source_event(envelope, self._keys, self._opener)
        except (EnvelopeError, UnprocessableEvent):
            return None
        subject = getattr(message, "subject_id", "")
        return str(subject) if subject else None

    def _dead_letter(self, record: SourceRecord, result: VerifiedEnvelope | EnvelopeError, now: int,
                     ) -> store.DeadLetter:
        facts = dead_letter_facts(record)
        verified = record.value is not None and not isinstance(result, EnvelopeError)
        event_id, subject, occurred = claimed_event_id(record), None, None
        if verified and isinstance(result, VerifiedEnvelope):
            event_id, occurred = result.header.event_id, result.header.occurred_at_unix_micros
            subject = self._subject_of(result)
        return store.DeadLetter(
            source_topic=record.topic, source_partition=record.partition, source_offset=record.offset,
            event_id=event_id, verified=verified, subject_id=subject, occurred_at_us=occurred,
            reason=facts.reason[:64], error=facts.error[:MAX_DETAIL], consumer=facts.consumer[:128],
            original_topic=facts.original_topic[:249], original_partition=facts.original_partition,
            original_offset=facts.original_offset, recorded_at_us=now)

    # -- checkpoints --------------------------------------------------------------------------------------

    def pending_leaves(self) -> int:
        """Leaves appended since the newest checkpoint."""
        with Session(self._engine) as session:
            latest = self._tree.latest_checkpoint(session)
            return self._tree.size(session) - (latest.tree_size if latest else 0)

    def checkpoint(self, minimum_leaves: int = 1) -> Checkpoint | None:
        """Sign, store and return a checkpoint when at least ``minimum_leaves`` (>= 1) leaves are pending."""
        with self._lock, Session(self._engine) as session, session.begin():
            latest = self._tree.latest_checkpoint(session)
            size = self._tree.size(session)
            pending = size - (latest.tree_size if latest else 0)
            if pending < max(1, minimum_leaves):
                return None
            rows = store.load_pending_runs(session)
            runs = merge_runs([run for _, run in rows])
            if not runs:
                log.warning("ledger: %d leaves pending but no run recorded for them; the checkpoint lists none",
                            pending)
            made = self._signer.sign(size, self._tree.root(session, size), self._clock(), latest, runs)
            self._tree.save_checkpoint(session, made)
            if rows:
                store.clear_pending_runs(session, rows[-1][0])
        log.info("ledger: checkpoint of %d leaves (%d new, %d runs)", made.tree_size, pending, len(runs))
        return made

    def unpublished(self) -> list[Checkpoint]:
        """Stored checkpoints the checkpoint topic has not acknowledged, oldest first."""
        chain: list[Checkpoint] = []
        with Session(self._engine) as session:
            current = self._tree.latest_checkpoint(session)
            while current is not None and not store.is_published(session, current.tree_size):
                chain.append(current)
                previous = current.previous_tree_size
                current = self._tree.checkpoint_of_size(session, previous) if previous > 0 else None
        return chain[::-1]

    def mark_published(self, checkpoint: Checkpoint) -> None:
        """Record that the checkpoint topic acknowledged ``checkpoint``."""
        with Session(self._engine) as session, session.begin():
            store.mark_published(session, checkpoint.tree_size, self._clock())

    def publish_pending(self, publisher: CheckpointPublisher) -> int:
        """Publish every unpublished checkpoint, oldest first; how many went out.

        Stops at the first failure (raising it): the rest stay unpublished for the next call, in order.
        """
        published = 0
        for checkpoint in self.unpublished():
            publisher.publish(checkpoint)
            self.mark_published(checkpoint)
            published += 1
        return published


def merge_runs(runs: Sequence[LeafRun]) -> list[LeafRun]:
    """Runs in order, consecutive runs of one partition joined (the records between them were in neither:
    a partition's records are read in order, so nothing of it came in between)."""
    merged: list[LeafRun] = []
    for run in runs:
        last = merged[-1] if merged else None
        if (last is not None and (last.topic, last.partition) == (run.topic, run.partition)
                and run.first_offset > last.last_offset):
            merged[-1] = LeafRun(last.topic, last.partition, last.first_offset, run.last_offset)
        else:
            merged.append(run)
    return merged


def _extend_spans(spans: list[tuple[str, int, int, int]], record: SourceRecord) -> None:
    """Extend the last run ``(topic, partition, first, last)`` with ``record`` when it continues it, else start one."""
    if spans:
        topic, partition, first, last = spans[-1]
        if topic == record.topic and partition == record.partition and record.offset > last:
            spans[-1] = (topic, partition, first, record.offset)
            return
    spans.append((record.topic, record.partition, record.offset, record.offset))


def _rejection(record: SourceRecord, result: VerifiedEnvelope | EnvelopeError, now: int) -> store.Rejection:
    if record.value is None or not isinstance(result, EnvelopeError):
        reason, error = NULL_VALUE, "the record has no value"
    else:
        reason, error = result.reason, str(result)
    event_id = claimed_event_id(record)
    detail = f"{record.position}: {error}"[:MAX_DETAIL]
    return store.Rejection(record.topic, record.partition, record.offset,
                           event_id[:128] if event_id else None, reason, detail, now)


def _leaf_record(record: SourceRecord, envelope: VerifiedEnvelope) -> LeafRecord:
    header = envelope.header
    return LeafRecord(event_id=header.event_id, leaf_input=envelope.canonical_hash(), topic=record.topic,
                      partition=record.partition, offset=record.offset, event_type=header.event_type,
                      stream_id=header.stream_id, stream_sequence=header.stream_sequence,
                      producer_org=header.producer_org, occurred_at_us=header.occurred_at_unix_micros,
                      envelope=record.value or b"")
