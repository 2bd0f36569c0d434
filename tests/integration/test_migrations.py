"""The Alembic migrations create exactly the tables the code defines, on SQLite and on PostgreSQL.

Alembic's autogenerate comparison between the migrated database and the MetaData must be empty, so the
migrations and the code never drift; a planted drift shows the comparison would notice. Upgrading is
idempotent, safe when several instances start at once, reversible, and open to a service's own branch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError

from services.core.migrations import CORE_METADATA, alembic_config, current, drift, target_metadata, upgrade
from services.core.migrations.cli import main as migrations_cli
from tests.integration.database_backends import BACKENDS, fresh_engine

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CORE_TABLES = {"events", "outbox", "processed_events", "keyvault_subjects", "keyvault_data_keys"}
HEAD = ("core_0001",)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest):
    """An empty database on each backend in turn."""
    with fresh_engine(request, request.param) as made:
        assert made.dialect.name == request.param  # never silently test one backend twice
        yield made


def differences(engine: sa.Engine, metadata=CORE_METADATA) -> list[Any]:
    """Alembic's autogenerate comparison of the database with the code's tables (empty: they agree)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, target_metadata(metadata)))


def url_of(engine: sa.Engine) -> str:
    """The engine's URL with its password, for another process (on PostgreSQL, pointed at the test's schema)."""
    url = engine.url
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def schema_snapshot(engine: sa.Engine) -> dict[str, object]:
    """Everything the inspector reports about every table, as comparable text."""
    inspector = sa.inspect(engine)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            inspector.get_pk_constraint(table)["constrained_columns"],
            sorted((u["name"] or "", tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)),
            sorted((i["name"] or "", tuple(i["column_names"]), i["unique"]) for i in inspector.get_indexes(table)),
            sorted((tuple(f["constrained_columns"]), f["referred_table"]) for f in inspector.get_foreign_keys(table)),
        )
        for table in sorted(inspector.get_table_names())
    }


def test_upgrade_creates_the_core_tables_exactly_as_the_code_defines_them(engine):
    assert current(engine) == ()
    assert tables(engine) == set()

    upgrade(engine)

    assert tables(engine) == CORE_TABLES | {"alembic_version"}
    assert differences(engine) == []
    assert drift(engine) == []
    assert current(engine) == HEAD


def test_the_comparison_notices_a_database_that_drifted_from_the_code(engine):
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_outbox_unpublished")
        conn.exec_driver_sql("ALTER TABLE processed_events ADD COLUMN stray INTEGER")

    found = {(diff[0], diff[1].name if diff[0] == "add_index" else diff[3].name) for diff in differences(engine)}

    assert found == {("add_index", "ix_outbox_unpublished"), ("remove_column", "stray")}


def test_upgrade_is_idempotent_and_keeps_the_data(engine):
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO processed_events (consumer, event_id, topic, partition, \"offset\", "
                             "processed_at_us) VALUES ('c', 'e', 't', 0, 7, 1)"))
    before = schema_snapshot(engine)

    upgrade(engine)
    upgrade(engine, "head")

    assert schema_snapshot(engine) == before
    assert current(engine) == HEAD
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar_one() == 1
        assert conn.exec_driver_sql('SELECT "offset" FROM processed_events').scalars().all() == [7]
    assert differences(engine) == []


