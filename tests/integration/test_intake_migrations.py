"""Intake's Alembic branch creates exactly the tables intake's code defines, beside the core ones, on both backends.

What is real: SQLite files and PostgreSQL (a schema per test). Alembic's autogenerate comparison between the
migrated database and the MetaData must be empty; a planted drift shows that it would notice.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command

from services.core.migrations import alembic_config, current, drift
from services.intake.adapters.database import INTAKE_METADATA, MIGRATIONS_DIR, migrate
from services.intake.adapters.tables import METADATA
from tests.integration.database_backends import BACKENDS, fresh_engine

pytestmark = pytest.mark.integration

INTAKE_TABLES = {table.name for table in METADATA.tables.values()}
CORE_TABLES = {"events", "outbox", "processed_events", "keyvault_subjects", "keyvault_data_keys"}


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    with fresh_engine(request, request.param) as made:
        assert made.dialect.name == request.param
        yield made


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_the_intake_branch_matches_the_code_and_is_idempotent(engine):
    migrate(engine)

    assert tables(engine) == CORE_TABLES | INTAKE_TABLES | {"alembic_version"}
    assert {"intake_subjects", "intake_subject_referrers", "intake_submissions", "intake_consents",
                             "intake_handoffs", "intake_releases"} == INTAKE_TABLES
    assert current(engine) == ("intake_0002",)  # core_0001 is its ancestor (depends_on)
    assert drift(engine, INTAKE_METADATA) == []
    migrate(engine)
    assert current(engine) == ("intake_0002",) and drift(engine, INTAKE_METADATA) == []


def test_the_comparison_notices_an_intake_table_that_drifted(engine):
    migrate(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_intake_handoffs_subject_provider")
        conn.exec_driver_sql("ALTER TABLE intake_releases ADD COLUMN stray INTEGER")

    found = {(diff[0], diff[1].name if diff[0] == "add_index" else diff[3].name)
             for diff in drift(engine, INTAKE_METADATA)}
    assert found == {("add_index", "ix_intake_handoffs_subject_provider"), ("remove_column", "stray")}


def test_the_one_recipient_check_holds_on_the_migrated_table(engine):
    migrate(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO intake_subjects (subject_id, minor, created_by_org, created_at_us) "
                             "VALUES ('sub-1', false, 'pol-mdd-01', 1)")
    row = {"consent_id": "con-1", "subject_id": "sub-1", "purposes": "1", "categories": "2", "given_by": 1,
           "expires_at_us": 2, "recorded_by_org": "pol-mdd-01", "recorded_at_us": 1}
    insert = sa.text("INSERT INTO intake_consents (consent_id, subject_id, recipient_role, recipient_org, purposes, "
                     "categories, given_by, expires_at_us, recorded_by_org, recorded_at_us) VALUES (:consent_id, "
                     ":subject_id, :role, :org, :purposes, :categories, :given_by, :expires_at_us, "
                     ":recorded_by_org, :recorded_at_us)")
    for role, org in ((None, None), (4, "alb-mdd-01")):
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(insert, {**row, "role": role, "org": org})
    with engine.begin() as conn:
        conn.execute(insert, {**row, "role": 4, "org": None})


def test_downgrading_the_intake_branch_leaves_the_core_tables(engine):
    migrate(engine)
    with engine.connect() as conn:
        conn.begin()
        command.downgrade(alembic_config(conn, version_locations=[MIGRATIONS_DIR]), "intake@base")
        conn.commit()

    assert tables(engine) == CORE_TABLES | {"alembic_version"}
    assert current(engine) == ("core_0001",)
    migrate(engine)
    assert drift(engine, INTAKE_METADATA) == []
