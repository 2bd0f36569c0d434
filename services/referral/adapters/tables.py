"""The referral service's own tables (SQLAlchemy Core), in its own database beside the event store's.

They are the current state of what the referral streams say, written in the same transaction as the
events (so they never disagree): ``referrals`` (with the stream version they reflect), ``needs``,
``handoffs`` (indexed for a provider's inbox and for the expiry timer), providers' ``capacity``, and
``referral_consents`` (the consents intake's events told us about, for routing). Routing facts only: no
personal data is ever stored here. The Alembic branch ``referral`` (services/referral/migrations) creates
them; a test compares the two.
"""

from __future__ import annotations

import sqlalchemy as sa

from services.core.eventstore.schema import NAMING_CONVENTION

METADATA = sa.MetaData(naming_convention=NAMING_CONVENTION)

_ID = 64  # "ref-" / "hof-" / "sub-" / "con-" + 32 hex digits, with room to spare
_ORG = 64

referrals = sa.Table(
    "referrals",
    METADATA,
    sa.Column("referral_id", sa.String(_ID), primary_key=True),
    sa.Column("subject_id", sa.String(_ID), nullable=False),
    sa.Column("referrer_org", sa.String(_ORG), nullable=False),
    sa.Column("region", sa.Integer, nullable=False),
    sa.Column("minor", sa.Boolean, nullable=False),
    sa.Column("exploitation_type", sa.Integer, nullable=False),
    sa.Column("submitted_at_us", sa.BigInteger, nullable=False),
    sa.Column("submission_event_id", sa.String(36), nullable=False),
    sa.Column("closed_at_us", sa.BigInteger, nullable=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Index("ix_referrals_subject_id", "subject_id"),
)

needs = sa.Table(
    "needs",
    METADATA,
    sa.Column("referral_id", sa.String(_ID), sa.ForeignKey("referrals.referral_id"), primary_key=True),
    sa.Column("need_index", sa.Integer, primary_key=True),
    sa.Column("service_type", sa.Integer, nullable=False),
    sa.Column("urgency", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    # escalated needs of a service type, oldest first (what a capacity update re-routes)
    sa.Index("ix_needs_state_service", "state", "service_type", "updated_at_us"),
)

handoffs = sa.Table(
    "handoffs",
    METADATA,
    sa.Column("handoff_id", sa.String(_ID), primary_key=True),
    sa.Column("referral_id", sa.String(_ID), sa.ForeignKey("referrals.referral_id"), nullable=False),
    sa.Column("need_index", sa.Integer, nullable=False),
    sa.Column("provider_org", sa.String(_ORG), nullable=False),
    sa.Column("consent_id", sa.String(_ID), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("offered_at_us", sa.BigInteger, nullable=False),
    sa.Column("expires_at_us", sa.BigInteger, nullable=False),
    sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    sa.Column("decline_reason", sa.Integer, nullable=False),
    sa.Column("outcome", sa.Integer, nullable=False),
    sa.Column("withdraw_reason", sa.Integer, nullable=False),
    sa.Column("note", sa.String(500), nullable=False),
    sa.Index("ix_handoffs_inbox", "provider_org", "state", "offered_at_us"),
    sa.Index("ix_handoffs_expiry", "state", "expires_at_us"),
    sa.Index("ix_handoffs_referral_id", "referral_id"),
    sa.Index("ix_handoffs_consent_id", "consent_id"),
)

capacity = sa.Table(
    "capacity",
    METADATA,
    sa.Column("org_id", sa.String(_ORG), primary_key=True),
    sa.Column("service_type", sa.Integer, primary_key=True),
    sa.Column("available_places", sa.Integer, nullable=False),
    sa.Column("updated_at_us", sa.BigInteger, nullable=False),
)

referral_consents = sa.Table(
    "referral_consents",
    METADATA,
    sa.Column("consent_id", sa.String(_ID), primary_key=True),
    sa.Column("subject_id", sa.String(_ID), nullable=False),
    sa.Column("recipient_org", sa.String(_ORG), nullable=False),  # "" when the consent names a role
    sa.Column("recipient_role", sa.Integer, nullable=False),  # 0 when it names an org
    sa.Column("purposes", sa.String(64), nullable=False),  # Purpose numbers, comma-separated, ascending
    sa.Column("categories", sa.String(64), nullable=False),  # DataCategory numbers, likewise
    sa.Column("given_by", sa.Integer, nullable=False),
    sa.Column("override", sa.Boolean, nullable=False),
    sa.Column("recorded_by_org", sa.String(_ORG), nullable=False),
    sa.Column("recorded_at_us", sa.BigInteger, nullable=False),
    sa.Column("expires_at_us", sa.BigInteger, nullable=False),
    sa.Column("revoked_at_us", sa.BigInteger, nullable=True),
    sa.Column("revoked_by_org", sa.String(_ORG), nullable=True),
    sa.Index("ix_referral_consents_subject_id", "subject_id"),
)
