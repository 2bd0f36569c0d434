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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.audit.application.records import SourceRecord
from services.audit.domain.checkpoint import (
    Checkpoint,
    CheckpointError,
    check_extends,
    checkpoint_hash,
    parse_checkpoint,
    verify_checkpoint,
)
from services.audit.domain.merkle import EMPTY_ROOT, CompactRange
from services.audit.replay.examine import Examined
from services.audit.replay.log_reader import LogBounds, Position, position_name, position_of
from services.core.envelope import SigningKeyResolver

CHECKPOINT_INCONSISTENT = "checkpoint_inconsistent"


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
    """The recomputed ledger: the tree up to the newest checkpoint and what was found on the way."""

    checkpoints: list[CheckpointCheck] = field(default_factory=list)
    tree_size: int = 0
    root: bytes = EMPTY_ROOT
    leaves: list[Examined] = field(default_factory=list)
    covered: set[Position] = field(default_factory=set)
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


def replay_ledger(checkpoint_records: Iterable[SourceRecord], examined: Mapping[Position, Examined],
                  bounds: LogBounds, resolver: SigningKeyResolver, *, origin: str | None = None) -> LedgerReplay:
    """Verify the checkpoints, replay their runs over the examined records, compare every root (see module doc).

    ``examined`` holds every source record read, by position; ``bounds`` says which offsets were read, so a
    run naming an offset outside them is reported (records the log no longer has, or a topic not read).
    ``origin`` is the expected ``<network_id>/audit/v1``; None accepts the origin of the first checkpoint.
    """
    replay = LedgerReplay()
    verified = _verified_checkpoints(checkpoint_records, resolver, origin, replay)
    builder = _TreeBuilder(examined, bounds, replay)
    tree = builder.tree
    previous: Checkpoint | None = None
    for entry in verified:
        check, checkpoint = entry.check, entry.checkpoint
        check.in_chain = True
        before = tree.size
        for run in checkpoint.runs:
            builder.replay_run(run.topic, run.partition, (run.first_offset, run.last_offset), check)
        check.leaves = tree.size - before
        try:
            check_extends(previous, checkpoint, check.leaves)
        except CheckpointError as error:
            check.problems.append(f"does not extend the previous checkpoint: {error}")
        check.recomputed_root = tree.root()
        if tree.size != checkpoint.tree_size:
            check.problems.append(f"its runs give {tree.size} leaves in all, not its tree size {checkpoint.tree_size}")
        elif check.recomputed_root != checkpoint.root_hash:
            check.problems.append(f"root {checkpoint.root_hash.hex()} differs from the recomputed root "
                                  f"{check.recomputed_root.hex()} at size {tree.size}")
        previous = checkpoint
    replay.tree_size, replay.root = tree.size, tree.root()
    return replay


def pending(examined: Mapping[Position, Examined], replay: LedgerReplay) -> list[Examined]:
    """The source records read that no verified checkpoint's run covers, in read order (not a leaf order).

    Dead letters are never in a run (they are never leaves), so they are never pending.
    """
    return [entry for position, entry in examined.items()
            if position not in replay.covered and entry.dead_letter is None]


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


class _TreeBuilder:
    """Appends the leaves of runs to one CompactRange with the worker's rules, counting what is not a leaf."""

    def __init__(self, examined: Mapping[Position, Examined], bounds: LogBounds, replay: LedgerReplay) -> None:
        self.tree = CompactRange()
        self._examined = examined
        self._bounds = bounds
        self._replay = replay
        self._leaf_ids: set[str] = set()

    def replay_run(self, topic: str, partition: int, offsets: tuple[int, int], check: CheckpointCheck) -> None:
        """Walk ``topic[partition]`` from the first to the last offset (inclusive), appending its leaves."""
        first, last = offsets
        if first > last:
            check.problems.append(f"run {topic}[{partition}] {first}..{last} is empty or reversed")
            return
        if not (self._bounds.holds(topic, partition, first) and self._bounds.holds(topic, partition, last)):
            check.problems.append(f"run {topic}[{partition}] {first}..{last} names records this replay could not "
                                  f"read (read {_read_range(self._bounds, topic, partition)})")
        replay = self._replay
        for offset in range(first, last + 1):
            position = (topic, partition, offset)
            entry = self._examined.get(position)
            if entry is None:  # not read (reported above), or an offset held by a transaction marker
                continue
            replay.covered.add(position)
            if entry.dead_letter is not None:  # the worker never makes a dead letter a leaf
                check.problems.append(f"run {topic}[{partition}] {first}..{last} names a dead-letter topic")
                return
            if entry.leaf_input is None or entry.event_id is None:
                check.rejected += 1
                replay.rejected += 1
            elif entry.event_id in self._leaf_ids:
                check.duplicates += 1
                replay.duplicates += 1
            else:
                self._leaf_ids.add(entry.event_id)
                self.tree.append(entry.leaf_input)
                replay.leaves.append(entry)


def _read_range(bounds: LogBounds, topic: str, partition: int) -> str:
    key = (topic, partition)
    if key not in bounds.end:
        return "nothing of that partition"
    return f"offsets {bounds.start[key]}..{bounds.end[key] - 1}"
