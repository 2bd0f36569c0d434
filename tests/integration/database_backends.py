"""Fresh databases on each backend, for tests that must behave the same on SQLite and on PostgreSQL.

PostgreSQL: a schema of its own per test in the session's server (``search_path`` points every connection of
the engine at it), dropped with everything in it afterwards, so tests are independent even on a shared
DATABASE_URL server. SQLite: a file in the test's own directory (conftest's ``sqlite_url``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

URL_FIXTURES = {"postgresql": "postgres_url", "sqlite": "sqlite_url"}  # dialect name -> conftest fixture
BACKENDS = sorted(URL_FIXTURES)


@contextmanager
def fresh_engine(request: pytest.FixtureRequest, dialect: str) -> Iterator[sa.Engine]:
    """An engine on an empty database (SQLite file, or PostgreSQL schema) of the given dialect."""
    url: str = request.getfixturevalue(URL_FIXTURES[dialect])
    if dialect == "sqlite":
        engine = sa.create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(url, poolclass=sa.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        with engine.connect() as conn:  # never silently test the public schema
            assert conn.exec_driver_sql("SELECT current_schema()").scalar_one() == schema
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
