"""Offset tracking: only the contiguous run of finished records is committable, per partition and assignment."""

from __future__ import annotations

import pytest

from services.core.runtime.dispatch import Dispatcher
from services.core.runtime.offsets import OffsetTracker, PartitionOffsets

P0, P1 = ("events", 0), ("events", 1)


def summary(state: PartitionOffsets) -> tuple[int | None, int, int | None]:
    return state.position, state.unfinished, state.first_unfinished()


def started(offsets: list[int]) -> PartitionOffsets:
    state = PartitionOffsets()
    for offset in offsets:
        state.started(offset)
    return state


def test_finishing_in_order_advances_the_position_one_record_at_a_time():
    state = started([0, 1, 2])
    assert state.position is None and state.pending_commit() is None
    state.finished(0)
    assert state.pending_commit() == 1
    state.finished(1)
    assert state.pending_commit() == 2
    state.committed = 2
    assert state.pending_commit() is None  # nothing new since the last commit


def test_out_of_order_completion_commits_only_the_contiguous_run():
    state = started([0, 1, 2, 3, 4])
    state.finished(3)
    state.finished(1)
    assert state.position is None, "offset 0 is still running: nothing may be committed"
    assert state.first_unfinished() == 0
    state.finished(0)
    assert state.position == 2, "0 and 1 are done, 2 is not: commit up to (excluding) 2"
    state.finished(2)
    assert state.position == 4, "3 finished earlier, so the run now reaches 4"
    assert state.unfinished == 1
    state.finished(4)
    assert summary(state) == (5, 0, None)


def test_gaps_left_by_transaction_markers_do_not_block_the_run():
    state = started([10, 12, 15])  # read_committed: 11, 13, 14 are markers or aborted records
    for offset in (15, 12, 10):
        state.finished(offset)
    assert state.position == 16


def test_offsets_must_arrive_in_order_and_finish_once():
    state = started([5])
    assert not state.accepts(5) and not state.accepts(4) and state.accepts(6)
    with pytest.raises(ValueError, match="in order"):
        state.started(4)
    state.finished(5)
    with pytest.raises(ValueError, match="never started, or finished twice"):
        state.finished(5)
    with pytest.raises(ValueError, match="never started"):
        state.finished(6)


def test_revocation_drops_tracking_and_a_new_assignment_starts_afresh():
    tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
    tracker.assign([P0, P1])
    first = tracker.current(P0)
    assert first is not None
    first.started(0)
    first.finished(0)
    revoked = tracker.revoke([P0])
    assert revoked == {P0: first} and tracker.current(P0) is None
    assert not tracker.is_current(P0, first)
    assert list(tracker.pending_commits()) == [], "P1 has nothing; P0 is no longer ours"
    tracker.assign([P0])
    second = tracker.current(P0)
    assert second is not None and second is not first and second.position is None


def test_a_worker_finishing_after_its_partition_was_revoked_commits_nothing():
    dispatcher = Dispatcher()
    dispatcher.assign([P0])
    early = dispatcher.fetched(P0, 0, b"stream-a")
    late = dispatcher.fetched(P0, 1, b"stream-b")
    assert early is not None and late is not None
    dispatcher.finished(early)
    released = dispatcher.revoke([P0])
    assert released[P0].commit == 1 and released[P0].resume == 1  # 1 still running: the next owner redoes it

    dispatcher.assign([P0])  # assigned again (eager rebalancing revokes everything first)
    again = dispatcher.fetched(P0, 1, b"stream-b")
    assert again is not None
    assert dispatcher.finished(late) is False, "a completion from the earlier assignment must be ignored"
    assert dispatcher.tracker.pending_commits() == {}
    assert dispatcher.finished(again) is True
    assert [position for _, position in dispatcher.tracker.pending_commits().values()] == [2]


def test_pending_commits_cover_every_owned_partition_that_moved():
    dispatcher = Dispatcher()
    dispatcher.assign([P0, P1])
    items = [item for partition in (P0, P1) for offset in (7, 8)
             if (item := dispatcher.fetched(partition, offset, bytes([offset]))) is not None]
    assert len(items) == 4
    dispatcher.finished(items[0])  # P0 @7
    dispatcher.finished(items[2])  # P1 @7
    dispatcher.finished(items[3])  # P1 @8
    assert {p: pos for p, (_, pos) in dispatcher.tracker.pending_commits().items()} == {P0: 8, P1: 9}
