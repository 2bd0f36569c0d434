"""The notify service's own tables (SQLAlchemy Core), in its own database beside the event store's.

- ``notify_consents``: whom each consent named (org or role), from intake's ConsentRecorded, and when it was
  revoked: what a ConsentRevoked needs to find the providers to tell.
- ``notify_handoffs``: each handoff offered, from referral's events (state, deadline, the stream sequence of
  the last event applied) and ``remind_at_us``, the persisted reminder time (NULL once reminded, or when the
  offer was answered, expired or withdrawn).
- ``deliveries``: one row per (notice key, channel, endpoint), the unique constraint that makes a notice go
  out once per event and endpoint however often its event is redelivered; the notice's facts (ADR 14: never
  anything else), status, attempts, next attempt, and a lease (owner, until) that one dispatcher at a time
  holds while it sends.
- ``delivery_attempts``: every try, with its outcome.

Routing facts and endpoints only: no personal data is ever stored here. The Alembic branch ``notify``
(services/notify/migrations) creates them; a test compares the two.
"""

from __future__ import annotations

import sqlalchemy as sa

from services.core.eventstore.schema import NAMING_CONVENTION
from services.core.identity.records import WEBHOOK_URL_MAX

METADATA = sa.MetaData(naming_convention=NAMING_CONVENTION)

_ID = 64  # "ref-" / "hof-" / "sub-" / "con-" / "dlv-" + 32 hex digits, with room to spare
_ORG = 64
_EVENT_ID = 36
NOTICE_KEY_CHARS = 80  # an event id, or "reminder:<handoff id>"
ENDPOINT_CHARS = WEBHOOK_URL_MAX  # a webhook URL (2048 at most) or an e-mail address (254)
OUTCOME_CHARS = 64

notify_consents = sa.Table(
    "notify_consents",
    METADATA,
    sa.Column("consent_id", sa.String(_ID), primary_key=True),
    sa.Column("subject_id", sa.String(_ID), nullable=False),
    sa.Column("recipient_org", sa.String(_ORG), nullable=False),  # "" when the consent names a role
    sa.Column("recipient_role", sa.Integer, nullable=False),  # 0 when it names an org
    sa.Column("revoked_at_us", sa.BigInteger, nullable=True),
    sa.Index("ix_notify_consents_subject_id", "subject_id"),
)

notify_handoffs = sa.Table(
    "notify_handoffs",
    METADATA,
    sa.Column("handoff_id", sa.String(_ID), primary_key=True),
    sa.Column("referral_id", sa.String(_ID), nullable=False),
    sa.Column("subject_id", sa.String(_ID), nullable=False),
    sa.Column("provider_org", sa.String(_ORG), nullable=False),
    sa.Column("service_type", sa.Integer, nullable=False),
    sa.Column("region", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("offer_event_id", sa.String(_EVENT_ID), nullable=False),
    sa.Column("offered_at_us", sa.BigInteger, nullable=False),
    sa.Column("expires_at_us", sa.BigInteger, nullable=False),
    sa.Column("remind_at_us", sa.BigInteger, nullable=True),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    sa.Index("ix_notify_handoffs_remind_at_us", "remind_at_us"),
    sa.Index("ix_notify_handoffs_subject_id", "subject_id", "state"),
)

deliveries = sa.Table(
    "deliveries",
    METADATA,
    sa.Column("delivery_id", sa.String(_ID), primary_key=True),
    sa.Column("notice_key", sa.String(NOTICE_KEY_CHARS), nullable=False),
    sa.Column("channel", sa.Integer, nullable=False),  # notify.v1 Channel
    sa.Column("endpoint", sa.String(ENDPOINT_CHARS), nullable=False),
    sa.Column("org_id", sa.String(_ORG), nullable=False),
    sa.Column("notice_id", sa.String(_ID), nullable=False),  # shared by one notice's channels to one org
    sa.Column("language", sa.String(2), nullable=False),
    sa.Column("notice_type", sa.Integer, nullable=False),
    sa.Column("event_id", sa.String(_EVENT_ID), nullable=False),
    sa.Column("reference", sa.String(_ID), nullable=False),
    sa.Column("referral_id", sa.String(_ID), nullable=False),
    sa.Column("service_type", sa.Integer, nullable=False),
    sa.Column("region", sa.Integer, nullable=False),
    sa.Column("deadline_us", sa.BigInteger, nullable=False),
    sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at_us", sa.BigInteger, nullable=False),  # 0 once delivered or failed
    sa.Column("lease_owner", sa.String(_ID), nullable=False),  # "" when no dispatcher holds it
    sa.Column("lease_until_us", sa.BigInteger, nullable=False),
    sa.Column("last_outcome", sa.String(OUTCOME_CHARS), nullable=False),
    sa.Column("created_at_us", sa.BigInteger, nullable=False),
    sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    sa.Column("delivered_at_us", sa.BigInteger, nullable=False),  # 0 while not delivered
    sa.UniqueConstraint("notice_key", "channel", "endpoint"),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at_us"),
    sa.Index("ix_deliveries_org_id", "org_id", "created_at_us", "delivery_id"),
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    METADATA,
    sa.Column("delivery_id", sa.String(_ID), sa.ForeignKey("deliveries.delivery_id"), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("attempted_at_us", sa.BigInteger, nullable=False),
    sa.Column("outcome", sa.String(OUTCOME_CHARS), nullable=False),
)
