"""Appending sealed events to streams with optimistic concurrency, and reading streams back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.core.envelope import EventHeader, Sealer, SectionKind, new_event_id, now_micros
from services.core.eventstore.errors import ConcurrencyError
from services.core.eventstore.schema import events, outbox
from services.core.eventstore.transaction import record_append, translate_integrity_error
from services.core.keyvault.keys import DataKey
from services.core.telemetry.propagation import current_trace_context


@dataclass(frozen=True)
class NewEvent:
    """An event to append: its type, payload schema version and the sections to seal (key, plaintext)."""

    event_type: str
    schema_version: int
    sections: Mapping[SectionKind, tuple[DataKey, bytes]]
    event_id: str = field(default_factory=new_event_id)
    occurred_at_unix_micros: int = field(default_factory=now_micros)


@dataclass(frozen=True)
class StoredEvent:
    """An event as the store holds it: position in the store, stream coordinates, the sealed envelope."""

    position: int
    stream_id: str
    stream_sequence: int
    event_id: str
    event_type: str
    schema_version: int
    occurred_at_us: int
    envelope: bytes
    canonical_hash: bytes


class EventStore:
    """A service's event store: every append seals the events and queues them in the outbox, atomically.

    The caller owns the transaction (a unit of work): ``append`` only adds to the given session, so the
    events, the outbox rows and the caller's own changes commit or roll back together.
    """

    def __init__(self, sealer: Sealer, producer_org: str, producer_service: str, signing_key_id: str,
                 topic: str) -> None:
        self._sealer = sealer
        self._producer_org = producer_org
        self._producer_service = producer_service
        self._signing_key_id = signing_key_id
        self._topic = topic

    @property
    def topic(self) -> str:
        """The Kafka topic this store's outbox publishes to."""
        return self._topic

    def version(self, session: Session, stream_id: str) -> int:
        """The stream's current version: its last sequence number, 0 for a stream with no events."""
        query = sa.select(sa.func.max(events.c.stream_sequence)).where(events.c.stream_id == stream_id)
        return int(session.execute(query).scalar_one_or_none() or 0)

    def append(self, session: Session, stream_id: str, expected_version: int,
               new_events: Sequence[NewEvent]) -> list[StoredEvent]:
        """Seal ``new_events`` as the next sequences of ``stream_id`` and queue them for publishing.

        ConcurrencyError when the stream is not at ``expected_version``: checked first, and guarded by the
        unique stream + sequence index when two writers race past the check (on PostgreSQL the loser's INSERT
        waits for the winner's transaction, then fails). DuplicateEventError when an event id is already
        stored. Either way the session's transaction must be rolled back; :func:`unit_of_work` does that and
        also translates a violation that surfaces only at commit.
        """
        actual = self.version(session, stream_id)
        if actual != expected_version:
            raise ConcurrencyError(stream_id, expected_version, actual)
        record_append(session, stream_id, expected_version)
        traceparent, tracestate = current_trace_context()
        stored = [self._seal(stream_id, expected_version + index + 1, event, traceparent, tracestate)
                  for index, event in enumerate(new_events)]
        now = now_micros()
        appended = []
        for event in stored:
            try:
                position = session.execute(sa.insert(events).values(
                    stream_id=event.stream_id, stream_sequence=event.stream_sequence, event_id=event.event_id,
                    event_type=event.event_type, schema_version=event.schema_version,
                    occurred_at_us=event.occurred_at_us, envelope=event.envelope,
                    canonical_hash=event.canonical_hash,
                ).returning(events.c.position)).scalar_one()
            except IntegrityError as error:
                translated = translate_integrity_error(error, {stream_id: expected_version}, event.event_id)
                if translated is None:
                    raise
                raise translated from None
            session.execute(sa.insert(outbox).values(event_position=position, topic=self._topic,
                                                     created_at_us=now))
            appended.append(replace(event, position=position))
        return appended

    def load(self, session: Session, stream_id: str, after_sequence: int = 0) -> list[StoredEvent]:
        """The stream's events in sequence order (sealed: verify and open them to read payloads)."""
        query = (sa.select(events).where(events.c.stream_id == stream_id,
                                          events.c.stream_sequence > after_sequence)
                 .order_by(events.c.stream_sequence))
        return [StoredEvent(**row._mapping) for row in session.execute(query)]

    def _seal(self, stream_id: str, sequence: int, event: NewEvent, traceparent: str,
              tracestate: str) -> StoredEvent:
        header = EventHeader(
            event_id=event.event_id, event_type=event.event_type, schema_version=event.schema_version,
            stream_id=stream_id, stream_sequence=sequence, occurred_at_unix_micros=event.occurred_at_unix_micros,
            producer_org=self._producer_org, producer_service=self._producer_service,
            signing_key_id=self._signing_key_id, traceparent=traceparent, tracestate=tracestate,
        )
        sealed = self._sealer.seal_event(header, event.sections)
        return StoredEvent(position=0, stream_id=stream_id, stream_sequence=sequence, event_id=event.event_id,
                           event_type=event.event_type, schema_version=event.schema_version,
                           occurred_at_us=event.occurred_at_unix_micros, envelope=sealed.wire,
                           canonical_hash=sealed.canonical_hash)
