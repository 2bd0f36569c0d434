"""The same SQLAlchemy 2.x round trip on PostgreSQL and on a SQLite file: both backends must behave alike.

The shape is the event store's: a unique (stream_id, version) constraint is the optimistic-concurrency
check, so a duplicate must raise IntegrityError, roll back its whole transaction and keep what was
committed before.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

pytestmark = pytest.mark.integration

URL_FIXTURES = {"postgresql": "postgres_url", "sqlite": "sqlite_url"}  # dialect name -> conftest fixture


@pytest.fixture(params=sorted(URL_FIXTURES))
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """An engine on each backend in turn (the URL fixtures live in conftest.py)."""
    url: str = request.getfixturevalue(URL_FIXTURES[request.param])
    engine = sa.create_engine(url)
    assert engine.dialect.name == request.param  # never silently test one backend twice
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def events(engine: sa.Engine) -> Iterator[sa.Table]:
    """A table of its own per test (so a shared DATABASE_URL server is fine), dropped afterwards."""
    table = sa.Table(
        f"roundtrip_{uuid.uuid4().hex[:12]}", sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("stream_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("stream_id", "version", name="uq_stream_version"),
    )
    table.create(engine)
    try:
        yield table
    finally:
        table.drop(engine)


def _rows(engine: sa.Engine, table: sa.Table) -> list[tuple[str, int, bytes]]:
    with engine.connect() as conn:
        query = sa.select(table.c.stream_id, table.c.version, table.c.payload).order_by(
            table.c.stream_id, table.c.version)
        return [(r.stream_id, r.version, r.payload) for r in conn.execute(query)]


def _event(stream: str, version: int) -> dict[str, object]:
    payload = f"{stream}:{version}".encode() + b"\x00\xff"  # not valid UTF-8: bytes must stay bytes
    return {"stream_id": stream, "version": version, "payload": payload}


def test_rows_inserted_in_a_transaction_read_back_unchanged(engine, events):
    written = [_event("referral-a", 1), _event("referral-a", 2), _event("referral-b", 1)]
    with engine.begin() as conn:
        conn.execute(sa.insert(events), written)

    assert _rows(engine, events) == [(e["stream_id"], e["version"], e["payload"]) for e in written]


def test_unique_violation_raises_and_keeps_earlier_committed_rows(engine, events):
    with engine.begin() as conn:
        conn.execute(sa.insert(events), [_event("s", 1), _event("s", 2)])
    before = _rows(engine, events)

    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(events), [_event("other", 1)])  # fine on its own...
        conn.execute(sa.insert(events), [_event("s", 2)])  # ...but this one conflicts

    assert _rows(engine, events) == before  # the whole failed transaction is gone, the old rows stay
    with engine.begin() as conn:  # and the connection pool is still usable
        conn.execute(sa.insert(events), [_event("s", 3)])
    assert [v for _, v, _ in _rows(engine, events)] == [1, 2, 3]


def test_rollback_discards_uncommitted_rows(engine, events):
    with engine.connect() as conn:
        conn.execute(sa.insert(events), [_event("s", 1)])
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one() == 1
        conn.rollback()
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one() == 0

    assert _rows(engine, events) == []


def test_savepoint_lets_a_conflict_be_retried_inside_the_outer_transaction(engine, events):
    with engine.begin() as conn:
        conn.execute(sa.insert(events), [_event("s", 1)])
    with engine.begin() as conn:
        conn.execute(sa.insert(events), [_event("t", 1)])
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(sa.insert(events), [_event("s", 1)])
        conn.execute(sa.insert(events), [_event("s", 2)])  # the retry with the next version

    assert [(s, v) for s, v, _ in _rows(engine, events)] == [("s", 1), ("s", 2), ("t", 1)]
