"""Per-stream lanes: a stream's records run one at a time in offset order; other streams run alongside."""

from __future__ import annotations

import pytest

from services.core.runtime.dispatch import Dispatcher, Pending

P0, P1 = ("events", 0), ("events", 1)


def ready(dispatcher: Dispatcher) -> list[tuple[object, int]]:
    taken = []
    while (item := dispatcher.next_ready()) is not None:
        taken.append((item.partition, item.offset))
    return taken


def fetch(dispatcher: Dispatcher, partition: object, offset: int, stream: bytes | None) -> Pending:
    item = dispatcher.fetched(partition, offset, stream)
    assert item is not None
    return item


def test_a_stream_runs_one_record_at_a_time_in_offset_order():
    dispatcher = Dispatcher()
    dispatcher.assign([P0])
    first, second, third = (fetch(dispatcher, P0, offset, b"ref-1") for offset in (0, 1, 2))
    assert ready(dispatcher) == [(P0, 0)], "the stream's later records wait for the first"
    dispatcher.finished(first)
    assert ready(dispatcher) == [(P0, 1)]
    with pytest.raises(ValueError, match="not running"):
        dispatcher.finished(third)  # its turn has not come
    dispatcher.finished(second)
    assert ready(dispatcher) == [(P0, 2)]
    dispatcher.finished(third)
    assert len(dispatcher) == 0
    assert [pos for _, pos in dispatcher.tracker.pending_commits().values()] == [3]


def test_different_streams_run_concurrently_and_a_record_without_key_has_its_own_lane():
    dispatcher = Dispatcher()
    dispatcher.assign([P0, P1])
    fetch(dispatcher, P0, 0, b"ref-1")
    fetch(dispatcher, P0, 1, b"ref-2")
    fetch(dispatcher, P0, 2, b"ref-1")
    fetch(dispatcher, P0, 3, None)
    fetch(dispatcher, P0, 4, None)
    fetch(dispatcher, P1, 0, b"ref-1")  # same key in another partition: another lane
    assert ready(dispatcher) == [(P0, 0), (P0, 1), (P0, 3), (P0, 4), (P1, 0)]
    assert len(dispatcher) == 6


def test_busy_counts_heads_being_worked_on():
    dispatcher = Dispatcher()
    dispatcher.assign([P0, P1])
    a = fetch(dispatcher, P0, 0, b"a")
    b = fetch(dispatcher, P1, 0, b"b")
    a.busy = b.busy = True
    assert dispatcher.busy() == 2 and dispatcher.busy([P1]) == 1
    dispatcher.finished(a)
    assert dispatcher.busy() == 1 and not a.busy


def test_closing_partitions_start_nothing_new_and_revocation_drops_their_queue():
    dispatcher = Dispatcher()
    dispatcher.assign([P0, P1])
    running = fetch(dispatcher, P0, 0, b"a")
    assert dispatcher.next_ready() is running
    running.busy = True
    fetch(dispatcher, P0, 1, b"a")  # waits behind the running one
    fetch(dispatcher, P0, 2, b"b")  # ready, not started
    fetch(dispatcher, P1, 0, b"c")

    dispatcher.close([P0])
    assert not dispatcher.may_start(running)
    assert ready(dispatcher) == [(P1, 0)], "nothing new starts for a partition being revoked"
    dispatcher.finished(running)  # work already running still counts while revocation is under way
    released = dispatcher.revoke([P0])
    assert released[P0].commit == 1
    assert released[P0].resume == 1, "records 1 and 2 were never processed: a new owner starts at 1"
    assert len(dispatcher) == 1  # only P1's record is left
    assert dispatcher.fetched(P0, 3, b"a") is None, "records of a partition not owned are dropped"


def test_a_record_at_or_before_one_already_queued_is_dropped():
    dispatcher = Dispatcher()
    dispatcher.assign([P0])
    fetch(dispatcher, P0, 5, b"a")
    assert dispatcher.fetched(P0, 5, b"a") is None
    assert dispatcher.fetched(P0, 3, b"a") is None
    assert len(dispatcher) == 1
