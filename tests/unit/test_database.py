"""The shared engine factory makes SQLite enforce what PostgreSQL enforces."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from services.core.database import create_engine, normalize_url
from services.core.eventstore.schema import outbox
from services.core.migrations import upgrade


def test_sqlite_enforces_foreign_keys_and_uses_wal(tmp_path):
    engine = create_engine(f"sqlite+pysqlite:///{tmp_path / 'service.db'}")
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(sa.insert(outbox).values(event_position=999, topic="t", created_at_us=1))
    engine.dispose()


@pytest.mark.parametrize(("given", "expected"), [
    ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
    ("postgresql://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
    ("postgresql+psycopg://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
    ("sqlite+pysqlite:///x.db", "sqlite+pysqlite:///x.db"),
    (" postgres://u@h/d\n", "postgresql+psycopg://u@h/d"),
])
def test_urls_are_normalised_to_the_shipped_driver(given, expected):
    assert normalize_url(given) == expected
