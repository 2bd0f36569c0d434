"""What the polling greenthread knows about fetched records: their order per stream and their offsets.

Records of one stream (same partition, same key) run one at a time, in offset order, so a stream's
events are applied in sequence; records of different streams run concurrently, so they finish out of
order and :class:`~services.core.runtime.offsets.OffsetTracker` decides what may be committed. Nothing
here talks to Kafka or nameko: the entrypoint feeds it, and the unit tests drive it directly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from services.core.runtime.offsets import OffsetTracker, PartitionOffsets


@dataclass(eq=False)
class Pending:
    """A fetched record on its way: where it is from, its stream lane, and how far it got."""

    partition: Hashable
    offset: int
    lane: Hashable
    tracking: PartitionOffsets
    payload: Any = None  # the Kafka record
    verified: Any = None  # its verified envelope, once its turn came
    attempt: int = 0  # handler attempts started
    busy: bool = field(default=False)  # a worker or a dead-letter send is working on it


@dataclass(frozen=True)
class Released:
    """A revoked partition's last state: the position to commit (if any) and where a new owner resumes."""

    commit: int | None
    resume: int | None


class Dispatcher:
    """Per-stream lanes of fetched records over the offset tracking of the owned partitions."""

    def __init__(self) -> None:
        self.tracker: OffsetTracker[Hashable] = OffsetTracker()
        self._lanes: dict[Hashable, deque[Pending]] = {}
        self._ready: deque[Pending] = deque()
        self._closing: set[Hashable] = set()  # being revoked: finish what runs, start nothing new
        self._size = 0

    def assign(self, partitions: Iterable[Hashable]) -> None:
        """Partitions newly owned: track them from scratch."""
        self.tracker.assign(partitions)

    def fetched(self, partition: Hashable, offset: int, stream: Hashable | None,
                payload: object = None) -> Pending | None:
        """Queue a fetched record in its stream's lane; None (dropped) if the partition is not owned.

        ``stream`` None means the record belongs to no stream: it gets a lane of its own. A record at or
        before one already queued for this assignment is dropped too: it is being handled already.
        """
        tracking = self.tracker.current(partition)
        if tracking is None or not tracking.accepts(offset):
            return None
        tracking.started(offset)
        lane = (partition, stream) if stream is not None else (partition, None, offset)
        item = Pending(partition, offset, lane, tracking, payload)
        queue = self._lanes.setdefault(lane, deque())
        queue.append(item)
        self._size += 1
        if len(queue) == 1:
            self._ready.append(item)
        return item

    def next_ready(self) -> Pending | None:
        """The next record whose turn has come (head of its lane), skipping revoked and closing ones."""
        while self._ready:
            item = self._ready.popleft()
            if self.may_start(item):
                return item
        return None

    def has_ready(self) -> bool:
        """Whether :meth:`next_ready` may return something."""
        return bool(self._ready)

    def is_current(self, item: Pending) -> bool:
        """Whether ``item``'s partition is still owned under the assignment that fetched it."""
        return self.tracker.is_current(item.partition, item.tracking)

    def may_start(self, item: Pending) -> bool:
        """Whether new work (a worker, a retry, a dead-letter send) may start for ``item``."""
        return self.is_current(item) and item.partition not in self._closing

    def close(self, partitions: Iterable[Hashable]) -> None:
        """A revocation began: let running work finish but start nothing new for ``partitions``."""
        self._closing.update(partitions)

    def finished(self, item: Pending) -> bool:
        """``item`` is done: count its offset and let the next record of its stream go.

        Returns False, changing nothing, for a record of a partition revoked since it was fetched.
        """
        item.busy = False
        if not self.is_current(item):
            return False
        queue = self._lanes[item.lane]
        if queue[0] is not item:
            msg = f"record {item.offset} is not running: the one before it in its stream is not finished"
            raise ValueError(msg)
        item.tracking.finished(item.offset)
        queue.popleft()
        self._size -= 1
        if queue:
            self._ready.append(queue[0])
        else:
            del self._lanes[item.lane]
        return True

    def revoke(self, partitions: Iterable[Hashable]) -> dict[Hashable, Released]:
        """Stop tracking ``partitions``: drop their queued records and say what to commit and resume at."""
        partitions = list(partitions)
        self._closing.difference_update(partitions)
        revoked = self.tracker.revoke(partitions)
        if not revoked:
            return {}
        for lane in [lane for lane, queue in self._lanes.items() if queue[0].partition in revoked]:
            self._size -= len(self._lanes.pop(lane))
        self._ready = deque(item for item in self._ready if item.partition not in revoked)
        return {p: Released(commit=state.pending_commit(), resume=state.first_unfinished())
                for p, state in revoked.items()}

    def busy(self, partitions: Iterable[Hashable] | None = None) -> int:
        """Records being worked on (by workers or dead-letter sends), optionally only of ``partitions``."""
        wanted = None if partitions is None else set(partitions)
        return sum(1 for queue in self._lanes.values() if queue[0].busy
                   and (wanted is None or queue[0].partition in wanted))

    def __len__(self) -> int:
        """Fetched records not finished (queued, ready, or in progress)."""
        return self._size
