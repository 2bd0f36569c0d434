"""Rebuilding the ledger from Kafka alone: the signed checkpoints give the order, the records give the leaves.

For each checkpoint read from the checkpoint topic (ADR 12):

1. it must parse and verify (Ed25519 by ``svc:audit`` from the CA-signed directory) and carry the expected
   origin; one that does not is reported and takes no part in the chain (a forgery must not steer it);
   the same checkpoint published twice counts once;
2. the verified ones, ordered by tree size, are replayed: each run ``(topic, partition, first, last)`` is
   walked in offset order with the worker's rules (a record that did not verify is not a leaf; an event
   id that is already a leaf is a duplicate, not a leaf; anything else appends its canonical hash) into a
   :class:`CompactRange`;
3. the checkpoint must extend its predecessor (:func:`check_extends`: link by hash and size, size =
   predecessor's + the leaves of its runs) and its root must equal the recomputed root at its size.

Because the tree is recomputed by appending only, matching roots at every checkpoint also prove that each
checkpoint is consistent with its predecessor. Source records covered by no verified checkpoint's run are
the pending tail: counted, never ordered (the worker has not fixed their order yet).

The replay streams (:class:`LedgerReplayer`): the checkpoints are read first, so the order of every run is
known before a source record arrives; records arrive one partition's batch at a time and wait in that
partition's buffer only until the walk through the runs reaches them, then each leaf goes to ``on_leaf``
and is dropped. What stays for the whole replay is what the checks need: each leaf's event id and canonical
hash (duplicates), the tree's compact range, and the pending tail. :meth:`LedgerReplayer.held` names the
partitions whose buffers are full, so the reader stops fetching them until the walk catches up.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from services.audit.application.records import SourceRecord
from services.audit.domain.checkpoint import (
    Checkpoint,
    CheckpointError,
    LeafRun,
    check_extends,
    checkpoint_hash,
    parse_checkpoint,
    verify_checkpoint,
)
from services.audit.domain.merkle import EMPTY_ROOT, CompactRange
from services.audit.replay.examine import Examined
from services.audit.replay.log_reader import LogBounds, PartitionKey, Position, position_name, position_of
from services.core.envelope import SigningKeyResolver

CHECKPOINT_INCONSISTENT = "checkpoint_inconsistent"
BUFFER_LIMIT = 20_000
"""Records a partition may hold waiting for the walk before :meth:`LedgerReplayer.held` asks to hold it back."""


@dataclass
class CheckpointCheck:
    """One checkpoint record and what the replay found about it (``problems`` empty when it holds)."""

    position: Position
    tree_size: int = 0
    root_hash: bytes = b""
    recomputed_root: bytes = b""
    issued_at_us: int = 0
    previous_tree_size: int = 0
    runs: int = 0
    leaves: int = 0
    duplicates: int = 0
    rejected: int = 0
    in_chain: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the checkpoint verified, extends its predecessor and its root matches."""
        return not self.problems

    @property
    def name(self) -> str:
        """``checkpoint of size N (topic[p]@o)``, or only the position when it never parsed."""
        where = position_name(self.position)
        return f"checkpoint of size {self.tree_size} ({where})" if self.root_hash else f"checkpoint at {where}"


@dataclass
class LedgerReplay:
    """The recomputed ledger: the tree up to the newest checkpoint and what was found on the way.

    ``leaf_inputs`` maps every leaf's event id to its canonical hash; ``pending`` is the tail no verified
    checkpoint's run covers, in read order (dead letters are never leaves, so never pending).
    """

    checkpoints: list[CheckpointCheck] = field(default_factory=list)
    tree_size: int = 0
    root: bytes = EMPTY_ROOT
    leaf_inputs: dict[str, bytes] = field(default_factory=dict)
    pending: list[Examined] = field(default_factory=list)
    duplicates: int = 0
    rejected: int = 0
    republished: int = 0

    @property
    def in_chain(self) -> list[CheckpointCheck]:
        """The checkpoints that verified and were replayed, oldest first."""
        return [check for check in self.checkpoints if check.in_chain]

    @property
    def problems(self) -> list[CheckpointCheck]:
        """Every checkpoint with at least one problem."""
        return [check for check in self.checkpoints if check.problems]


