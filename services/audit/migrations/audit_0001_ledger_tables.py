"""Audit's ledger tables: leaves, complete-subtree hashes, signed checkpoints.

Revision ID: audit_0001
Revises: (none: the root of the ``audit`` branch)
Depends on: core_0001 (the event store's and key vault's tables, in the same database)

A frozen copy of the ledger tables of services/audit/adapters/tables.py as they were; later changes come as
new revisions (``--head audit@head``). tests/integration/test_audit_tree_store.py fails when the two drift.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "audit_0001"
down_revision = None
branch_labels = ("audit",)
depends_on = "core_0001"

_LEAF_INDEX = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_leaves",
        sa.Column("leaf_index", _LEAF_INDEX, nullable=False, autoincrement=False),
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
        sa.PrimaryKeyConstraint("leaf_index", name="pk_audit_leaves"),
        sa.UniqueConstraint("event_id", name="uq_audit_leaves_event_id"),
    )
    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.SmallInteger, nullable=False, autoincrement=False),
        sa.Column("node_index", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("level", "node_index", name="pk_audit_nodes"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("tree_size", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("checkpoint_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("issued_at_us", sa.BigInteger, nullable=False),
        sa.Column("message", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name="pk_audit_checkpoints"),
        sa.UniqueConstraint("checkpoint_hash", name="uq_audit_checkpoints_checkpoint_hash"),
    )


def downgrade() -> None:
    for table in ("audit_checkpoints", "audit_nodes", "audit_leaves"):
        op.drop_table(table)
