"""The notify service's tables: notify_consents, notify_handoffs, deliveries and delivery_attempts.

Revision ID: notify_0001
Revises: (none: the root of the ``notify`` branch)
Depends on: core_0001 (the event store's tables, in the same database)

A frozen copy of services/notify/adapters/tables.py as it was; later changes come as new revisions
(``--head notify@head``). tests/integration/test_service_migrations.py fails when the two drift.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "notify_0001"
down_revision = None
branch_labels = ("notify",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "notify_consents",
        sa.Column("consent_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("recipient_org", sa.String(64), nullable=False),
        sa.Column("recipient_role", sa.Integer, nullable=False),
        sa.Column("revoked_at_us", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("consent_id", name="pk_notify_consents"),
    )
    op.create_index("ix_notify_consents_subject_id", "notify_consents", ["subject_id"])
    op.create_table(
        "notify_handoffs",
        sa.Column("handoff_id", sa.String(64), nullable=False),
        sa.Column("referral_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("provider_org", sa.String(64), nullable=False),
        sa.Column("service_type", sa.Integer, nullable=False),
        sa.Column("region", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("offer_event_id", sa.String(36), nullable=False),
        sa.Column("offered_at_us", sa.BigInteger, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=False),
        sa.Column("remind_at_us", sa.BigInteger, nullable=True),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("handoff_id", name="pk_notify_handoffs"),
    )
    op.create_index("ix_notify_handoffs_remind_at_us", "notify_handoffs", ["remind_at_us"])
    op.create_index("ix_notify_handoffs_subject_id", "notify_handoffs", ["subject_id", "state"])
    op.create_table(
        "deliveries",
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("notice_key", sa.String(80), nullable=False),
        sa.Column("channel", sa.Integer, nullable=False),
        sa.Column("endpoint", sa.String(2048), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("notice_id", sa.String(64), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("notice_type", sa.Integer, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("referral_id", sa.String(64), nullable=False),
        sa.Column("service_type", sa.Integer, nullable=False),
        sa.Column("region", sa.Integer, nullable=False),
        sa.Column("deadline_us", sa.BigInteger, nullable=False),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at_us", sa.BigInteger, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=False),
        sa.Column("lease_until_us", sa.BigInteger, nullable=False),
        sa.Column("last_outcome", sa.String(64), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.Column("delivered_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_deliveries"),
        sa.UniqueConstraint("notice_key", "channel", "endpoint", name="uq_deliveries_notice_key_channel_endpoint"),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at_us"])
    op.create_index("ix_deliveries_org_id", "deliveries", ["org_id", "created_at_us", "delivery_id"])
    op.create_table(
        "delivery_attempts",
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("attempted_at_us", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", "attempt", name="pk_delivery_attempts"),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.delivery_id"],
                                name="fk_delivery_attempts_delivery_id_deliveries"),
    )


def downgrade() -> None:
    op.drop_table("delivery_attempts")
    for index in ("ix_deliveries_org_id", "ix_deliveries_due"):
        op.drop_index(index, table_name="deliveries")
    op.drop_table("deliveries")
    for index in ("ix_notify_handoffs_subject_id", "ix_notify_handoffs_remind_at_us"):
        op.drop_index(index, table_name="notify_handoffs")
    op.drop_table("notify_handoffs")
    op.drop_index("ix_notify_consents_subject_id", table_name="notify_consents")
    op.drop_table("notify_consents")
