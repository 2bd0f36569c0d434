"""The ledger's SqlTree on SQLite and PostgreSQL: migrations, agreement with the in-memory trees, dedupe of event
ids, checkpoints, and a second writer racing the first.

What is real: SQLite files (through services.core.database.create_engine, as the worker uses them), PostgreSQL
(a schema of its own per test), Alembic's ``audit`` branch, threads writing at the same moment. Replaced:
nothing. Leaves are synthetic (SHA-256 of a number as the canonical hash, a short stand-in envelope).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from services.audit.adapters.database import AUDIT_DATABASE_METADATA, migrate
from services.audit.adapters.tables import AUDIT_METADATA
from services.audit.adapters.tree_store import LeafRecord, SqlTree, TreeConflictError, TreeStoreError
from services.audit.domain.checkpoint import LeafRun, sign_checkpoint
from services.audit.domain.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryTree,
    TreeSizeError,
    verify_consistency,
    verify_inclusion,
)
from services.core.database import create_engine
from services.core.migrations import current, drift
from tests.integration.database_backends import BACKENDS, fresh_engine
from tests.unit.identity_factories import make_directory

pytestmark = pytest.mark.integration

AUDIT_TABLES = {"audit_leaves", "audit_nodes", "audit_checkpoints"}
TOPIC = "referralnet.intake.events.v1"


@contextmanager
def audit_engine(request: pytest.FixtureRequest, dialect: str) -> Iterator[sa.Engine]:
    """A migrated audit database on ``dialect`` (SQLite with the pragmas the services use)."""
    if dialect == "sqlite":
        engine = create_engine(request.getfixturevalue("sqlite_url"))
        try:
            migrate(engine)
            yield engine
        finally:
            engine.dispose()
        return
    with fresh_engine(request, dialect) as engine:
        migrate(engine)
        yield engine


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    with audit_engine(request, request.param) as made:
        assert made.dialect.name == request.param
        yield made


def event_id(number: int) -> str:
    return f"{number >> 16:08x}-{number & 0xFFFF:04x}-7000-8000-{number:012x}"


def record(number: int, *, offset: int | None = None) -> LeafRecord:
    return LeafRecord(
        event_id=event_id(number), leaf_input=hashlib.sha256(number.to_bytes(8, "big")).digest(), topic=TOPIC,
        partition=number % 3, offset=number if offset is None else offset, event_type="ReferralSubmitted",
        stream_id=f"ref-{number:032x}", stream_sequence=number + 1, producer_org="pol-mdd-01",
        occurred_at_us=1_768_469_400_000_000 + number, envelope=b"envelope-" + number.to_bytes(4, "big"),
    )


def append(engine: sa.Engine, records: Sequence[LeafRecord]) -> list[int]:
    with Session(engine) as session, session.begin():
        return SqlTree().append(session, records)


def clear(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(AUDIT_METADATA.sorted_tables):
            conn.execute(table.delete())


# --- Migrations -------------------------------------------------------------------------------------------------


def test_the_audit_branch_creates_exactly_the_ledger_tables(engine):
    names = set(sa.inspect(engine).get_table_names())
    assert names >= AUDIT_TABLES | {"events", "outbox", "processed_events", "alembic_version"}
    assert {table.name for table in AUDIT_METADATA.tables.values()} >= AUDIT_TABLES
    heads = current(engine)
    assert len(heads) == 1 and heads[0].startswith("audit_")  # core_0001 is its ancestor (depends_on)
    assert drift(engine, AUDIT_DATABASE_METADATA) == []
    migrate(engine)  # idempotent
    assert current(engine) == heads and drift(engine, AUDIT_DATABASE_METADATA) == []
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'audit_nodes'").scalar_one()
        assert "WITHOUT ROWID" in sql


def test_the_comparison_notices_a_ledger_table_that_drifted(engine):
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE audit_checkpoints ADD COLUMN stray INTEGER")
    found = [(diff[0], diff[3].name) for diff in drift(engine, AUDIT_DATABASE_METADATA) if diff[0] == "remove_column"]
    assert found == [("remove_column", "stray")]


# --- Agreement with the in-memory trees ---------------------------------------------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 300), data=st.data())
def test_sql_tree_agrees_with_the_memory_tree_and_the_compact_range(engine, n, data):
    clear(engine)
    numbers = list(range(n))
    cuts = sorted(data.draw(st.lists(st.integers(1, max(n - 1, 1)), max_size=8), label="batch cuts"))
    batches = [numbers[start:end] for start, end in zip([0, *cuts], [*cuts, n], strict=True) if start < end]
    repeats = data.draw(st.lists(st.integers(0, n - 1), max_size=6), label="repeated numbers")
    memory, compact, tree = MemoryTree(), CompactRange(), SqlTree()
    appended = 0
    for batch in batches:
        # Repeat earlier (or this batch's own) event ids: they must be skipped, and never shift an index.
        sent = [*batch, *(number for number in repeats if number < batch[-1]), *batch[:1]]
        indexes = append(engine, [record(number) for number in sent])
        assert indexes == list(range(appended, appended + len(batch)))
        appended += len(batch)
        for number in batch:
            memory.append(record(number).leaf_input)
            compact.append(record(number).leaf_input)

    with Session(engine) as session:
        assert tree.size(session) == memory.size == compact.size == n
        roots = [tree.root(session, m) for m in range(n + 1)]
        assert roots == [memory.root(m) for m in range(n + 1)] and roots[0] == EMPTY_ROOT
        assert tree.root(session) == compact.root() == roots[n]
        for index in range(n):
            path = tree.inclusion_proof(session, index, n)
            assert path == memory.inclusion_proof(index, n)
            verify_inclusion(record(index).leaf_input, index, n, path, roots[n])
        for _ in range(8):
            second = data.draw(st.integers(0, n), label="second")
            first = data.draw(st.integers(0, second), label="first")
            proof = tree.consistency_proof(session, first, second)
            assert proof == memory.consistency_proof(first, second)
            verify_consistency(first, second, proof, roots[first], roots[second])
        # Only complete subtrees are stored: floor(n / 2**level) at each level, 2n - popcount(n) in all.
        stored = session.execute(sa.select(sa.func.count()).select_from(AUDIT_METADATA.tables["audit_nodes"]))
        assert stored.scalar_one() == 2 * n - bin(n).count("1")


def test_proofs_and_roots_read_only_stored_nodes_in_one_statement(engine):
    append(engine, [record(number) for number in range(1000)])
    statements: list[str] = []

    def remember(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    tree = SqlTree()
    with Session(engine) as session:
        session.connection()  # begin outside the count
        sa.event.listen(engine, "before_cursor_execute", remember)
        try:
            tree.root(session, 999)
            tree.inclusion_proof(session, 517, 999)
            tree.consistency_proof(session, 333, 999)
        finally:
            sa.event.remove(engine, "before_cursor_execute", remember)
    assert len(statements) == 3
    assert all("audit_nodes" in statement and "audit_leaves" not in statement for statement in statements)


def test_sizes_beyond_the_tree_are_refused(engine):
    append(engine, [record(number) for number in range(10)])
    tree = SqlTree()
    with Session(engine) as session:
        for call in (lambda: tree.root(session, 11), lambda: tree.inclusion_proof(session, 10, 11),
                     lambda: tree.inclusion_proof(session, 3, 11), lambda: tree.consistency_proof(session, 4, 11),
                     lambda: tree.consistency_proof(session, 11, 11), lambda: tree.consistency_proof(session, 5, 4),
                     lambda: tree.inclusion_proof(session, 10, 10)):
            with pytest.raises(TreeSizeError):
                call()
        assert tree.consistency_proof(session, 10, 10) == [] and tree.consistency_proof(session, 0, 10) == []


# --- Dedupe -----------------------------------------------------------------------------------------------------


def test_event_ids_already_leaves_are_skipped_across_and_within_batches(engine):
    tree = SqlTree()
    assert append(engine, [record(1), record(2), record(1, offset=99), record(3)]) == [0, 1, 2]
    # A redelivery of 2 and 3 (other offsets), 4 twice, then 5: only 4 and 5 are new, at 4's first position.
    assert append(engine, [record(2, offset=50), record(4), record(3, offset=51), record(4, offset=52),
                           record(5)]) == [3, 4]
    assert append(engine, [record(5), record(1)]) == []
    assert append(engine, []) == []
    with Session(engine) as session:
        listed = tree.leaves(session, 0, 100)
        assert [(index, leaf.event_id) for index, leaf in listed] == [
            (0, event_id(1)), (1, event_id(2)), (2, event_id(3)), (3, event_id(4)), (4, event_id(5))]
        assert listed[0][1] == record(1) and listed[3][1] == record(4)  # the first occurrence is the leaf
        assert tree.leaves(session, 3, 1) == [listed[3]] and tree.leaves(session, 5, 10) == []
        assert tree.leaves(session, 0, 0) == []
        assert tree.leaf_index_of(session, event_id(4)) == 3 and tree.leaf_index_of(session, event_id(6)) is None
        assert tree.leaf_of(session, event_id(2)) == listed[1] and tree.leaf_of(session, event_id(9)) is None
        assert tree.size(session) == 5


def test_the_unique_indexes_refuse_a_leaf_written_around_the_tree(engine):
    append(engine, [record(number) for number in range(3)])
    leaves = AUDIT_METADATA.tables["audit_leaves"]
    row = {"leaf_index": 7, "event_id": event_id(1), "leaf_input": bytes(32), "source_topic": TOPIC,
           "source_partition": 0, "source_offset": 0, "event_type": "X", "stream_id": "s", "stream_sequence": 1,
           "producer_org": "o", "occurred_at_us": 0, "envelope": b""}
    for clash in ({"event_id": event_id(1)}, {"leaf_index": 2, "event_id": event_id(8)}):
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(leaves.insert(), [{**row, **clash}])


# --- Checkpoints --------------------------------------------------------------------------------------------------


def test_checkpoints_are_stored_found_and_must_be_about_this_tree(engine):
    network = make_directory()
    key = network.signing_keys["svc:audit#sig-1"]
    tree = SqlTree()
    append(engine, [record(number) for number in range(8)])
    with Session(engine) as session:
        assert tree.latest_checkpoint(session) is None and tree.checkpoint_of_size(session, 8) is None
        root5, root8 = tree.root(session, 5), tree.root(session, 8)
    first = sign_checkpoint("referralnet-test/audit/v1", 5, root5, 1, None, [LeafRun(TOPIC, 0, 0, 6)],
                            "svc:audit#sig-1", key)
    second = sign_checkpoint("referralnet-test/audit/v1", 8, root8, 2, first, [LeafRun(TOPIC, 1, 0, 3)],
                             "svc:audit#sig-1", key)
    with Session(engine) as session, session.begin():
        tree.save_checkpoint(session, first)
        tree.save_checkpoint(session, second)
    with Session(engine) as session:
        assert tree.latest_checkpoint(session) == second
        assert tree.checkpoint_of_size(session, 5) == first and tree.checkpoint_of_size(session, 6) is None

    wrong_root = sign_checkpoint("referralnet-test/audit/v1", 6, root5, 3, second, [], "svc:audit#sig-1", key)
    too_big = sign_checkpoint("referralnet-test/audit/v1", 9, root8, 3, second, [], "svc:audit#sig-1", key)
    for refused in (wrong_root, too_big):
        with pytest.raises(TreeStoreError), Session(engine) as session, session.begin():
            tree.save_checkpoint(session, refused)
    again = sign_checkpoint("referralnet-test/audit/v1", 8, root8, 4, first, [], "svc:audit#sig-1", key)
    with pytest.raises(TreeConflictError), Session(engine) as session, session.begin():
        tree.save_checkpoint(session, again)


# --- A second writer ----------------------------------------------------------------------------------------------


class InsertSignal:
    """Set when a session of ``engine`` is about to insert leaves: its reads of the tree are done."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine, self.event, self.owner = engine, threading.Event(), threading.get_ident()

    def __call__(self, _conn, _cursor, statement: str, *_args) -> None:
        if threading.get_ident() != self.owner and statement.lstrip().upper().startswith("INSERT INTO AUDIT_LEAVES"):
            self.event.set()


