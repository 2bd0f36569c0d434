"""Alembic migrations of the shared core tables: the event store's and the key vault's.

Configured in code (no alembic.ini): :func:`upgrade` brings a database to the latest revision and is what a
service calls at start-up (``python -m services.core.migrations upgrade --database-url URL`` does the same).
The core revisions form the ``core`` branch in ``versions/``; a service adds its own tables as its own branch
in its own folder and passes that folder in ``version_locations`` (docs/adr/0007-migrations.md).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from services.core.database import create_engine
from services.core.eventstore.schema import METADATA as EVENTSTORE_METADATA
from services.core.keyvault.store import METADATA as KEYVAULT_METADATA

SCRIPT_LOCATION = Path(__file__).resolve().parent
CORE_VERSIONS = SCRIPT_LOCATION / "versions"
CORE_BRANCH = "core"
CORE_METADATA: tuple[sa.MetaData, ...] = (EVENTSTORE_METADATA, KEYVAULT_METADATA)

# pg_advisory_xact_lock key ("rn-migr" in ASCII): instances starting together migrate one after the other.
_POSTGRES_LOCK_KEY = 0x726E2D6D696772

_IN_PROCESS = threading.Lock()

PathLike = str | os.PathLike[str]


class MigrationError(Exception):
    """The migrations cannot run as asked."""


def upgrade(url_or_engine: str | sa.Engine, revision: str = "heads", *,
            version_locations: Sequence[PathLike] = ()) -> None:
    """Migrate the database to ``revision`` (every branch's head by default); a no-op when it is there already.

    One transaction holding a lock, so concurrent callers (several instances starting at once) run one after
    the other and the later ones find nothing to do: ``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN
    IMMEDIATE`` on SQLite (whose DDL is transactional too). Within one process, calls also take turns:
    Alembic keeps the running migration in module globals (``alembic.op``, ``alembic.context``).
    ``version_locations`` adds a service's own revision folders to the core one.
    """
    with _IN_PROCESS, _connection(url_or_engine) as connection:
        connection.begin()
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_LOCK_KEY})
        elif connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        command.upgrade(alembic_config(connection, version_locations=version_locations), revision)
        connection.commit()


def current(url_or_engine: str | sa.Engine) -> tuple[str, ...]:
    """The revisions the database is at (one per branch), sorted; empty before the first upgrade."""
    with _connection(url_or_engine) as connection:
        return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))


def drift(url_or_engine: str | sa.Engine, metadata: Iterable[sa.MetaData] = CORE_METADATA) -> list[Any]:
    """Alembic's autogenerate differences between the database and ``metadata``: empty when they agree."""
    with _connection(url_or_engine) as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, target_metadata(metadata)))


def target_metadata(metadata: Iterable[sa.MetaData] = CORE_METADATA) -> sa.MetaData:
    """One MetaData holding copies of every table in ``metadata`` (what Alembic compares the database with)."""
    combined = sa.MetaData()
    for each in metadata:
        for table in each.tables.values():
            if table.key in combined.tables:
                raise MigrationError(f"table {table.key} is defined by two MetaData objects")
            table.to_metadata(combined)
    return combined


def alembic_config(connection: sa.Connection | None = None, *,
                   version_locations: Sequence[PathLike] = ()) -> Config:
    """An Alembic Config for this package (for ``alembic.command``); ``env.py`` runs on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    locations = [str(CORE_VERSIONS), *(str(Path(location).resolve()) for location in version_locations)]
    config.set_main_option("version_locations", os.pathsep.join(locations))
    config.attributes["connection"] = connection
    return config


@contextmanager
def _connection(url_or_engine: str | sa.Engine) -> Iterator[sa.Connection]:
    engine = create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        if engine is not url_or_engine:
            engine.dispose()
