"""Batch-shaped SQL for the ledger's writes: one statement per table per batch, and one look-up per batch.

The worker appends up to 500 leaves per transaction (docs/adr/0012-audit-ledger.md); an executemany of
SQLAlchemy dicts costs one statement a row on PostgreSQL (psycopg pipelines them, but the server still
parses, plans and executes each) and most of its time in SQLAlchemy's per-row parameter processing on
SQLite. Here rows are plain tuples in the table's column order:

- PostgreSQL with psycopg 3: ``INSERT INTO t (cols) SELECT * FROM unnest(%b::type[], ...)``: one statement
  whatever the number of rows, one array a column, sent in binary (``%b``: text arrays cost psycopg a regex
  escape a value). Close to COPY's rate, and a plain INSERT: the same unique constraints, the same errors,
  the same ``before_cursor_execute`` events (tests/integration/test_audit_tree_store.py's race uses them);
- SQLite: the driver's own executemany of one prepared ``INSERT ... VALUES (?, ...)`` (one statement
  compiled once, rows stepped in C);
- anything else: SQLAlchemy's insert with dicts.

Both go through ``Connection.exec_driver_sql`` in the caller's Session, so they run in its transaction and a
unique violation surfaces as ``sqlalchemy.exc.IntegrityError`` as before.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session


@functools.lru_cache(maxsize=64)
def _postgres_insert(dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...]) -> str:
    arrays = ", ".join(f"%b::{table.c[name].type.compile(dialect=dialect)}[]" for name in columns)
    return f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"  # noqa: S608 -- our names


@functools.lru_cache(maxsize=64)
def _sqlite_insert(table: sa.Table, columns: tuple[str, ...]) -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 -- our names


def insert_rows(session: Session, table: sa.Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``) into ``table`` in as few statements as the database
    allows, in the session's transaction. A unique violation raises ``sqlalchemy.exc.IntegrityError``."""
    if not rows:
        return
    connection = session.connection()
    names = tuple(columns)
    dialect = connection.dialect.name
    if dialect == "postgresql" and connection.dialect.driver == "psycopg":
        arrays = tuple(list(column) for column in zip(*rows, strict=True))
        connection.exec_driver_sql(_postgres_insert(connection.dialect, table, names), arrays)
    elif dialect == "sqlite":
        connection.exec_driver_sql(_sqlite_insert(table, names), list(rows))
    else:
        session.execute(sa.insert(table), [dict(zip(names, row, strict=True)) for row in rows])


def is_in(session: Session, column: sa.Column[Any], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """``column IN values`` as one bound parameter on PostgreSQL (``= ANY(array)``: one statement text and
    plan whatever the number of values), an expanding ``IN (...)`` elsewhere (keep ``values`` to a few hundred)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(list(values))