@dataclass(frozen=True)
class _Verified:
    check: CheckpointCheck
    checkpoint: Checkpoint
    digest: bytes


def checkpoint_of(record: SourceRecord) -> Checkpoint:
    """A checkpoint record's value (``audit.v1.Checkpoint`` bytes) as a Checkpoint; CheckpointError otherwise."""
    if not record.value:
        raise CheckpointError("malformed", "an empty record")
    return parse_checkpoint(record.value)


def replay_ledger(checkpoint_records: Iterable[SourceRecord], examined: Iterable[Examined], bounds: LogBounds,
                  resolver: SigningKeyResolver, *, origin: str | None = None,
                  on_leaf: Callable[[Examined], None] | None = None) -> LedgerReplay:
    """The whole replay over records already examined (each partition's in offset order): see the module doc.

    ``bounds`` says which offsets were read, so a run naming an offset outside them is reported (records the
    log no longer has, or a topic not read). ``origin`` is the expected ``<network_id>/audit/v1``; None
    accepts the origin of the first checkpoint. ``on_leaf`` gets every leaf in leaf order.
    """
    replayer = LedgerReplayer(checkpoint_records, bounds, resolver, origin=origin, on_leaf=on_leaf)
    batch: list[Examined] = []
    for entry in examined:
        if batch and batch[-1].position[:2] != entry.position[:2]:
            replayer.take(batch)
            batch = []
        batch.append(entry)
    if batch:
        replayer.take(batch)
    return replayer.finish()


