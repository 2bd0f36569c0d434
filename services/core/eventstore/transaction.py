"""Units of work over the event store, and what a unique-index violation in one of them means.

The contract: a command runs in one transaction (``with unit_of_work(engine) as session``) that reads the
stream, appends with the version it read, and writes whatever else it changes; all of it commits at the end
of the block or none of it does. Two commands racing on one stream both pass the version check; the unique
(stream, sequence) index then lets exactly one commit. The loser gets :class:`ConcurrencyError` wherever the
violation surfaces: inside ``append`` (where it surfaces on SQLite and PostgreSQL alike: the index is checked
when the INSERT runs, and on PostgreSQL that INSERT first waits for the other transaction to end), at a
flush, or at commit. A reused event id gives :class:`DuplicateEventError`. Any other IntegrityError is not the
store's and propagates unchanged. After an error the whole transaction is rolled back: reload, decide again,
retry in a new unit of work.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.core.eventstore.errors import ConcurrencyError, DuplicateEventError, EventStoreError
from services.core.eventstore.schema import EVENT_ID_CONSTRAINT, STREAM_SEQUENCE_CONSTRAINT, events

_APPENDS = "referralnet.eventstore.appends"  # session.info key: (transaction, {stream id: expected version})

# SQLite names the columns, not the constraint: "UNIQUE constraint failed: events.stream_id, events.stream_sequence".
_SQLITE_UNIQUE = {
    "UNIQUE constraint failed: " + ", ".join(f"{events.name}.{column.name}" for column in constraint.columns):
        str(constraint.name)
    for constraint in events.constraints if isinstance(constraint, sa.UniqueConstraint)
}


@contextmanager
def unit_of_work(bind: sa.Engine | sessionmaker[Session]) -> Iterator[Session]:
    """A session in a new transaction: committed when the block ends, rolled back if anything raises.

    An IntegrityError of the events table's unique indexes becomes ConcurrencyError or DuplicateEventError,
    whether it is raised inside the block or by the commit.
    """
    session = bind() if isinstance(bind, sessionmaker) else Session(bind)
    try:
        yield session
        session.commit()
    except IntegrityError as error:
        session.rollback()
        translated = translate_integrity_error(error, recorded_appends(session))
        if translated is None:
            raise
        raise translated from None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def record_append(session: Session, stream_id: str, expected_version: int) -> None:
    """Remember, for this session's current transaction, the version an append to ``stream_id`` expected."""
    transaction = session.get_transaction()
    held: tuple[object, dict[str, int]] | None = session.info.get(_APPENDS)
    if held is None or held[0] is not transaction:
        held = (transaction, {})
        session.info[_APPENDS] = held
    held[1].setdefault(stream_id, expected_version)


def recorded_appends(session: Session) -> Mapping[str, int]:
    """The streams appended to in the session's latest transaction, with the version each append expected."""
    held = session.info.get(_APPENDS)
    return {} if held is None else dict(held[1])


def translate_integrity_error(error: IntegrityError, appends: Mapping[str, int],
                              event_id: str | None = None) -> EventStoreError | None:
    """The store's error for ``error``, or None when it is not about the events' unique indexes.

    A stream conflict is translated only when the stream can be named (the one stream appended to, or the
    one in the failed statement's parameters): an error that names the wrong stream would mislead.
    """
    constraint = violated_constraint(error)
    params = error.params if isinstance(error.params, Mapping) else {}
    if constraint == EVENT_ID_CONSTRAINT:
        duplicate = event_id or params.get("event_id")
        return None if duplicate is None else DuplicateEventError(str(duplicate))
    if constraint == STREAM_SEQUENCE_CONSTRAINT:
        named = params.get("stream_id")
        stream_id = str(named) if named is not None else next(iter(appends)) if len(appends) == 1 else None
        if stream_id is not None and stream_id in appends:
            return ConcurrencyError(stream_id, appends[stream_id], None)
    return None


def violated_constraint(error: IntegrityError) -> str | None:
    """The name of the constraint ``error`` violated, as PostgreSQL reports it or as SQLite's message implies."""
    diag = getattr(error.orig, "diag", None)  # psycopg
    name = getattr(diag, "constraint_name", None)
    if isinstance(name, str):
        return name
    return _SQLITE_UNIQUE.get(str(error.orig).strip())
