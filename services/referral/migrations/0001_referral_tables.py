"""The referral service's tables: referrals, needs, handoffs, capacity and referral_consents.

Revision ID: referral_0001
Revises: (none: the root of the ``referral`` branch)
Depends on: core_0001 (the event store's tables, in the same database)

A frozen copy of services/referral/adapters/tables.py as it was; later changes come as new revisions
(``--head referral@head``). tests/integration/test_service_migrations.py fails when the two drift.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "referral_0001"
down_revision = None
branch_labels = ("referral",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "referrals",
        sa.Column("referral_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("referrer_org", sa.String(64), nullable=False),
        sa.Column("region", sa.Integer, nullable=False),
        sa.Column("minor", sa.Boolean, nullable=False),
        sa.Column("exploitation_type", sa.Integer, nullable=False),
        sa.Column("submitted_at_us", sa.BigInteger, nullable=False),
        sa.Column("submission_event_id", sa.String(36), nullable=False),
        sa.Column("closed_at_us", sa.BigInteger, nullable=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("referral_id", name="pk_referrals"),
    )
    op.create_index("ix_referrals_subject_id", "referrals", ["subject_id"])
    op.create_table(
        "needs",
        sa.Column("referral_id", sa.String(64), nullable=False),
        sa.Column("need_index", sa.Integer, nullable=False),
        sa.Column("service_type", sa.Integer, nullable=False),
        sa.Column("urgency", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("referral_id", "need_index", name="pk_needs"),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.referral_id"], name="fk_needs_referral_id_referrals"),
    )
    op.create_index("ix_needs_state_service", "needs", ["state", "service_type", "updated_at_us"])
    op.create_table(
        "handoffs",
        sa.Column("handoff_id", sa.String(64), nullable=False),
        sa.Column("referral_id", sa.String(64), nullable=False),
        sa.Column("need_index", sa.Integer, nullable=False),
        sa.Column("provider_org", sa.String(64), nullable=False),
        sa.Column("consent_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("offered_at_us", sa.BigInteger, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.Column("decline_reason", sa.Integer, nullable=False),
        sa.Column("outcome", sa.Integer, nullable=False),
        sa.Column("withdraw_reason", sa.Integer, nullable=False),
        sa.Column("note", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("handoff_id", name="pk_handoffs"),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.referral_id"],
                                name="fk_handoffs_referral_id_referrals"),
    )
    op.create_index("ix_handoffs_inbox", "handoffs", ["provider_org", "state", "offered_at_us"])
    op.create_index("ix_handoffs_expiry", "handoffs", ["state", "expires_at_us"])
    op.create_index("ix_handoffs_referral_id", "handoffs", ["referral_id"])
    op.create_index("ix_handoffs_consent_id", "handoffs", ["consent_id"])
    op.create_table(
        "capacity",
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("service_type", sa.Integer, nullable=False),
        sa.Column("available_places", sa.Integer, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "service_type", name="pk_capacity"),
    )
    op.create_table(
        "referral_consents",
        sa.Column("consent_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("recipient_org", sa.String(64), nullable=False),
        sa.Column("recipient_role", sa.Integer, nullable=False),
        sa.Column("purposes", sa.String(64), nullable=False),
        sa.Column("categories", sa.String(64), nullable=False),
        sa.Column("given_by", sa.Integer, nullable=False),
        sa.Column("override", sa.Boolean, nullable=False),
        sa.Column("recorded_by_org", sa.String(64), nullable=False),
        sa.Column("recorded_at_us", sa.BigInteger, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=False),
        sa.Column("revoked_at_us", sa.BigInteger, nullable=True),
        sa.Column("revoked_by_org", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("consent_id", name="pk_referral_consents"),
    )
    op.create_index("ix_referral_consents_subject_id", "referral_consents", ["subject_id"])


def downgrade() -> None:
    op.drop_index("ix_referral_consents_subject_id", table_name="referral_consents")
    op.drop_table("referral_consents")
    op.drop_table("capacity")
    for index in ("ix_handoffs_consent_id", "ix_handoffs_referral_id", "ix_handoffs_expiry", "ix_handoffs_inbox"):
        op.drop_index(index, table_name="handoffs")
    op.drop_table("handoffs")
    op.drop_index("ix_needs_state_service", table_name="needs")
    op.drop_table("needs")
    op.drop_index("ix_referrals_subject_id", table_name="referrals")
    op.drop_table("referrals")
