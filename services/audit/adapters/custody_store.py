"""Reading and writing the worker's bookkeeping tables (custody_tables) in the caller's Session.

Every write is idempotent where a redelivered batch could repeat it: a rejection or a dead letter is keyed
by where it was read (INSERT ... ON CONFLICT DO NOTHING), a publication by tree size; a subject's leaf is
only ever written for a new leaf. Pending runs are the exception: a batch read twice lists its run twice, which
replays to the same leaves (the second time every record is a duplicate), so it is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.audit.adapters.bulk import insert_rows, is_in
from services.audit.adapters.custody_tables import (
    checkpoint_publications,
    dead_letters,
    pending_runs,
    rejections,
    subject_leaves,
)
from services.audit.adapters.tables import leaves
from services.audit.domain.checkpoint import LeafRun

_CHUNK = 500  # ids per IN (...)


@dataclass(frozen=True)
class Rejection:
    """A source record that did not verify: where it was read, the id it claims, why."""

    source_topic: str
    source_partition: int
    source_offset: int
    event_id: str | None
    reason: str
    detail: str
    recorded_at_us: int


@dataclass(frozen=True)
class DeadLetter:
    """A record read from a worker's dead-letter topic, and what its envelope showed when it verified."""

    source_topic: str
    source_partition: int
    source_offset: int
    event_id: str | None
    verified: bool
    subject_id: str | None
    occurred_at_us: int | None
    reason: str
    error: str
    consumer: str
    original_topic: str
    original_partition: int
    original_offset: int
    recorded_at_us: int


def _insert_new(session: Session, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows``, skipping any whose primary key is there already."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing()
    else:
        msg = f"the audit ledger needs INSERT ... ON CONFLICT DO NOTHING: {dialect} is not supported"
        raise ValueError(msg)
    session.execute(statement, list(rows))


def add_pending_runs(session: Session, runs: Iterable[LeafRun]) -> None:
    """Remember runs appended (in this order) until the next checkpoint takes them."""
    rows = [{"source_topic": run.topic, "source_partition": run.partition, "first_offset": run.first_offset,
             "last_offset": run.last_offset} for run in runs]
    if rows:  # a few rows a batch; an executemany keeps their order in the run ids
        session.execute(sa.insert(pending_runs), rows)


def load_pending_runs(session: Session) -> list[tuple[int, LeafRun]]:
    """Every pending run with its row id, in append order."""
    query = sa.select(pending_runs).order_by(pending_runs.c.run_id)
    return [(int(row.run_id), LeafRun(row.source_topic, row.source_partition, row.first_offset, row.last_offset))
            for row in session.execute(query)]


def clear_pending_runs(session: Session, up_to_run_id: int) -> None:
    """Forget the runs a checkpoint took (row ids up to ``up_to_run_id``)."""
    session.execute(sa.delete(pending_runs).where(pending_runs.c.run_id <= up_to_run_id))


def add_rejections(session: Session, found: Sequence[Rejection]) -> None:
    """Record rejected source records (a record already recorded keeps its first row)."""
    _insert_new(session, rejections, [asdict(rejection) for rejection in found])


def add_dead_letters(session: Session, found: Sequence[DeadLetter]) -> None:
    """Record dead-letter records (a record already recorded keeps its first row)."""
    _insert_new(session, dead_letters, [asdict(letter) for letter in found])


def load_rejections(session: Session) -> list[Rejection]:
    """Every rejection, by where it was read."""
    query = sa.select(rejections).order_by(rejections.c.source_topic, rejections.c.source_partition,
                                           rejections.c.source_offset)
    return [Rejection(**row._mapping) for row in session.execute(query)]


def load_dead_letters(session: Session) -> list[DeadLetter]:
    """Every dead letter, by where it was read."""
    query = sa.select(dead_letters).order_by(dead_letters.c.source_topic, dead_letters.c.source_partition,
                                             dead_letters.c.source_offset)
    return [DeadLetter(**row._mapping) for row in session.execute(query)]


def add_subject_leaves(session: Session, pairs: Sequence[tuple[str, int]]) -> None:
    """Index new leaves by the subject their routing section names (a new leaf's index is in no row yet).

    On PostgreSQL with psycopg the rows go in by COPY, in the session's transaction: measured 160,000 rows/s
    against 31,000 for an executemany (one pipelined INSERT a row); elsewhere as one batch (bulk.insert_rows).
    """
    if not pairs:
        return
    driver = session.connection().connection.driver_connection
    if isinstance(driver, psycopg.Connection):
        with driver.cursor() as cursor, cursor.copy(
                "COPY audit_subject_leaves (subject_id, leaf_index) FROM STDIN") as copy:
            for pair in pairs:
                copy.write_row(pair)
        return
    insert_rows(session, subject_leaves, ("subject_id", "leaf_index"), pairs)


def subject_leaf_indexes(session: Session, subject_id: str, below: int) -> list[int]:
    """The leaves of ``subject_id`` with an index below ``below``, in leaf order."""
    query = (sa.select(subject_leaves.c.leaf_index)
             .where(subject_leaves.c.subject_id == subject_id, subject_leaves.c.leaf_index < below)
             .order_by(subject_leaves.c.leaf_index))
    return [int(index) for index in session.execute(query).scalars()]


def stored_leaf_inputs(session: Session, event_ids: Sequence[str]) -> dict[str, tuple[int, bytes]]:
    """``event id -> (leaf index, leaf input)`` of those of ``event_ids`` that are leaves."""
    found: dict[str, tuple[int, bytes]] = {}
    for start in range(0, len(event_ids), _CHUNK):
        query = (sa.select(leaves.c.event_id, leaves.c.leaf_index, leaves.c.leaf_input)
                 .where(is_in(session, leaves.c.event_id, event_ids[start:start + _CHUNK])))
        for event_id, index, leaf_input in session.execute(query):
            found[event_id] = (int(index), bytes(leaf_input))
    return found


def is_published(session: Session, tree_size: int) -> bool:
    """Whether the checkpoint topic acknowledged the checkpoint of ``tree_size``."""
    query = sa.select(checkpoint_publications.c.tree_size).where(checkpoint_publications.c.tree_size == tree_size)
    return session.execute(query).first() is not None


def mark_published(session: Session, tree_size: int, at_us: int) -> None:
    """Record that the checkpoint of ``tree_size`` was published (idempotent)."""
    _insert_new(session, checkpoint_publications, [{"tree_size": tree_size, "published_at_us": at_us}])
