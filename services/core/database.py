"""Creating a service's SQLAlchemy engine the same way everywhere (workers, edges, relay, tools).

SQLite needs per-connection settings to behave like the PostgreSQL it stands in for: foreign keys are
off unless asked for, a writer waits for the lock instead of failing at once, and WAL lets readers and
one writer work side by side. ``postgres://`` URLs (as hosting platforms hand them out) are accepted.
"""

from __future__ import annotations

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
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()
