"""The event store's contract, proven on SQLite and on PostgreSQL alike (both migrated with Alembic).

Every test runs once per backend against a fresh database: append and load in order, envelopes that verify,
optimistic concurrency with a clear error, the outbox written in the same transaction, two writers racing
(exactly one wins, the other gets ConcurrencyError), and many racing writers losing nothing. What is real:
the databases, the envelope cryptography (synthetic organisations and keys), threads. Nothing is mocked.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, registry

from services.core.envelope import ShreddedSubjectError
from services.core.envelope.envelope import EnvelopeSigner, Sealer
from services.core.eventstore import (
    ConcurrencyError,
    DuplicateEventError,
    EventStore,
    NewEvent,
    StoredEvent,
    unit_of_work,
)
from services.core.eventstore.schema import events, outbox, processed_events
from services.core.keyvault import DataCategory, KeyState, KeyVault, LocalFileKek
from services.core.messaging.topics import events_topic
from services.core.migrations import upgrade
from tests.integration.database_backends import BACKENDS, fresh_engine
from tests.unit.envelope_support import POLICE, ROUTING, Network, new_data_key

pytestmark = pytest.mark.integration

TOPIC = events_topic("intake")
KEY = new_data_key()  # synthetic routing key shared by the module's events (the vault is not under test here)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest):
    """A fresh database on each backend in turn, migrated to the latest revision."""
    with fresh_engine(request, request.param) as made:
        assert made.dialect.name == request.param  # never silently test one backend twice
        upgrade(made)
        yield made


@pytest.fixture(scope="module")
def network():
    made = Network.create()
    yield made
    made.close()


def event_store(network: Network, sealer: Sealer | None = None) -> EventStore:
    org = network.orgs[POLICE]
    return EventStore(sealer or network.sealer(POLICE), org.org_id, "intake", org.signing_key_id, TOPIC)


def new_event(label: str, event_type: str = "ReferralSubmitted") -> NewEvent:
    return NewEvent(event_type, 1, {ROUTING: (KEY, f'{{"synthetic":"{label}"}}'.encode())})


def count(bind: sa.Engine | sa.Connection | Session, table: sa.Table) -> int:
    query = sa.select(sa.func.count()).select_from(table)
    if isinstance(bind, sa.Engine):
        with bind.connect() as conn:
            return int(conn.execute(query).scalar_one())
    return int(bind.execute(query).scalar_one())


def append_committed(engine: sa.Engine, store: EventStore, stream_id: str, expected: int,
                     batch: list[NewEvent]) -> list[StoredEvent]:
    with unit_of_work(engine) as session:
        return store.append(session, stream_id, expected, batch)


class BarrierSealer(Sealer):
    """Seals only once every racing writer has passed the version check: both then reach the unique index."""

    def __init__(self, signer: EnvelopeSigner, barrier: threading.Barrier) -> None:
        super().__init__(signer)
        self._barrier = barrier

    def seal_event(self, header, sections):
        self._barrier.wait(timeout=10)
        return super().seal_event(header, sections)


def test_appended_events_load_back_in_order_with_verifiable_envelopes_and_their_hashes(engine, network):
    store = event_store(network)
    batches = [[new_event("a1"), new_event("a2"), new_event("a3", "HandoffOffered")],
               [new_event("a4"), new_event("a5")]]
    first = append_committed(engine, store, "ref-a", 0, batches[0])
    other = append_committed(engine, store, "ref-b", 0, [new_event("b1")])  # interleaved, another stream
    second = append_committed(engine, store, "ref-a", 3, batches[1])

    with unit_of_work(engine) as session:
        loaded = store.load(session, "ref-a")
        tail = store.load(session, "ref-a", after_sequence=3)
        versions = store.version(session, "ref-a"), store.version(session, "ref-b"), store.version(session, "none")
        assert store.load(session, "none") == []

    assert loaded == first + second
    assert tail == loaded[3:]
    assert versions == (5, 1, 0)
    assert [event.stream_sequence for event in loaded] == [1, 2, 3, 4, 5]
    positions = [event.position for event in loaded]
    assert positions == sorted(positions) and len({*positions, other[0].position}) == 6
    for stored, appended in zip(loaded, batches[0] + batches[1], strict=True):
        verified = network.verifier.verify(stored.envelope)
        header = verified.header
        assert (header.event_id, header.event_type, header.stream_id, header.stream_sequence) == (
            appended.event_id, appended.event_type, "ref-a", stored.stream_sequence)
        assert (header.producer_org, header.producer_service, header.occurred_at_unix_micros) == (
            POLICE, "intake", appended.occurred_at_unix_micros)
        assert (stored.event_id, stored.event_type, stored.occurred_at_us) == (
            appended.event_id, appended.event_type, appended.occurred_at_unix_micros)
        assert stored.canonical_hash == verified.canonical_hash()
        assert network.opener.open(verified, ROUTING, KEY) == appended.sections[ROUTING][1]


def test_a_stale_expected_version_is_refused_naming_the_stream_and_both_versions(engine, network):
    store = event_store(network)
    append_committed(engine, store, "ref-stale", 0, [new_event("1"), new_event("2")])

    for expected in (1, 3, 0):
        with pytest.raises(ConcurrencyError) as refused:
            append_committed(engine, store, "ref-stale", expected, [new_event("late")])
        error = refused.value
        assert (error.stream_id, error.expected_version, error.actual_version) == ("ref-stale", expected, 2)
        assert str(error) == (f"stream ref-stale: expected version {expected}, found version 2; "
                              "reload the stream and retry the command")

    assert (count(engine, events), count(engine, outbox)) == (2, 2)


def test_a_reused_event_id_is_a_duplicate_not_a_conflict(engine, network):
    store = event_store(network)
    once = new_event("once")
    append_committed(engine, store, "ref-first", 0, [once])

    with pytest.raises(DuplicateEventError) as duplicate:
        append_committed(engine, store, "ref-second", 0, [new_event("fresh"), once])

    assert duplicate.value.event_id == once.event_id
    assert once.event_id in str(duplicate.value)
    with unit_of_work(engine) as session:
        assert store.version(session, "ref-second") == 0  # the fresh event went with the failed transaction
    assert (count(engine, events), count(engine, outbox)) == (1, 1)


def test_the_outbox_holds_one_row_per_event_written_in_the_same_transaction(engine, network):
    store = event_store(network)
    with Session(engine) as session:
        appended = store.append(session, "ref-out", 0, [new_event("1"), new_event("2"), new_event("3")])
        assert (count(session, events), count(session, outbox)) == (3, 3)  # inside the transaction
        with engine.connect() as other:  # outside it, not yet: both become visible at commit, together
            assert (count(other, events), count(other, outbox)) == (0, 0)
        session.commit()

    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox).order_by(outbox.c.id)).all()
    assert [row.event_position for row in rows] == [event.position for event in appended]
    assert {row.topic for row in rows} == {TOPIC}
    assert [row.published_at_us for row in rows] == [None, None, None]
    assert all(row.created_at_us > 0 for row in rows)


def test_a_rolled_back_transaction_leaves_neither_events_nor_outbox_rows(engine, network):
    store = event_store(network)
    with pytest.raises(RuntimeError, match="the command failed after appending"), unit_of_work(engine) as session:
        store.append(session, "ref-rb", 0, [new_event("1"), new_event("2")])
        raise RuntimeError("the command failed after appending")
    with Session(engine) as session:
        store.append(session, "ref-rb", 0, [new_event("3")])
        session.rollback()

    assert (count(engine, events), count(engine, outbox)) == (0, 0)
    again = append_committed(engine, store, "ref-rb", 0, [new_event("4")])  # the stream is still at version 0
    assert [event.stream_sequence for event in again] == [1]


def test_two_writers_racing_on_one_stream_exactly_one_commits(engine, network):
    store = event_store(network)
    append_committed(engine, store, "ref-race", 0, [new_event("1"), new_event("2")])
    racing = event_store(network, BarrierSealer(network.orgs[POLICE].signer, threading.Barrier(2)))
    outcomes: dict[str, object] = {}
    attempts = {name: new_event(name, "HandoffAccepted") for name in ("left", "right")}

    def write(name: str) -> None:
        try:
            with unit_of_work(engine) as session:
                version = racing.version(session, "ref-race")  # both read 2...
                racing.append(session, "ref-race", version, [attempts[name]])  # ...both write 3
            outcomes[name] = "committed"
        except Exception as error:  # recorded and asserted below
            outcomes[name] = error

    threads = [threading.Thread(target=write, args=(name,), daemon=True) for name in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert not any(thread.is_alive() for thread in threads)
    winners = [name for name, outcome in outcomes.items() if outcome == "committed"]
    losers = [outcome for outcome in outcomes.values() if outcome != "committed"]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1 and isinstance(losers[0], ConcurrencyError), outcomes
    assert (losers[0].stream_id, losers[0].expected_version, losers[0].actual_version) == ("ref-race", 2, None)
    assert "stream ref-race: expected version 2, found a concurrent append" in str(losers[0])
    with unit_of_work(engine) as session:
        loaded = store.load(session, "ref-race")
    assert [event.stream_sequence for event in loaded] == [1, 2, 3]
    assert loaded[-1].event_id == attempts[winners[0]].event_id
    assert count(engine, outbox) == 3


def test_a_conflict_surfacing_at_commit_is_a_concurrency_error_and_other_violations_stay_integrity_errors(
        engine, network):
    store = event_store(network)

    class EventRow:  # rows flushed by the ORM at commit, not by the store's own statements
        def __init__(self, **columns: object) -> None:
            for name, value in columns.items():
                setattr(self, name, value)

    class ProcessedRow(EventRow):
        pass

    mapper = registry()
    mapper.map_imperatively(EventRow, events)
    mapper.map_imperatively(ProcessedRow, processed_events)
    try:
        with pytest.raises(ConcurrencyError) as at_commit, unit_of_work(engine) as session:
            stored = store.append(session, "ref-late", 0, [new_event("1")])[0]
            session.add(EventRow(stream_id="ref-late", stream_sequence=1, event_id="another-event-id",
                                 event_type="X", schema_version=1, occurred_at_us=1, envelope=stored.envelope,
                                 canonical_hash=stored.canonical_hash))
        assert (at_commit.value.stream_id, at_commit.value.expected_version) == ("ref-late", 0)
        assert (count(engine, events), count(engine, outbox)) == (0, 0)

        row = {"consumer": "c", "event_id": "e", "topic": TOPIC, "partition": 0, "offset": 1, "processed_at_us": 1}
        with unit_of_work(engine) as session:
            session.add(ProcessedRow(**row))
        with pytest.raises(IntegrityError), unit_of_work(engine) as session:  # not the store's: unchanged
            store.append(session, "ref-other", 0, [new_event("2")])
            session.add(ProcessedRow(**row))
        assert (count(engine, events), count(engine, processed_events)) == (0, 1)
    finally:
        mapper.dispose()


def test_many_racing_writers_retrying_on_conflict_lose_nothing(engine, network):
    store = event_store(network)
    threads_count, rounds, streams = 4, 15, ("ref-x", "ref-y")
    barrier = threading.Barrier(threads_count)
    written: list[str] = []
    conflicts = Counter[str]()
    failures: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            for round_number in range(rounds):
                stream = streams[(index + round_number) % len(streams)]  # two writers on each stream
                event = new_event(f"w{index}r{round_number}")
                barrier.wait(timeout=10)  # every round starts together
                for _ in range(50):
                    try:
                        with unit_of_work(engine) as session:
                            store.append(session, stream, store.version(session, stream), [event])
                        break
                    except ConcurrencyError:
                        conflicts[stream] += 1
                else:
                    raise AssertionError(f"writer {index} never appended to {stream}")
                written.append(event.event_id)
        except BaseException as error:  # recorded and asserted below
            failures.append(error)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(index,), daemon=True) for index in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert sum(conflicts.values()) > 0  # the writers really raced
    with unit_of_work(engine) as session:
        loaded = {stream: store.load(session, stream) for stream in streams}
    for stream, stream_events in loaded.items():
        assert [event.stream_sequence for event in stream_events] == list(range(1, len(stream_events) + 1)), stream
    stored_ids = [event.event_id for stream_events in loaded.values() for event in stream_events]
    assert sorted(stored_ids) == sorted(written) and len(written) == threads_count * rounds
    with engine.connect() as conn:
        published = conn.execute(sa.select(outbox.c.event_position)).scalars().all()
    assert sorted(published) == sorted(event.position for stream_events in loaded.values() for event in stream_events)


def test_the_key_vault_works_on_migrated_tables(engine, tmp_path):
    vault = KeyVault(engine, LocalFileKek.from_file(tmp_path / "kek.key"))
    subject = "subject-synthetic-0001"

    vault.ensure_subject(subject)
    vault.ensure_subject(subject)  # idempotent
    first = vault.current_key(subject, DataCategory.ROUTING)
    rotated = vault.rotate(subject, DataCategory.ROUTING)
    fresh = KeyVault(engine, LocalFileKek.from_file(tmp_path / "kek.key"))  # no cache: read from the tables

    assert fresh.current_key(subject, DataCategory.ROUTING) == rotated != first
    assert fresh.key(first.key_id) == first  # a retired version still opens what it sealed
    assert [(meta.category, meta.version, meta.state) for meta in fresh.subject_keys(subject)] == [
        (DataCategory.CASE_FILE, 1, KeyState.ACTIVE),
        (DataCategory.ROUTING, 1, KeyState.RETIRED),
        (DataCategory.ROUTING, 2, KeyState.ACTIVE),
    ]

    vault.shred(subject)

    after = KeyVault(engine, LocalFileKek.from_file(tmp_path / "kek.key"))  # (fresh's cache keeps keys <= 60 s)
    for reader in (vault, after):
        for key_id in (first.key_id, rotated.key_id):
            with pytest.raises(ShreddedSubjectError):
                reader.key(key_id)
    with pytest.raises(ShreddedSubjectError):
        vault.ensure_subject(subject)
    with engine.connect() as conn:
        wrapped = conn.exec_driver_sql("SELECT wrapped FROM keyvault_data_keys").scalars().all()
    assert wrapped == [None, None, None]
