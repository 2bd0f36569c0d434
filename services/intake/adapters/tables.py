"""Intake's own tables (SQLAlchemy 2.x Core), beside the event store's and the vault's in intake's database.

They are the current state intake decides on; the subject streams in the event store are the record.
Both are written in one unit of work. No personal data is stored here: case files and justifications
exist only sealed, in the events. The Alembic branch ``intake`` (services/intake/migrations) creates them;
tests/integration/test_service_migrations.py fails when the two drift.
"""

from __future__ import annotations

import sqlalchemy as sa

from services.core.eventstore.schema import NAMING_CONVENTION

METADATA = sa.MetaData(naming_convention=NAMING_CONVENTION)

_ID = 64  # network ids (sub-/ref-/con-/rel-/hof- + 32 hex digits) and org ids (at most 32) fit

subjects = sa.Table(
    "intake_subjects",
    METADATA,
    sa.Column("subject_id", sa.String(_ID), primary_key=True),
    sa.Column("minor", sa.Boolean, nullable=False),
    sa.Column("created_by_org", sa.String(_ID), nullable=False),
    sa.Column("created_at_us", sa.BigInteger, nullable=False),
    # The latest coordinator override recorded on the subject (its consent row says whether it is in force).
    sa.Column("override_consent_id", sa.String(_ID), nullable=True),
    # Set once, when the subject was erased (its keys crypto-shredded): nothing is added or released after.
    sa.Column("erased_at_us", sa.BigInteger, nullable=True),
    sa.Column("erased_by_org", sa.String(_ID), nullable=True),
)

referrers = sa.Table(
    "intake_subject_referrers",
    METADATA,
    sa.Column("subject_id", sa.String(_ID), sa.ForeignKey("intake_subjects.subject_id"), primary_key=True),
    sa.Column("org_id", sa.String(_ID), primary_key=True),
    sa.Column("first_referral_id", sa.String(_ID), nullable=False),
    sa.Column("referred_at_us", sa.BigInteger, nullable=False),
)

# The primary key is the idempotency guard: one submission per (submitter, key), decided in the same
# transaction as the events it appends, so twenty concurrent retries make one referral.
SUBMISSION_KEY_CONSTRAINT = "pk_intake_submissions"
submissions = sa.Table(
    "intake_submissions",
    METADATA,
    sa.Column("submitter_org", sa.String(_ID), primary_key=True),
    sa.Column("idempotency_key", sa.String(128), primary_key=True),
    sa.Column("fingerprint", sa.LargeBinary(32), nullable=False),
    sa.Column("referral_id", sa.String(_ID), nullable=False),
    sa.Column("subject_id", sa.String(_ID), nullable=False),
    sa.Column("submitted_at_us", sa.BigInteger, nullable=False),
    sa.Column("response", sa.LargeBinary, nullable=False),  # the SubmitReferralResponse a retry gets again
    sa.UniqueConstraint("referral_id", name="uq_intake_submissions_referral_id"),
)

consents = sa.Table(
    "intake_consents",
    METADATA,
    sa.Column("consent_id", sa.String(_ID), primary_key=True),
    sa.Column("subject_id", sa.String(_ID), sa.ForeignKey("intake_subjects.subject_id"), nullable=False,
              index=True),
    sa.Column("recipient_role", sa.Integer, nullable=True),
    sa.Column("recipient_org", sa.String(_ID), nullable=True),
    sa.Column("purposes", sa.String(64), nullable=False),  # proto enum numbers, comma-separated
    sa.Column("categories", sa.String(64), nullable=False),
    sa.Column("given_by", sa.Integer, nullable=False),
    sa.Column("expires_at_us", sa.BigInteger, nullable=False),
    sa.Column("recorded_by_org", sa.String(_ID), nullable=False),
    sa.Column("recorded_at_us", sa.BigInteger, nullable=False),
    sa.Column("revoked_at_us", sa.BigInteger, nullable=True),
    sa.Column("revoked_by_org", sa.String(_ID), nullable=True),
    sa.CheckConstraint("(recipient_role IS NULL) <> (recipient_org IS NULL)", name="ck_intake_consents_one_recipient"),
)

handoffs = sa.Table(
    "intake_handoffs",
    METADATA,
    sa.Column("handoff_id", sa.String(_ID), primary_key=True),
    sa.Column("subject_id", sa.String(_ID), nullable=False),
    sa.Column("referral_id", sa.String(_ID), nullable=False),
    sa.Column("provider_org", sa.String(_ID), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("last_sequence", sa.BigInteger, nullable=False),  # of the referral stream: older events are stale
    sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    sa.Index("ix_intake_handoffs_subject_provider", "subject_id", "provider_org"),
)

releases = sa.Table(
    "intake_releases",
    METADATA,
    sa.Column("release_id", sa.String(_ID), primary_key=True),
    sa.Column("subject_id", sa.String(_ID), sa.ForeignKey("intake_subjects.subject_id"), nullable=False,
              index=True),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("category", sa.Integer, nullable=False),
    sa.Column("purpose", sa.Integer, nullable=False),
    sa.Column("recipient_org", sa.String(_ID), nullable=False),
    sa.Column("recipient_kem_key_id", sa.String(128), nullable=False),
    sa.Column("consent_id", sa.String(_ID), nullable=False),
    sa.Column("handoff_id", sa.String(_ID), nullable=False),
    sa.Column("released_at_us", sa.BigInteger, nullable=False),
)
