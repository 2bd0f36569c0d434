"""What a Kafka handler receives (:class:`ConsumedEvent`) and the dedupe claim in its transaction.

The claim is the first statement of the handler's transaction: one ``processed_events`` row per
consumer and event id, inserted with ON CONFLICT DO NOTHING. When the row is already there the event
was applied before (a redelivery after a crash or a rebalance) and the handler is not called at all;
when another transaction holds an uncommitted claim, PostgreSQL makes this one wait for its outcome,
so two workers racing on one event still apply it once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.core.envelope import EventHeader, Opener, SectionKind, VerifiedEnvelope, now_micros
from services.core.eventstore.schema import processed_events
from services.core.keyvault.release import DataKeySource


@dataclass(frozen=True)
class ConsumedEvent:
    """A verified event as a handler gets it: the envelope, where it was read, and a way to open it."""

    envelope: VerifiedEnvelope
    topic: str
    partition: int
    offset: int
    consumer: str
    attempt: int = 1
    traceparent: str = ""
    tracestate: str = ""
    opener: Opener = field(default_factory=Opener, repr=False, compare=False)

    @property
    def header(self) -> EventHeader:
        """The verified cleartext header (event id, type, stream and sequence, producer...)."""
        return self.envelope.header

    @property
    def event_id(self) -> str:
        """The event's id (what dedupe keys on)."""
        return self.envelope.header.event_id

    def open(self, kind: SectionKind, keys: DataKeySource) -> bytes:
        """The plaintext of one section, with its data key looked up in ``keys`` (a vault, released keys).

        Raises the precise EnvelopeError (unknown_key, shredded_subject, tampered_section...); a handler
        that lets it propagate sends the record to the dead-letter topic with that reason.
        """
        section = self.envelope.section(kind)
        return self.opener.open(self.envelope, kind, keys.key(section.key_id))


def claim(session: Session, event: ConsumedEvent) -> bool:
    """Insert the dedupe row in ``session``'s transaction: True if this event is new for its consumer."""
    values = {"consumer": event.consumer, "event_id": event.event_id, "topic": event.topic,
              "partition": event.partition, "offset": event.offset, "processed_at_us": now_micros()}
    statement = _CLAIMS.get(session.get_bind().dialect.name)
    if statement is None:
        msg = "dedupe needs INSERT ... ON CONFLICT DO NOTHING: only SQLite and PostgreSQL are supported"
        raise ValueError(msg)
    # RETURNING, not rowcount: psycopg 3 under the ORM session reports rowcount -1 for this statement.
    return session.execute(statement, values).first() is not None


# Built once: constructing the statement per event cost more than running it (SQLAlchemy coercions).
_CLAIMS = {name: insert(processed_events).on_conflict_do_nothing().returning(processed_events.c.event_id)
           for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))}


def consumed_event_of(worker_ctx: Any) -> ConsumedEvent | None:  # noqa: ANN401 -- nameko's WorkerContext
    """The ConsumedEvent a nameko worker was spawned with, or None for a worker of another entrypoint."""
    args = worker_ctx.args
    return args[0] if args and isinstance(args[0], ConsumedEvent) else None


def skip_handler(worker_ctx: Any, error: BaseException | None = None) -> None:  # noqa: ANN401
    """Replace this worker's service method with one that does nothing (or raises ``error``).

    nameko looks the method up on the worker's own service instance after every ``worker_setup``
    (nameko 2.x, ``ServiceContainer._run_worker``); an instance attribute shadows the class's method for
    this one worker only. A test runs it through a real container, so an upgrade that changes this fails.
    """
    def already_processed(*_args: object, **_kwargs: object) -> None:
        if error is not None:
            raise error

    skipped: Callable[..., None] = already_processed
    setattr(worker_ctx.service, worker_ctx.entrypoint.method_name, skipped)