@pytest.mark.parametrize("same_events", [False, True], ids=["other-events", "same-events"])
def test_a_second_concurrent_appender_fails_loudly_and_the_tree_stays_whole(engine, same_events):
    append(engine, [record(number) for number in range(5)])
    signal = InsertSignal(engine)
    sa.event.listen(engine, "before_cursor_execute", signal)
    outcome: list[BaseException | list[int]] = []

    def second_writer() -> None:
        numbers = range(5, 9) if same_events else range(100, 103)
        try:
            outcome.append(append(engine, [record(number) for number in numbers]))
        except BaseException as error:  # handed to the test thread
            outcome.append(error)

    try:
        with Session(engine) as first:
            first.begin()
            assert SqlTree().append(first, [record(number) for number in range(5, 9)]) == [5, 6, 7, 8]
            racer = threading.Thread(target=second_writer, daemon=True)
            racer.start()
            # The racer has read size 5 and its frontier; it now inserts leaf 5 again (and waits for our lock).
            assert signal.event.wait(timeout=30)
            first.commit()
        racer.join(timeout=30)
        assert not racer.is_alive()
    finally:
        sa.event.remove(engine, "before_cursor_execute", signal)

    [result] = outcome
    if engine.dialect.name == "postgresql":
        assert isinstance(result, TreeConflictError), result
    else:  # SQLite serialises writers: the stale one collides on the keys or is refused the lock
        assert isinstance(result, TreeConflictError | sa.exc.OperationalError), result
    memory = MemoryTree()
    for number in range(9):
        memory.append(record(number).leaf_input)
    with Session(engine) as session:
        tree = SqlTree()
        assert tree.size(session) == 9 and tree.root(session) == memory.root()
        assert [tree.root(session, m) for m in range(10)] == [memory.root(m) for m in range(10)]
    assert append(engine, [record(9)]) == [9]  # the writer that won carries on
