"""The relay's queries on the outbox: the next page of events to publish, and marking them published.

The trace context a record carries in its Kafka headers is read back from the envelope's cleartext header,
where the store sealed it, so the outbox stores nothing twice. Only the two trace fields are read and
checked (about 3 us a record); the full ``parse_envelope`` + ``EventHeader.decode`` took about 19 us, some
15% of the relay's time, to re-validate a header the store validated when it sealed it. The relay never
needs the rest: it moves the envelope's bytes unchanged, and consumers verify them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from google.protobuf.message import DecodeError
from sqlalchemy.orm import Session

from services.core.envelope.format import FORMAT_VERSION
from services.core.envelope.header import TRACEPARENT_PATTERN, TRACESTATE_PATTERN
from services.core.eventstore.schema import events, outbox
from services.core.generated.referralnet.envelope.v1 import envelope_pb2

_LOG = logging.getLogger(__name__)
_IDS_PER_STATEMENT = 500  # well under SQLite's and PostgreSQL's bound-parameter limits


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One event waiting to be published: where to (topic, key = stream id) and what (the sealed envelope)."""

    outbox_id: int
    topic: str
    stream_id: str
    stream_sequence: int
    event_id: str
    event_type: str
    envelope: bytes
    traceparent: str
    tracestate: str


def pending(session: Session, limit: int) -> list[OutboxRecord]:
    """Up to ``limit`` unpublished events, oldest outbox id first (a stream's events are in sequence order)."""
    query = (
        sa.select(outbox.c.id, outbox.c.topic, events.c.stream_id, events.c.stream_sequence, events.c.event_id,
                  events.c.event_type, events.c.envelope)
        .join(events, events.c.position == outbox.c.event_position)
        .where(outbox.c.published_at_us.is_(None))
        .order_by(outbox.c.id)
        .limit(limit)
    )
    return [_record(row) for row in session.execute(query)]


def mark_published(session: Session, ids: Sequence[int], at_us: int) -> int:
    """Mark the outbox rows ``ids`` published at ``at_us``; returns how many were still unpublished."""
    marked = 0
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        chunk = list(ids[start:start + _IDS_PER_STATEMENT])
        result = session.execute(
            sa.update(outbox).where(outbox.c.id.in_(chunk), outbox.c.published_at_us.is_(None))
            .values(published_at_us=at_us)
        )
        marked += result.rowcount  # type: ignore[attr-defined]
    return marked


def pending_count(session: Session) -> int:
    """How many outbox rows are not yet published (the relay's lag)."""
    query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.published_at_us.is_(None))
    return int(session.execute(query).scalar_one())


def _record(row: Sequence[Any]) -> OutboxRecord:
    outbox_id, topic, stream_id, sequence, event_id, event_type, stored = row
    envelope = bytes(stored)  # a driver may hand back a memoryview
    traceparent, tracestate = _trace_context(outbox_id, envelope)
    return OutboxRecord(outbox_id=outbox_id, topic=topic, stream_id=stream_id, stream_sequence=sequence,
                        event_id=event_id, event_type=event_type, envelope=envelope, traceparent=traceparent,
                        tracestate=tracestate)


def _trace_context(outbox_id: int, envelope: bytes) -> tuple[str, str]:
    """The envelope's (traceparent, tracestate); none, and a warning, if they cannot be read or are not W3C.

    The envelope is published all the same: consumers verify it and send it to their DLQ, where audit
    counts it. Holding it back here would block its stream and hide the fault.
    """
    found = _trace_fields(envelope)
    if found is None:
        _LOG.warning("outbox row %d: no readable trace context in its envelope header, published without one",
                     outbox_id)
        return "", ""
    return found


def _trace_fields(envelope: bytes) -> tuple[str, str] | None:
    try:
        header = envelope_pb2.EnvelopeHeader.FromString(envelope_pb2.Envelope.FromString(envelope).header)
    except DecodeError:
        return None
    traceparent, tracestate = header.trace.traceparent, header.trace.tracestate
    if header.format_version != FORMAT_VERSION or not TRACESTATE_PATTERN.fullmatch(tracestate):
        return None
    if traceparent and not TRACEPARENT_PATTERN.fullmatch(traceparent):
        return None
    return traceparent, tracestate