def test_instances_starting_together_migrate_one_after_the_other(engine):
    """Four processes, imports done, call upgrade() at the same instant; without the lock some fail."""
    url = url_of(engine)
    start_at = time.time() + 2.0  # after every interpreter has imported the package
    starter = ("import sys, time; from services.core.migrations import upgrade; "
               "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); upgrade(sys.argv[1])")
    instances = [subprocess.Popen([sys.executable, "-c", starter, url, str(start_at)], cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [instance.communicate(timeout=60)[0] for instance in instances]

    assert [instance.returncode for instance in instances] == [0, 0, 0, 0], "\n".join(outputs)
    assert current(engine) == HEAD
    assert differences(engine) == []


def test_threads_of_one_process_may_migrate_different_databases_at_once(tmp_path):
    """Alembic keeps the running migration in module globals; upgrade() makes threads take turns."""
    urls = [f"sqlite+pysqlite:///{tmp_path / f'db{index}.db'}" for index in range(4)]
    barrier = threading.Barrier(len(urls))
    failures: list[BaseException] = []

    def migrate(url: str) -> None:
        try:
            barrier.wait(timeout=10)
            upgrade(url)
        except BaseException as error:  # collected and asserted below
            failures.append(error)

    threads = [threading.Thread(target=migrate, args=(url,), daemon=True) for url in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    for url in urls:
        assert current(url) == HEAD
        assert drift(url) == []


def test_downgrade_to_base_removes_the_core_tables_and_upgrade_restores_them(engine):
    upgrade(engine)
    with engine.connect() as conn:
        conn.begin()
        command.downgrade(alembic_config(conn), "base")
        conn.commit()

    assert tables(engine) == {"alembic_version"}
    assert current(engine) == ()

    upgrade(engine)
    assert tables(engine) == CORE_TABLES | {"alembic_version"}
    assert differences(engine) == []


def test_a_service_adds_its_own_tables_as_a_branch_beside_the_core(engine, tmp_path, capsys):
    status = migrations_cli(["revision", "-m", "demo projection", "--rev-id", "demo_0001", "--head", "base",
                             "--branch-label", "demo", "--depends-on", "core_0001", "--version-path", str(tmp_path)])
    assert status == 0
    script = tmp_path / "demo_0001_demo_projection.py"
    assert str(script) in capsys.readouterr().out
    text = script.read_text()
    assert "branch_labels = ('demo',)" in text and "depends_on = 'core_0001'" in text
    script.write_text(text.replace("def upgrade() -> None:\n    pass", (
        "def upgrade() -> None:\n"
        "    op.create_table('demo_projection', sa.Column('stream_id', sa.String(128), primary_key=True),\n"
        "                    sa.Column('version', sa.BigInteger, nullable=False))"), 1))
    demo = sa.MetaData()
    sa.Table("demo_projection", demo, sa.Column("stream_id", sa.String(128), primary_key=True),
             sa.Column("version", sa.BigInteger, nullable=False))

    upgrade(engine, version_locations=[tmp_path])

    assert current(engine) == ("demo_0001",)  # core_0001 is its ancestor (depends_on), so not a head
    assert tables(engine) == CORE_TABLES | {"alembic_version", "demo_projection"}
    assert differences(engine, [*CORE_METADATA, demo]) == []
    upgrade(engine, version_locations=[tmp_path])  # idempotent with the branch too
    assert current(engine) == ("demo_0001",)
    with pytest.raises(CommandError, match="demo_0001"):  # a service must always pass its own folder
        upgrade(engine)

    later_core = tmp_path / "later_core"  # a later core revision, as the core branch will grow
    later_core.mkdir()
    (later_core / "core_0002_later.py").write_text(
        "revision = 'core_0002'\ndown_revision = 'core_0001'\nbranch_labels = None\ndepends_on = None\n\n"
        "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n")
    upgrade(engine, version_locations=[tmp_path, later_core])
    assert current(engine) == ("core_0002", "demo_0001")


def test_the_command_line_upgrades_reports_and_checks_without_showing_the_password(engine, monkeypatch, capsys):
    plain = url_of(engine)
    password = engine.url.password
    environ = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}

    upgraded = subprocess.run(  # the real entry point once; in-process below (each process costs a second)
        [sys.executable, "-m", "services.core.migrations", "upgrade", "--database-url", plain], cwd=REPO,
        env=environ, capture_output=True, text=True, timeout=60, check=False)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip().endswith(": core_0001")
    assert current(engine) == HEAD

    monkeypatch.setenv("DATABASE_URL", plain)  # the default when --database-url is not given
    assert migrations_cli(["check"]) == 0
    checked = capsys.readouterr().out
    assert checked.strip().endswith(": 0 difference(s) from the core tables")
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_outbox_unpublished")
    assert migrations_cli(["check"]) == 1
    drifted = capsys.readouterr().out
    assert "ix_outbox_unpublished" in drifted
    assert drifted.strip().endswith(": 1 difference(s) from the core tables")
    if password:
        for output in (upgraded.stdout + upgraded.stderr, checked, drifted):
            assert str(password) not in output

    monkeypatch.delenv("DATABASE_URL")
    with pytest.raises(SystemExit) as exited:
        migrations_cli(["current"])
    assert exited.value.code == 2
    assert "--database-url is required when DATABASE_URL is not set" in capsys.readouterr().err
