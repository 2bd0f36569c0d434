"""Each service's Alembic branch (intake, referral, notify) creates exactly the tables its code defines, beside the
core ones, on both backends.

What is real: SQLite files and PostgreSQL (a schema per test). Alembic's autogenerate comparison between the
migrated database and the MetaData must be empty; a planted drift shows that it would notice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from services.core.migrations import CORE_METADATA, alembic_config, current, drift
from services.intake.adapters import database as intake_database
from services.intake.adapters.tables import METADATA as INTAKE_TABLES
from services.notify.adapters import database as notify_database
from services.notify.adapters.tables import METADATA as NOTIFY_TABLES
from services.notify.migrations import MIGRATIONS as NOTIFY_MIGRATIONS
from services.referral.adapters import database as referral_database
from services.referral.adapters.tables import METADATA as REFERRAL_TABLES
from services.referral.migrations import MIGRATIONS as REFERRAL_MIGRATIONS
from tests.integration.database_backends import BACKENDS, fresh_engine

pytestmark = pytest.mark.integration

CORE_TABLES = {"events", "outbox", "processed_events", "keyvault_subjects", "keyvault_data_keys"}


@dataclass(frozen=True)
class Branch:
    """One service's branch: how to migrate, what its code defines, and what a migrated database must hold."""

    service: str
    migrate: Callable[[sa.Engine], None]
    metadata: sa.MetaData
    migrations: Path
    head: str
    tables: frozenset[str]  # the service's own tables, named here so a table added or lost is noticed
    indexes: dict[str, set[str]] = field(default_factory=dict)  # table -> indexes it must have (at least)
    unique: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)  # table -> unique column tuples
    drifted_index: str = ""  # dropped to plant a drift
    drifted_table: str = ""  # given a stray column to plant a drift

    @property
    def everything(self) -> tuple[sa.MetaData, ...]:
        """Every table the service's database holds: the core's and its own."""
        return (*CORE_METADATA, self.metadata)


BRANCHES = [
    Branch("intake", intake_database.migrate, INTAKE_TABLES, intake_database.MIGRATIONS_DIR, "intake_0002",
           frozenset({"intake_subjects", "intake_subject_referrers", "intake_submissions", "intake_consents",
                      "intake_handoffs", "intake_releases"}),
           drifted_index="ix_intake_handoffs_subject_provider", drifted_table="intake_releases"),
    Branch("referral", referral_database.migrate, REFERRAL_TABLES, REFERRAL_MIGRATIONS, "referral_0001",
           frozenset({"referrals", "needs", "handoffs", "capacity", "referral_consents"}),
           indexes={"handoffs": {"ix_handoffs_inbox", "ix_handoffs_expiry"}},
           drifted_index="ix_handoffs_expiry", drifted_table="capacity"),
    Branch("notify", notify_database.migrate, NOTIFY_TABLES, NOTIFY_MIGRATIONS, "notify_0001",
           frozenset({"notify_consents", "notify_handoffs", "deliveries", "delivery_attempts"}),
           indexes={"deliveries": {"ix_deliveries_due", "ix_deliveries_org_id"}},
           unique={"deliveries": {("notice_key", "channel", "endpoint")}},  # one notice per event and endpoint
           drifted_index="ix_deliveries_due", drifted_table="notify_handoffs"),
]


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    with fresh_engine(request, request.param) as made:
        assert made.dialect.name == request.param
        yield made


@pytest.fixture(params=BRANCHES, ids=[branch.service for branch in BRANCHES])
def branch(request: pytest.FixtureRequest) -> Branch:
    chosen: Branch = request.param
    return chosen


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_the_branch_matches_the_code_and_is_idempotent(engine, branch):
    branch.migrate(engine)

    assert tables(engine) == CORE_TABLES | branch.tables | {"alembic_version"}
    assert {table.name for table in branch.metadata.tables.values()} == branch.tables
    assert current(engine) == (branch.head,)  # core_0001 is its ancestor (depends_on)
    assert drift(engine, branch.everything) == []
    inspector = sa.inspect(engine)
    for table, names in branch.indexes.items():
        assert names <= {index["name"] for index in inspector.get_indexes(table)}
    for table, columns in branch.unique.items():
        assert columns <= {tuple(constraint["column_names"]) for constraint in inspector.get_unique_constraints(table)}
    branch.migrate(engine)
    assert current(engine) == (branch.head,) and drift(engine, branch.everything) == []


def test_the_comparison_notices_a_table_that_drifted(engine, branch):
    branch.migrate(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP INDEX {branch.drifted_index}")
        conn.exec_driver_sql(f"ALTER TABLE {branch.drifted_table} ADD COLUMN stray INTEGER")

    found = {(diff[0], diff[1].name if diff[0] == "add_index" else diff[3].name)
             for diff in drift(engine, branch.everything)}
    assert found == {("add_index", branch.drifted_index), ("remove_column", "stray")}


def test_downgrading_the_branch_leaves_the_core_tables(engine, branch):
    branch.migrate(engine)
    with engine.connect() as conn:
        conn.begin()
        command.downgrade(alembic_config(conn, version_locations=[branch.migrations]), f"{branch.service}@base")
        conn.commit()

    assert tables(engine) == CORE_TABLES | {"alembic_version"}
    assert current(engine) == ("core_0001",)
    branch.migrate(engine)
    assert drift(engine, branch.everything) == []


def test_intakes_one_recipient_check_holds_on_the_migrated_table(engine):
    intake_database.migrate(engine)
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
