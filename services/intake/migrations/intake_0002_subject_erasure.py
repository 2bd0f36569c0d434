"""A subject's erasure: when and by whom it was erased (crypto-shredded), on intake_subjects.

Revision ID: intake_0002
Revises: intake_0001 (intake's tables)

A frozen copy of the change to services/intake/adapters/tables.py; later changes come as new revisions.
tests/integration/test_service_migrations.py fails when the two drift.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "intake_0002"
down_revision = "intake_0001"
branch_labels = None
depends_on = None

_ID = 64


def upgrade() -> None:
    with op.batch_alter_table("intake_subjects") as batch:
        batch.add_column(sa.Column("erased_at_us", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("erased_by_org", sa.String(_ID), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("intake_subjects") as batch:
        batch.drop_column("erased_by_org")
        batch.drop_column("erased_at_us")
