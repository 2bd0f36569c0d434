"""The audit ledger's Merkle tree and checkpoints in SQL (SQLAlchemy; PostgreSQL in production, SQLite too).

Only complete subtrees are stored (docs/adr/0012-audit-ledger.md): appending a batch reads the O(log n)
subtrees of the current size (the compact range), hashes each new leaf and the parents it completes
(amortised two hashes a leaf) in memory and inserts the batch's leaves and nodes with one statement a table
(services/audit/adapters/bulk.py); nothing is ever updated or recomputed.
A root or a proof at any size ``m`` is assembled from the O(log m) stored subtrees it needs, read in one
query (services/audit/domain/merkle.py decides which).

Every method takes the caller's Session and runs in the caller's transaction: the worker appends leaves,
its projection and later its checkpoint in one unit of work.

One writer is assumed (ADR 12: the leaf order is one writer's). A second writer racing it cannot fork the
tree silently: both would insert the same leaf indexes (primary key) and node coordinates (primary key),
so the later one fails: TreeConflictError (PostgreSQL makes it wait for the first one's commit, then reports
the unique violation; SQLite makes it wait for the lock, then the same), or on SQLite possibly the driver's
"database is locked" OperationalError when its read snapshot went stale. After either, the caller's
transaction is unusable: roll it back. tests/integration/test_audit_tree_store.py races two writers.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.audit.adapters.bulk import insert_rows, is_in
from services.audit.adapters.tables import checkpoints, leaves, nodes
from services.audit.domain.checkpoint import Checkpoint, checkpoint_hash, encode_checkpoint, parse_checkpoint
from services.audit.domain.merkle import (
    HASH_SIZE,
    CompactRange,
    NodeId,
    TreeSizeError,
    leaf_hash,
    span_subtrees,
    tree_consistency_proof,
    tree_inclusion_proof,
    tree_root,
)

_LOOKUP_CHUNK = 500  # event ids per IN (...) on SQLite when checking which ones are leaves already
# Node look-ups per statement: a root or proof needs O(log n) (at most ~130 for 2**64 leaves); SQLite allows
# 500 terms in a compound SELECT.
_NODES_PER_QUERY = 128


class TreeStoreError(Exception):
    """The stored tree cannot do what was asked (a checkpoint that is not of this tree, missing nodes)."""


class TreeConflictError(TreeStoreError):
    """Another writer appended the same leaf indexes or event ids, or saved a checkpoint of the same size.

    The caller's transaction is unusable: roll it back (and make sure only one audit worker writes).
    """


@dataclass(frozen=True)
class LeafRecord:
    """A verified event as a leaf: its leaf input (canonical hash), where it was read, its header, its bytes."""

    event_id: str
    leaf_input: bytes
    topic: str
    partition: int
    offset: int
    event_type: str
    stream_id: str
    stream_sequence: int
    producer_org: str
    occurred_at_us: int
    envelope: bytes

    def __post_init__(self) -> None:
        if len(self.leaf_input) != HASH_SIZE:
            raise ValueError(f"a leaf input is an envelope's 32-byte canonical hash, not {len(self.leaf_input)} bytes")


@functools.lru_cache(maxsize=256)
def _point_lookups(count: int) -> sa.CompoundSelect[int, int, bytes]:
    """``count`` primary-key look-ups of audit_nodes in one statement, built once per count (kept compiled)."""
    return sa.union_all(*(
        sa.select(nodes.c.level, nodes.c.node_index, nodes.c.hash).where(
            nodes.c.level == sa.bindparam(f"l{k}"), nodes.c.node_index == sa.bindparam(f"i{k}")
        )
        for k in range(count)
    ))


class _SessionSubtrees:
    """Complete-subtree hashes read from ``audit_nodes`` through a session, many in one query."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def subtree_hashes(self, ids: Collection[NodeId]) -> dict[NodeId, bytes]:
        wanted = list(ids)
        found: dict[NodeId, bytes] = {}
        for start in range(0, len(wanted), _NODES_PER_QUERY):
            chunk = wanted[start:start + _NODES_PER_QUERY]
            params: dict[str, int] = {}
            for k, (level, index) in enumerate(chunk):
                params[f"l{k}"], params[f"i{k}"] = level, index
            for level, index, hashed in self._session.execute(_point_lookups(len(chunk)), params):
                found[(level, index)] = bytes(hashed)
        return found