class LedgerReplayer:
    """The streaming replay: :meth:`take` each partition's examined records as read, then :meth:`finish`."""

    def __init__(self, checkpoint_records: Iterable[SourceRecord], bounds: LogBounds, resolver: SigningKeyResolver,
                 *, origin: str | None = None, on_leaf: Callable[[Examined], None] | None = None,
                 buffer_limit: int = BUFFER_LIMIT) -> None:
        """Verify the checkpoints now (their runs fix the walk); ``on_leaf`` gets every leaf in leaf order."""
        self.replay = LedgerReplay()
        self._verified = _verified_checkpoints(checkpoint_records, resolver, origin, self.replay)
        self._bounds = bounds
        self._on_leaf = on_leaf
        self._buffer_limit = buffer_limit
        self._tree = CompactRange()
        runs = [run for entry in self._verified for run in entry.checkpoint.runs]
        self._coverage = _coverage(runs)
        self._later_firsts = _later_firsts(runs)
        self._runs_walked: dict[PartitionKey, int] = {}
        self._buffers: dict[PartitionKey, OrderedDict[int, Examined]] = {}
        self._read_up_to: dict[PartitionKey, int] = {}
        self._walk = _Walk()
        self._previous: Checkpoint | None = None
        self._finished = False

    def take(self, entries: Sequence[Examined]) -> None:
        """Records of one partition, in offset order: leaves go to ``on_leaf`` as soon as the walk reaches them."""
        for entry in entries:
            key = entry.position[:2]
            offset = entry.position[2]
            self._read_up_to[key] = max(self._read_up_to.get(key, 0), offset + 1)
            if self._covers(key, offset):
                self._buffers.setdefault(key, OrderedDict())[offset] = entry
            elif entry.dead_letter is None:
                self.replay.pending.append(entry)
        self._advance(final=False)

    def held(self) -> set[PartitionKey]:
        """Partitions whose buffers are full while the walk waits for another one: the reader may hold them back.

        A reader must not hold back every partition it still reads on this advice (it then reads them all):
        the partition the walk waits for is never named, but it may already be read to its end.
        """
        waiting = self._walk.waiting_on
        if waiting is None:
            return set()
        return {key for key, buffer in self._buffers.items() if len(buffer) >= self._buffer_limit and key != waiting}

    def finish(self) -> LedgerReplay:
        """Everything was read: walk what is left (offsets never read are skipped) and give the replay."""
        if not self._finished:
            self._advance(final=True)
            self.replay.tree_size, self.replay.root = self._tree.size, self._tree.root()
            self._buffers.clear()
            self._finished = True
        return self.replay

    def _covers(self, key: PartitionKey, offset: int) -> bool:
        spans = self._coverage.get(key)
        return spans is not None and spans.cover(offset)

    def _advance(self, *, final: bool) -> None:
        walk = self._walk
        while walk.checkpoint < len(self._verified):
            verified = self._verified[walk.checkpoint]
            check, checkpoint = verified.check, verified.checkpoint
            if not walk.started:
                check.in_chain, walk.started, walk.before = True, True, self._tree.size
            if walk.run < len(checkpoint.runs):
                if not self._walk_run(checkpoint.runs[walk.run], check, final=final):
                    return
                walk.run, walk.offset = walk.run + 1, None
                continue
            self._close_checkpoint(check, checkpoint, walk.before)
            walk.checkpoint, walk.run, walk.offset, walk.started = walk.checkpoint + 1, 0, None, False
        walk.waiting_on = None

    def _walk_run(self, run: LeafRun, check: CheckpointCheck, *, final: bool) -> bool:
        """Walk ``run`` from where the walk stands; False when it must wait for records not read yet."""
        walk, key = self._walk, (run.topic, run.partition)
        first, last = run.first_offset, run.last_offset
        if walk.offset is None:
            if first > last:
                check.problems.append(f"run {run.topic}[{run.partition}] {first}..{last} is empty or reversed")
                self._drop_walked(key, self._buffers.setdefault(key, OrderedDict()))
                return True
            if not (self._bounds.holds(run.topic, run.partition, first)
                    and self._bounds.holds(run.topic, run.partition, last)):
                check.problems.append(f"run {run.topic}[{run.partition}] {first}..{last} names records this replay "
                                      f"could not read (read {_read_range(self._bounds, key)})")
            walk.offset = max(first, self._bounds.start.get(key, first))
        end = min(last + 1, self._bounds.end.get(key, 0))
        buffer = self._buffers.setdefault(key, OrderedDict())
        while walk.offset < end:
            offset = walk.offset
            entry = buffer.get(offset)
            if entry is None and not final and offset >= self._read_up_to.get(key, 0):
                walk.waiting_on = key
                return False
            walk.offset = offset + 1
            if entry is None:  # an offset held by a transaction marker
                continue
            if entry.dead_letter is not None:  # the worker never makes a dead letter a leaf
                check.problems.append(f"run {run.topic}[{run.partition}] {first}..{last} names a dead-letter topic")
                break
            self._append(entry, check)
        walk.waiting_on = None
        self._drop_walked(key, buffer)
        return True

    def _drop_walked(self, key: PartitionKey, buffer: OrderedDict[int, Examined]) -> None:
        """One more run of ``key`` walked: drop the buffered records below every first offset of its later runs."""
        walked = self._runs_walked[key] = self._runs_walked.get(key, 0) + 1
        later = self._later_firsts.get(key, [])
        keep_from = later[walked] if walked < len(later) else None
        while buffer and (keep_from is None or next(iter(buffer)) < keep_from):
            buffer.popitem(last=False)

    def _append(self, entry: Examined, check: CheckpointCheck) -> None:
        replay = self.replay
        if entry.leaf_input is None or entry.event_id is None:
            check.rejected += 1
            replay.rejected += 1
        elif entry.event_id in replay.leaf_inputs:
            check.duplicates += 1
            replay.duplicates += 1
        else:
            replay.leaf_inputs[entry.event_id] = entry.leaf_input
            self._tree.append(entry.leaf_input)
            if self._on_leaf is not None:
                self._on_leaf(entry)

    def _close_checkpoint(self, check: CheckpointCheck, checkpoint: Checkpoint, before: int) -> None:
        tree = self._tree
        check.leaves = tree.size - before
        try:
            check_extends(self._previous, checkpoint, check.leaves)
        except CheckpointError as error:
            check.problems.append(f"does not extend the previous checkpoint: {error}")
        check.recomputed_root = tree.root()
        if tree.size != checkpoint.tree_size:
            check.problems.append(f"its runs give {tree.size} leaves in all, not its tree size {checkpoint.tree_size}")
        elif check.recomputed_root != checkpoint.root_hash:
            check.problems.append(f"root {checkpoint.root_hash.hex()} differs from the recomputed root "
                                  f"{check.recomputed_root.hex()} at size {tree.size}")
        self._previous = checkpoint


