"""Audit's ledger tables (SQLAlchemy 2.x Core): leaves, complete-subtree hashes, signed checkpoints.

``audit_leaves``: one row per leaf, in leaf order: the leaf input (the envelope's canonical hash), where the
record was read (topic, partition, offset), its header fields and the envelope as read. The primary key
(leaf_index) and the unique event id are the guards of ADR 12's one writer: a second writer appending at
the same time collides on them and fails instead of forking the tree, and an event is never a leaf twice.

``audit_nodes``: the hash of every complete subtree, node (level, node_index) covering leaves
``[node_index * 2**level, (node_index + 1) * 2**level)``, level 0 being the leaf hashes. Never updated.

``audit_checkpoints``: every signed checkpoint, as the protobuf bytes that are also published, keyed by
tree size, with its hash (what the next one links to).

The Alembic branch ``audit`` (services/audit/migrations) creates them; tests/integration/
test_audit_tree_store.py fails when the two drift.
"""

from __future__ import annotations

import sqlalchemy as sa

from services.core.eventstore.schema import NAMING_CONVENTION

AUDIT_METADATA = sa.MetaData(naming_convention=NAMING_CONVENTION)

LEAF_INDEX_CONSTRAINT = "pk_audit_leaves"
LEAF_EVENT_ID_CONSTRAINT = "uq_audit_leaves_event_id"
NODE_CONSTRAINT = "pk_audit_nodes"

# BIGINT everywhere but SQLite, where INTEGER PRIMARY KEY makes the leaf index the rowid (one B-tree, no index).
_LEAF_INDEX = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

leaves = sa.Table(
    "audit_leaves",
    AUDIT_METADATA,
    sa.Column("leaf_index", _LEAF_INDEX, primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("leaf_input", sa.LargeBinary(32), nullable=False),
    sa.Column("source_topic", sa.String(249), nullable=False),
    sa.Column("source_partition", sa.Integer, nullable=False),
    sa.Column("source_offset", sa.BigInteger, nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("stream_id", sa.String(128), nullable=False),
    sa.Column("stream_sequence", sa.BigInteger, nullable=False),
    sa.Column("producer_org", sa.String(128), nullable=False),
    sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("event_id", name=LEAF_EVENT_ID_CONSTRAINT),
)

nodes = sa.Table(
    "audit_nodes",
    AUDIT_METADATA,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("node_index", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
    sqlite_with_rowid=False,  # the (level, node_index) key is the table's only B-tree on SQLite
)

checkpoints = sa.Table(
    "audit_checkpoints",
    AUDIT_METADATA,
    sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("checkpoint_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("issued_at_us", sa.BigInteger, nullable=False),
    sa.Column("message", sa.LargeBinary, nullable=False),  # referralnet.audit.v1.Checkpoint, deterministic bytes
    sa.UniqueConstraint("checkpoint_hash", name="uq_audit_checkpoints_checkpoint_hash"),
)
