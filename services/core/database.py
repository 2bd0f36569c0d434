"""Creating a service's SQLAlchemy engine the same way everywhere (workers, edges, relay, tools).

SQLite needs per-connection settings to behave like the PostgreSQL it stands in for: foreign keys are
off unless asked for, a writer waits for the lock instead of failing at once, and WAL lets readers and
one writer work side by side. ``postgres://`` URLs (as hosting platforms hand them out) are accepted.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import sqlalchemy as sa

SQLITE_BUSY_TIMEOUT_MS = 5000


def normalize_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` become ``postgresql+psycopg://`` (the driver we ship); trimmed."""
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def create_engine(url: str, **options: Any) -> sa.Engine:  # noqa: ANN401 -- passed through to SQLAlchemy
    """An engine for ``url``; parameters are hidden from error messages (they may be personal data)."""
    engine = sa.create_engine(normalize_url(url), hide_parameters=True, **options)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: Any, _record: object) -> None:  # noqa: ANN401 -- a DB-API connection
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    _switch_to_wal(cursor)
    cursor.close()


def _switch_to_wal(cursor: Any) -> None:  # noqa: ANN401 -- a DB-API cursor
    """``PRAGMA journal_mode = WAL``, waiting out another connection's lock for up to the busy timeout.

    SQLite may answer this pragma "database is locked" at once, without calling the busy handler, while
    another process holds a lock on a file that is not in WAL mode yet (seen when four processes migrated
    one new file together on a loaded machine), so the wait the busy timeout promises is done here.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)
        else:
            return