@dataclass
class _Walk:
    """Where the walk through the verified checkpoints' runs stands."""

    checkpoint: int = 0
    run: int = 0
    offset: int | None = None
    started: bool = False
    before: int = 0
    waiting_on: PartitionKey | None = None


@dataclass(frozen=True)
class _Spans:
    """One partition's offsets named by some run: sorted, merged inclusive spans ``starts[i]..ends[i]``."""

    starts: list[int]
    ends: list[int]

    def cover(self, offset: int) -> bool:
        """True when some run names ``offset``."""
        index = bisect_right(self.starts, offset) - 1
        return index >= 0 and offset <= self.ends[index]


def _coverage(runs: Iterable[LeafRun]) -> dict[PartitionKey, _Spans]:
    """Each partition's offsets named by the runs (empty or reversed runs name none)."""
    pieces: dict[PartitionKey, list[tuple[int, int]]] = {}
    for run in runs:
        if run.first_offset <= run.last_offset:
            pieces.setdefault((run.topic, run.partition), []).append((run.first_offset, run.last_offset))
    coverage: dict[PartitionKey, _Spans] = {}
    for key, spans in pieces.items():
        starts: list[int] = []
        ends: list[int] = []
        for first, last in sorted(spans):
            if ends and first <= ends[-1] + 1:
                ends[-1] = max(ends[-1], last)
            else:
                starts.append(first)
                ends.append(last)
        coverage[key] = _Spans(starts, ends)
    return coverage


def _later_firsts(runs: Sequence[LeafRun]) -> dict[PartitionKey, list[int]]:
    """Per partition, in walk order: element ``i`` is the lowest first offset of its runs from the ``i``-th on.

    Once ``i`` runs of a partition were walked, no later run names an offset below element ``i``, so its
    records there are no longer needed (runs overlap after a worker re-read a batch: records are kept then).
    """
    firsts: dict[PartitionKey, list[int]] = {}
    for run in runs:
        firsts.setdefault((run.topic, run.partition), []).append(run.first_offset)
    for offsets in firsts.values():
        for index in range(len(offsets) - 2, -1, -1):
            offsets[index] = min(offsets[index], offsets[index + 1])
    return firsts


def _verified_checkpoints(records: Iterable[SourceRecord], resolver: SigningKeyResolver, origin: str | None,
                          replay: LedgerReplay) -> list[_Verified]:
    seen: set[bytes] = set()
    verified: list[_Verified] = []
    for record in records:
        check = CheckpointCheck(position_of(record))
        replay.checkpoints.append(check)
        try:
            checkpoint = checkpoint_of(record)
        except CheckpointError as error:
            check.problems.append(f"does not parse as a checkpoint: {error}")
            continue
        check.tree_size, check.root_hash = checkpoint.tree_size, checkpoint.root_hash
        check.issued_at_us, check.previous_tree_size = checkpoint.issued_at_us, checkpoint.previous_tree_size
        check.runs = len(checkpoint.runs)
        try:
            verify_checkpoint(checkpoint, resolver, origin=origin)
        except CheckpointError as error:
            check.problems.append(f"it does not verify: {error}")
            continue
        origin = origin or checkpoint.origin
        digest = checkpoint_hash(checkpoint)
        if digest in seen:  # the same signed checkpoint published again (a retried send): counted once
            replay.checkpoints.remove(check)
            replay.republished += 1
            continue
        seen.add(digest)
        verified.append(_Verified(check, checkpoint, digest))
    verified.sort(key=lambda entry: (entry.checkpoint.tree_size, entry.checkpoint.issued_at_us, entry.check.position))
    return verified


def _read_range(bounds: LogBounds, key: PartitionKey) -> str:
    if key not in bounds.end:
        return "nothing of that partition"
    return f"offsets {bounds.start[key]}..{bounds.end[key] - 1}"
