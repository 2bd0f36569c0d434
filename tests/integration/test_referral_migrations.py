"""Referral's Alembic branch creates exactly the tables referral's code defines, beside the core ones, on both backends.

What is real: SQLite files and PostgreSQL (a schema per test). Alembic's autogenerate comparison between the
migrated database and the MetaData must be empty; a planted drift shows that it would notice.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command

from services.core.migrations import CORE_METADATA, alembic_config, current, drift
from services.referral.adapters.database import migrate
from services.referral.adapters.tables import METADATA
from services.referral.migrations import MIGRATIONS
from tests.integration.database_backends import BACKENDS, fresh_engine

pytestmark = pytest.mark.integration

REFERRAL_METADATA = (*CORE_METADATA, METADATA)
REFERRAL_TABLES = {table.name for table in METADATA.tables.values()}
CORE_TABLES = {"events", "outbox", "processed_events", "keyvault_subjects", "keyvault_data_keys"}


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    with fresh_engine(request, request.param) as made:
        assert made.dialect.name == request.param
        yield made


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_the_referral_branch_matches_the_code_and_is_idempotent(engine):
    migrate(engine)

    assert tables(engine) == CORE_TABLES | REFERRAL_TABLES | {"alembic_version"}
    assert {"referrals", "needs", "handoffs", "capacity", "referral_consents"} == REFERRAL_TABLES
    assert current(engine) == ("referral_0001",)  # core_0001 is its ancestor (depends_on)
    assert drift(engine, REFERRAL_METADATA) == []
    indexes = {index["name"] for index in sa.inspect(engine).get_indexes("handoffs")}
    assert {"ix_handoffs_inbox", "ix_handoffs_expiry"} <= indexes
    migrate(engine)
    assert current(engine) == ("referral_0001",) and drift(engine, REFERRAL_METADATA) == []


def test_the_comparison_notices_a_referral_table_that_drifted(engine):
    migrate(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_handoffs_expiry")
        conn.exec_driver_sql("ALTER TABLE capacity ADD COLUMN stray INTEGER")

    found = {(diff[0], diff[1].name if diff[0] == "add_index" else diff[3].name)
             for diff in drift(engine, REFERRAL_METADATA)}
    assert found == {("add_index", "ix_handoffs_expiry"), ("remove_column", "stray")}


def test_downgrading_the_referral_branch_leaves_the_core_tables(engine):
    migrate(engine)
    with engine.connect() as conn:
        conn.begin()
        command.downgrade(alembic_config(conn, version_locations=[MIGRATIONS]), "referral@base")
        conn.commit()

    assert tables(engine) == CORE_TABLES | {"alembic_version"}
    assert current(engine) == ("core_0001",)
    migrate(engine)
    assert drift(engine, REFERRAL_METADATA) == []
