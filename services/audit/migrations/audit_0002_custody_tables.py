"""The audit worker's bookkeeping: pending runs, rejections, dead letters, subject index, publications.

Revision ID: audit_0002
Revises: audit_0001 (the ledger tables)

A frozen copy of services/audit/adapters/custody_tables.py as it was; later changes come as new revisions.
tests/unit/test_audit_application.py fails when the two drift.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "audit_0002"
down_revision = "audit_0001"
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_pending_runs",
        sa.Column("run_id", _ROW_ID, nullable=False, autoincrement=True),
        sa.Column("source_topic", sa.String(249), nullable=False),
        sa.Column("source_partition", sa.Integer, nullable=False),
        sa.Column("first_offset", sa.BigInteger, nullable=False),
        sa.Column("last_offset", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_audit_pending_runs"),
    )
    op.create_table(
        "audit_rejections",
        sa.Column("source_topic", sa.String(249), nullable=False),
        sa.Column("source_partition", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("source_offset", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("event_id", sa.String(128), nullable=True),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(512), nullable=False),
        sa.Column("recorded_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("source_topic", "source_partition", "source_offset", name="pk_audit_rejections"),
    )
    op.create_table(
        "audit_dead_letters",
        sa.Column("source_topic", sa.String(249), nullable=False),
        sa.Column("source_partition", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("source_offset", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("event_id", sa.String(128), nullable=True),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=True),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=True),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("error", sa.String(512), nullable=False),
        sa.Column("consumer", sa.String(128), nullable=False),
        sa.Column("original_topic", sa.String(249), nullable=False),
        sa.Column("original_partition", sa.Integer, nullable=False),
        sa.Column("original_offset", sa.BigInteger, nullable=False),
        sa.Column("recorded_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("source_topic", "source_partition", "source_offset", name="pk_audit_dead_letters"),
    )
    op.create_table(
        "audit_subject_leaves",
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("leaf_index", sa.BigInteger, nullable=False, autoincrement=False),
        sa.PrimaryKeyConstraint("subject_id", "leaf_index", name="pk_audit_subject_leaves"),
    )
    op.create_table(
        "audit_checkpoint_publications",
        sa.Column("tree_size", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("published_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name="pk_audit_checkpoint_publications"),
    )


def downgrade() -> None:
    for table in ("audit_checkpoint_publications", "audit_subject_leaves", "audit_dead_letters", "audit_rejections",
                  "audit_pending_runs"):
        op.drop_table(table)
