"""Intake's tables: subjects and their referrers, submissions (idempotency), consents, handoffs, releases.

Revision ID: intake_0001
Revises: (none: the root of the ``intake`` branch; depends on core_0001)

A frozen copy of services/intake/adapters/tables.py as it was; later changes come as new revisions.
tests/integration/test_service_migrations.py fails when the two drift.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "intake_0001"
down_revision = None
branch_labels = ("intake",)
depends_on = "core_0001"

_ID = 64


def upgrade() -> None:
    _subjects()
    _submissions()
    _consents()
    _handoffs_and_releases()


def downgrade() -> None:
    op.drop_index("ix_intake_releases_subject_id", table_name="intake_releases")
    op.drop_table("intake_releases")
    op.drop_index("ix_intake_handoffs_subject_provider", table_name="intake_handoffs")
    op.drop_table("intake_handoffs")
    op.drop_index("ix_intake_consents_subject_id", table_name="intake_consents")
    for table in ("intake_consents", "intake_submissions", "intake_subject_referrers", "intake_subjects"):
        op.drop_table(table)


def _subjects() -> None:
    op.create_table(
        "intake_subjects",
        sa.Column("subject_id", sa.String(_ID), nullable=False),
        sa.Column("minor", sa.Boolean, nullable=False),
        sa.Column("created_by_org", sa.String(_ID), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("override_consent_id", sa.String(_ID), nullable=True),
        sa.PrimaryKeyConstraint("subject_id", name="pk_intake_subjects"),
    )
    op.create_table(
        "intake_subject_referrers",
        sa.Column("subject_id", sa.String(_ID), nullable=False),
        sa.Column("org_id", sa.String(_ID), nullable=False),
        sa.Column("first_referral_id", sa.String(_ID), nullable=False),
        sa.Column("referred_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "org_id", name="pk_intake_subject_referrers"),
        sa.ForeignKeyConstraint(["subject_id"], ["intake_subjects.subject_id"],
                                name="fk_intake_subject_referrers_subject_id_intake_subjects"),
    )


def _submissions() -> None:
    op.create_table(
        "intake_submissions",
        sa.Column("submitter_org", sa.String(_ID), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(32), nullable=False),
        sa.Column("referral_id", sa.String(_ID), nullable=False),
        sa.Column("subject_id", sa.String(_ID), nullable=False),
        sa.Column("submitted_at_us", sa.BigInteger, nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("submitter_org", "idempotency_key", name="pk_intake_submissions"),
        sa.UniqueConstraint("referral_id", name="uq_intake_submissions_referral_id"),
    )


def _consents() -> None:
    op.create_table(
        "intake_consents",
        sa.Column("consent_id", sa.String(_ID), nullable=False),
        sa.Column("subject_id", sa.String(_ID), nullable=False),
        sa.Column("recipient_role", sa.Integer, nullable=True),
        sa.Column("recipient_org", sa.String(_ID), nullable=True),
        sa.Column("purposes", sa.String(64), nullable=False),
        sa.Column("categories", sa.String(64), nullable=False),
        sa.Column("given_by", sa.Integer, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=False),
        sa.Column("recorded_by_org", sa.String(_ID), nullable=False),
        sa.Column("recorded_at_us", sa.BigInteger, nullable=False),
        sa.Column("revoked_at_us", sa.BigInteger, nullable=True),
        sa.Column("revoked_by_org", sa.String(_ID), nullable=True),
        sa.PrimaryKeyConstraint("consent_id", name="pk_intake_consents"),
        sa.ForeignKeyConstraint(["subject_id"], ["intake_subjects.subject_id"],
                                name="fk_intake_consents_subject_id_intake_subjects"),
        sa.CheckConstraint("(recipient_role IS NULL) <> (recipient_org IS NULL)",
                           name="ck_intake_consents_one_recipient"),
    )
    op.create_index("ix_intake_consents_subject_id", "intake_consents", ["subject_id"])


def _handoffs_and_releases() -> None:
    op.create_table(
        "intake_handoffs",
        sa.Column("handoff_id", sa.String(_ID), nullable=False),
        sa.Column("subject_id", sa.String(_ID), nullable=False),
        sa.Column("referral_id", sa.String(_ID), nullable=False),
        sa.Column("provider_org", sa.String(_ID), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("last_sequence", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("handoff_id", name="pk_intake_handoffs"),
    )
    op.create_index("ix_intake_handoffs_subject_provider", "intake_handoffs", ["subject_id", "provider_org"])
    op.create_table(
        "intake_releases",
        sa.Column("release_id", sa.String(_ID), nullable=False),
        sa.Column("subject_id", sa.String(_ID), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("category", sa.Integer, nullable=False),
        sa.Column("purpose", sa.Integer, nullable=False),
        sa.Column("recipient_org", sa.String(_ID), nullable=False),
        sa.Column("recipient_kem_key_id", sa.String(128), nullable=False),
        sa.Column("consent_id", sa.String(_ID), nullable=False),
        sa.Column("handoff_id", sa.String(_ID), nullable=False),
        sa.Column("released_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("release_id", name="pk_intake_releases"),
        sa.ForeignKeyConstraint(["subject_id"], ["intake_subjects.subject_id"],
                                name="fk_intake_releases_subject_id_intake_subjects"),
    )
    op.create_index("ix_intake_releases_subject_id", "intake_releases", ["subject_id"])
