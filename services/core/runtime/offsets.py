"""Which offsets may be committed: only the contiguous run of finished records, per partition.

Workers finish records out of order (different streams run concurrently), so a partition's committable
position is the offset after the last record of the unbroken finished run from the oldest dispatched one.
Offsets are taken as fetched, not as ``offset + 1`` arithmetic: a read_committed consumer skips
transaction markers and aborted records, so a partition's offsets may have gaps.

Each assignment of a partition gets a fresh :class:`PartitionOffsets`; a record remembers the object it
was tracked by, so a worker that finishes after its partition was revoked (or revoked and assigned
again) can be recognised and ignored: it never moves a commit position.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

Partition = TypeVar("Partition")


class PartitionOffsets:
    """The offsets of one partition during one assignment: dispatched, finished, committed."""

    def __init__(self) -> None:
        self._unfinished: deque[int] = deque()  # dispatched, in fetch order, up to the first unfinished one
        self._finished_ahead: set[int] = set()  # finished, but behind an unfinished one
        self._position: int | None = None  # offset after the contiguous finished run
        self._last_started: int | None = None
        self.committed: int | None = None  # last position the broker acknowledged

    def accepts(self, offset: int) -> bool:
        """Whether ``offset`` comes after every offset started so far."""
        return self._last_started is None or offset > self._last_started

    def started(self, offset: int) -> None:
        """A record was fetched and will be worked on; offsets must arrive in increasing order."""
        if not self.accepts(offset):
            msg = f"offset {offset} arrived after offset {self._last_started}: a partition's records come in order"
            raise ValueError(msg)
        self._last_started = offset
        self._unfinished.append(offset)

    def finished(self, offset: int) -> None:
        """A record's work is done (effect committed, duplicate skipped, or dead-lettered)."""
        if offset not in self._unfinished:
            msg = f"offset {offset} was never started, or finished twice"
            raise ValueError(msg)
        self._finished_ahead.add(offset)
        while self._unfinished and self._unfinished[0] in self._finished_ahead:
            done = self._unfinished.popleft()
            self._finished_ahead.discard(done)
            self._position = done + 1

    @property
    def position(self) -> int | None:
        """The offset to commit: after the contiguous finished run (None before anything finished)."""
        return self._position

    def pending_commit(self) -> int | None:
        """The position if it moved past what was committed, else None."""
        if self._position is None or self._position == self.committed:
            return None
        return self._position

    def first_unfinished(self) -> int | None:
        """The oldest dispatched record not finished yet: where a new owner must start again."""
        return self._unfinished[0] if self._unfinished else None

    @property
    def unfinished(self) -> int:
        """How many dispatched records are not finished."""
        return len(self._unfinished) - len(self._finished_ahead)


class OffsetTracker(Generic[Partition]):
    """The :class:`PartitionOffsets` of every partition this consumer currently owns."""

    def __init__(self) -> None:
        self._partitions: dict[Partition, PartitionOffsets] = {}

    def assign(self, partitions: Iterable[Partition]) -> None:
        """Start tracking newly assigned partitions afresh (a partition kept keeps its tracking)."""
        for partition in partitions:
            self._partitions.setdefault(partition, PartitionOffsets())

    def revoke(self, partitions: Iterable[Partition]) -> dict[Partition, PartitionOffsets]:
        """Stop tracking ``partitions``; returns their last state (to commit what finished, if safe)."""
        return {p: state for p in partitions if (state := self._partitions.pop(p, None)) is not None}

    def current(self, partition: Partition) -> PartitionOffsets | None:
        """The tracking of an owned partition, None for a partition not owned."""
        return self._partitions.get(partition)

    def is_current(self, partition: Partition, state: PartitionOffsets) -> bool:
        """Whether ``state`` is still the tracking of ``partition`` (not a revoked, earlier assignment)."""
        return self._partitions.get(partition) is state

    def pending_commits(self) -> dict[Partition, tuple[PartitionOffsets, int]]:
        """Every owned partition whose position moved since its last commit, with that position."""
        pending = {}
        for partition, state in self._partitions.items():
            position = state.pending_commit()
            if position is not None:
                pending[partition] = (state, position)
        return pending

    def unfinished(self) -> int:
        """Dispatched records not finished, over all owned partitions."""
        return sum(state.unfinished for state in self._partitions.values())

    @property
    def partitions(self) -> list[Partition]:
        """The partitions tracked now."""
        return list(self._partitions)
