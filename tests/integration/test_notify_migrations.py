"""Notify's Alembic branch creates exactly the tables notify's code defines, beside the core ones, on both backends.

What is real: SQLite files and PostgreSQL (a schema per test). Alembic's autogenerate comparison between the
migrated database and the MetaData must be empty; a planted drift shows that it would notice.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command

from services.core.migrations import CORE_METADATA, alembic_config, current, drift
from services.notify.adapters.database import migrate
from services.notify.adapters.tables import METADATA
from services.notify.migrations import MIGRATIONS
from tests.integration.database_backends import BACKENDS, fresh_engine

pytestmark = pytest.mark.integration

NOTIFY_METADATA = (*CORE_METADATA, METADATA)
NOTIFY_TABLES = {table.name for table in METADATA.tables.values()}
CORE_TABLES = {"events", "outbox", "processed_events", "keyvault_subjects", "keyvault_data_keys"}


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    with fresh_engine(request, request.param) as made:
        assert made.dialect.name == request.param
        yield made


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_the_notify_branch_matches_the_code_and_is_idempotent(engine):
    migrate(engine)

    assert tables(engine) == CORE_TABLES | NOTIFY_TABLES | {"alembic_version"}
    assert {"notify_consents", "notify_handoffs", "deliveries", "delivery_attempts"} == NOTIFY_TABLES
    assert current(engine) == ("notify_0001",)  # core_0001 is its ancestor (depends_on)
    assert drift(engine, NOTIFY_METADATA) == []
    constraints = sa.inspect(engine).get_unique_constraints("deliveries")
    unique = {tuple(constraint["column_names"]) for constraint in constraints}
    assert ("notice_key", "channel", "endpoint") in unique  # the "one notice per event and endpoint" rule
    indexes = {index["name"] for index in sa.inspect(engine).get_indexes("deliveries")}
    assert {"ix_deliveries_due", "ix_deliveries_org_id"} <= indexes
    migrate(engine)
    assert current(engine) == ("notify_0001",) and drift(engine, NOTIFY_METADATA) == []


def test_the_comparison_notices_a_notify_table_that_drifted(engine):
    migrate(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_deliveries_due")
        conn.exec_driver_sql("ALTER TABLE notify_handoffs ADD COLUMN stray INTEGER")

    found = {(diff[0], diff[1].name if diff[0] == "add_index" else diff[3].name)
             for diff in drift(engine, NOTIFY_METADATA)}
    assert found == {("add_index", "ix_deliveries_due"), ("remove_column", "stray")}


def test_downgrading_the_notify_branch_leaves_the_core_tables(engine):
    migrate(engine)
    with engine.connect() as conn:
        conn.begin()
        command.downgrade(alembic_config(conn, version_locations=[MIGRATIONS]), "notify@base")
        conn.commit()

    assert tables(engine) == CORE_TABLES | {"alembic_version"}
    assert current(engine) == ("core_0001",)
    migrate(engine)
    assert drift(engine, NOTIFY_METADATA) == []
