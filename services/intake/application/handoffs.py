"""Keeping ``intake_handoffs`` from referral's events (the intake worker), for ReleaseKey to check.

Events of one handoff all live in its referral's stream, applied in stream order; a handoff's row keeps
the sequence of the last event applied, so a stale event (older than what the row has seen) changes
nothing. Referral events that concern no single handoff are ignored here.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from services.core.generated.referralnet.referral.v1 import events_pb2 as referral_events
from services.intake.adapters import repository as repo
from services.intake.adapters.referral_events import ReferralEvent
from services.intake.domain.handoffs import STATE_AFTER

_LOG = logging.getLogger(__name__)

HandoffMessage = (
    referral_events.HandoffOffered | referral_events.HandoffAccepted | referral_events.HandoffDeclined
    | referral_events.HandoffExpired | referral_events.HandoffWithdrawn | referral_events.ServiceStarted
    | referral_events.ServiceCompleted
)
"""The referral events about one handoff: each names the handoff, its referral, subject and provider."""


def apply_referral_event(session: Session, event: ReferralEvent) -> bool:
    """Apply one referral event to intake_handoffs in ``session``; True if a handoff changed."""
    state = STATE_AFTER.get(event.event_type)
    message = event.message
    if state is None or not isinstance(message, HandoffMessage):
        return False
    seen = repo.handoff_sequence(session, message.handoff_id)
    if seen is not None and seen >= event.stream_sequence:
        _LOG.info("handoff %s: event %s (sequence %d) is not newer than the one applied (%d): ignored",
                  message.handoff_id, event.event_id, event.stream_sequence, seen)
        return False
    repo.put_handoff(session, handoff_id=message.handoff_id, subject_id=message.subject_id,
                     referral_id=message.referral_id, provider_org=message.provider_org, state=state.value,
                     sequence=event.stream_sequence, at_micros=event.occurred_at_micros, exists=seen is not None)
    return True
