"""Feeding a projection from raw log records: verify, drop duplicates, open sections, apply, count.

:class:`Replayer` holds no connection: it takes records of one partition at a time, in offset order,
from whoever reads them (:func:`services.core.projections.rebuild.rebuild_from_topic` reads Kafka; a
test can hand it a list). What happens to each record:

1. verified (a batch at a time, so ``Verifier.verify_many`` spreads the Ed25519 work over the cores);
   an envelope that fails is **rejected** with the error's reason (``bad_signature``, ``malformed``...);
2. a verified event whose id was already applied is a **duplicate** (dropped and counted) when its
   canonical hash is the same, as when the outbox relay publishes twice; with another hash it is
   **rejected** as ``conflicting_duplicate`` (one id, two different signed events: an insider or a bug);
3. the sections the projection declared are opened with keys from the key source; a key that is
   unknown or shredded, or a section that does not decrypt, **rejects** the event with that reason;
4. the projection applies it; it may refuse with UnusableEvent, counted as **rejected** by its reason.

Rejections carry ids, offsets and reason codes only: never a payload.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from services.core.envelope import EnvelopeError, Opener, SectionKind, UnknownKeyError, VerifiedEnvelope, Verifier
from services.core.keyvault.keys import DataKey
from services.core.projections.base import Projection, UnusableEvent

P = TypeVar("P", bound=Projection)
CONFLICTING_DUPLICATE = "conflicting_duplicate"


class LogRecord(Protocol):
    """What the replayer needs of a log record (kafka-python's ConsumerRecord has it)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def value(self) -> bytes | None: ...


class KeySource(Protocol):
    """Where data keys come from to open sections (KeyVault has this method)."""

    def key(self, key_id: str) -> DataKey:
        """The key named ``key_id``; UnknownKeyError, ShreddedSubjectError (or KeyError) otherwise."""
        ...


@dataclass(frozen=True, slots=True)
class Rejection:
    """One record that was not applied: where it is, why, and its event id when the envelope verified."""

    topic: str
    partition: int
    offset: int
    reason: str
    event_id: str = ""


@dataclass
class ReplayReport:
    """What a replay did. Offsets are keyed by ``(topic, partition)``; counts never include payloads."""

    records_read: int = 0
    applied: int = 0
    duplicates_dropped: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)
    start_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    end_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    elapsed_s: float = 0.0  # wall time of the whole rebuild, connecting included

    @property
    def rejected_total(self) -> int:
        """All rejected records, whatever the reason."""
        return sum(self.rejected.values())


class Replayer(Generic[P]):
    """Feeds one projection from log records; remembers applied event ids (about 100 bytes each)."""

    def __init__(self, projection: P, verifier: Verifier, *, opener: Opener | None = None,
                 keys: KeySource | None = None) -> None:
        if projection.sections and keys is None:
            msg = f"projection {projection.name} opens {sorted(k.name for k in projection.sections)}: give keys"
            raise ValueError(msg)
        self.projection = projection
        self.report = ReplayReport()
        self._verifier = verifier
        self._opener = opener or Opener()
        self._keys = keys
        self._applied: dict[str, bytes] = {}  # event id -> canonical hash

    def feed(self, records: Sequence[LogRecord]) -> None:
        """Verify and apply ``records`` (one partition's, in offset order)."""
        results = self._verifier.verify_many([record.value or b"" for record in records])
        for record, result in zip(records, results, strict=True):
            self.report.records_read += 1
            if isinstance(result, EnvelopeError):
                self._reject(record, result.reason)
            else:
                self._apply(record, result)

    def _apply(self, record: LogRecord, envelope: VerifiedEnvelope) -> None:
        event_id, digest = envelope.header.event_id, envelope.canonical_hash()
        earlier = self._applied.get(event_id)
        if earlier is not None:
            if earlier == digest:
                self.report.duplicates_dropped += 1
            else:
                self._reject(record, CONFLICTING_DUPLICATE, event_id)
            return
        self._applied[event_id] = digest
        try:
            payloads = self._open(envelope)
            self.projection.apply(envelope, payloads)
        except (EnvelopeError, UnusableEvent) as error:
            self._reject(record, error.reason, event_id)
            return
        self.report.applied += 1

    def _open(self, envelope: VerifiedEnvelope) -> dict[SectionKind, bytes]:
        payloads: dict[SectionKind, bytes] = {}
        if self._keys is None:
            return payloads
        carried = {section.kind: section.key_id for section in envelope.sections}
        for kind in sorted(self.projection.sections):
            if kind not in carried:
                continue
            try:
                key = self._keys.key(carried[kind])
            except KeyError:
                msg = f"data key {carried[kind]} is not in the key source"
                raise UnknownKeyError(msg) from None
            payloads[kind] = self._opener.open(envelope, kind, key)
        return payloads

    def _reject(self, record: LogRecord, reason: str, event_id: str = "") -> None:
        self.report.rejected[reason] += 1
        self.report.rejections.append(Rejection(record.topic, record.partition, record.offset, reason, event_id))