_LEAF_COLUMNS = ("leaf_index", "event_id", "leaf_input", "source_topic", "source_partition", "source_offset",
                 "event_type", "stream_id", "stream_sequence", "producer_org", "occurred_at_us", "envelope")
_NODE_COLUMNS = ("level", "node_index", "hash")


def _leaf_row(index: int, record: LeafRecord) -> tuple[object, ...]:
    """A leaf's row, in the order of _LEAF_COLUMNS."""
    return (index, record.event_id, record.leaf_input, record.topic, record.partition, record.offset,
            record.event_type, record.stream_id, record.stream_sequence, record.producer_org, record.occurred_at_us,
            record.envelope)


def _leaf_record(row: sa.Row[tuple[object, ...]]) -> LeafRecord:
    values = row._mapping
    return LeafRecord(
        event_id=values["event_id"],
        leaf_input=bytes(values["leaf_input"]),
        topic=values["source_topic"],
        partition=values["source_partition"],
        offset=values["source_offset"],
        event_type=values["event_type"],
        stream_id=values["stream_id"],
        stream_sequence=values["stream_sequence"],
        producer_org=values["producer_org"],
        occurred_at_us=values["occurred_at_us"],
        envelope=bytes(values["envelope"]),
    )


class SqlTree:
    """The ledger's tree in ``audit_leaves``/``audit_nodes`` and its checkpoints in ``audit_checkpoints``."""

    def size(self, session: Session) -> int:
        """How many leaves the tree has (the primary key's maximum: no scan)."""
        top = session.execute(sa.select(sa.func.max(leaves.c.leaf_index))).scalar_one()
        return 0 if top is None else int(top) + 1

    def append(self, session: Session, records: Sequence[LeafRecord]) -> list[int]:
        """Append the records whose event id is not a leaf yet, in order; the new leaves' indexes.

        A record whose event id is already a leaf, or that repeats an event id earlier in ``records``, is
        skipped (it gets no index): the same input always gives the same leaves. TreeConflictError when
        another writer got there first.
        """
        first_of_each: dict[str, LeafRecord] = {}
        for record in records:
            first_of_each.setdefault(record.event_id, record)
        present = self._present(session, list(first_of_each))
        fresh = [record for event_id, record in first_of_each.items() if event_id not in present]
        if not fresh:
            return []
        size = self.size(session)
        compact = self._compact_range(session, size)
        leaf_rows: list[tuple[object, ...]] = []
        node_rows: list[tuple[object, ...]] = []
        for record in fresh:  # every new hash of the batch, in memory, from the right edge read above
            leaf_rows.append(_leaf_row(compact.size, record))
            node_rows.extend((level, node_index, hashed) for (level, node_index), hashed
                             in compact.append_leaf_hash(leaf_hash(record.leaf_input)))
        try:  # one statement a table for the whole batch
            insert_rows(session, leaves, _LEAF_COLUMNS, leaf_rows)
            insert_rows(session, nodes, _NODE_COLUMNS, node_rows)
        except IntegrityError as error:
            raise TreeConflictError(
                f"another writer appended to the tree at size {size}; roll back (one audit writer only)"
            ) from error
        return list(range(size, compact.size))

    def root(self, session: Session, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (all of them by default); TreeSizeError beyond the tree."""
        return tree_root(_SessionSubtrees(session), self.size(session) if size is None else size)

    def inclusion_proof(self, session: Session, index: int, size: int) -> list[bytes]:
        """The audit path of leaf ``index`` in the tree of ``size`` leaves; TreeSizeError beyond the tree."""
        return tree_inclusion_proof(_SessionSubtrees(session), index, size)

    def consistency_proof(self, session: Session, first: int, second: int) -> list[bytes]:
        """The consistency proof from size ``first`` to size ``second``; TreeSizeError beyond the tree."""
        return tree_consistency_proof(_SessionSubtrees(session), first, second)

    def leaf_index_of(self, session: Session, event_id: str) -> int | None:
        """The leaf index of an event, or None when it is not a leaf."""
        found = session.execute(sa.select(leaves.c.leaf_index).where(leaves.c.event_id == event_id)).scalar()
        return None if found is None else int(found)

    def leaf_of(self, session: Session, event_id: str) -> tuple[int, LeafRecord] | None:
        """The leaf of an event, ``(index, record)``, or None: one query (what an inclusion proof by id needs)."""
        row = session.execute(sa.select(leaves).where(leaves.c.event_id == event_id)).first()
        return None if row is None else (int(row.leaf_index), _leaf_record(row))

    def leaves(self, session: Session, start: int, limit: int) -> list[tuple[int, LeafRecord]]:
        """Up to ``limit`` leaves from index ``start``, in leaf order."""
        if limit <= 0:
            return []
        query = (
            sa.select(leaves).where(leaves.c.leaf_index >= start).order_by(leaves.c.leaf_index).limit(limit)
        )
        return [(int(row.leaf_index), _leaf_record(row)) for row in session.execute(query)]

    def save_checkpoint(self, session: Session, checkpoint: Checkpoint) -> None:
        """Store a checkpoint of this tree: its size must be reached and its root must be this tree's.

        The signature and the link to the previous checkpoint are the signer's business (verify_checkpoint,
        check_extends); this refuses a checkpoint about another tree. TreeConflictError for a second
        checkpoint of the same size.
        """
        try:
            root = self.root(session, checkpoint.tree_size)
        except TreeSizeError as error:
            raise TreeStoreError(f"a checkpoint of size {checkpoint.tree_size}: {error}") from None
        if root != checkpoint.root_hash:
            raise TreeStoreError(f"the checkpoint's root is not this tree's root at size {checkpoint.tree_size}")
        row = {
            "tree_size": checkpoint.tree_size,
            "checkpoint_hash": checkpoint_hash(checkpoint),
            "root_hash": checkpoint.root_hash,
            "issued_at_us": checkpoint.issued_at_us,
            "message": encode_checkpoint(checkpoint),
        }
        try:
            session.execute(sa.insert(checkpoints), [row])
        except IntegrityError as error:
            raise TreeConflictError(f"a checkpoint of size {checkpoint.tree_size} is stored already") from error

    def latest_checkpoint(self, session: Session) -> Checkpoint | None:
        """The checkpoint of the largest tree size, if any."""
        query = sa.select(checkpoints.c.message).order_by(checkpoints.c.tree_size.desc()).limit(1)
        message = session.execute(query).scalar()
        return None if message is None else parse_checkpoint(bytes(message))

    def checkpoint_of_size(self, session: Session, size: int) -> Checkpoint | None:
        """The checkpoint of exactly ``size`` leaves, if any."""
        query = sa.select(checkpoints.c.message).where(checkpoints.c.tree_size == size)
        message = session.execute(query).scalar()
        return None if message is None else parse_checkpoint(bytes(message))

    def _present(self, session: Session, event_ids: Sequence[str]) -> set[str]:
        """Which of ``event_ids`` are leaves already: one query (PostgreSQL: one array; SQLite: per 500 ids)."""
        present: set[str] = set()
        step = max(1, len(event_ids)) if session.get_bind().dialect.name == "postgresql" else _LOOKUP_CHUNK
        for start in range(0, len(event_ids), step):
            chunk = event_ids[start:start + step]
            query = sa.select(leaves.c.event_id).where(is_in(session, leaves.c.event_id, chunk))
            present.update(session.execute(query).scalars())
        return present

    def _compact_range(self, session: Session, size: int) -> CompactRange:
        if size == 0:
            return CompactRange()
        ids = span_subtrees(0, size)
        found = _SessionSubtrees(session).subtree_hashes(ids)
        if len(found) != len(ids):
            missing = sorted(set(ids) - set(found))
            raise TreeStoreError(f"the stored tree of {size} leaves lacks complete subtrees {missing}")
        return CompactRange.resume(size, [found[node] for node in ids])
