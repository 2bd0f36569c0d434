"""Which handoffs an organisation holds for a subject, as intake learns them from referral's events.

ReleaseKey needs an accepted or in-service handoff (ADR 11). The intake worker records every handoff's
latest state from referral's events: the state after each event type is below; other referral events
(ReferralOpened, ReferralEscalated, ReferralClosed, CapacityUpdated) change no handoff.
"""

from __future__ import annotations

from enum import StrEnum


class HandoffState(StrEnum):
    """The life of a handoff (like a FHIR Task): offered, then accepted / declined / expired / withdrawn..."""

    OFFERED = "offered"
    ACCEPTED = "accepted"
    IN_SERVICE = "in_service"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    COMPLETED = "completed"


ACTIVE_STATES = frozenset({HandoffState.ACCEPTED, HandoffState.IN_SERVICE})
"""The states in which the provider may obtain the subject's case-file key."""

STATE_AFTER: dict[str, HandoffState] = {
    "HandoffOffered": HandoffState.OFFERED,
    "HandoffAccepted": HandoffState.ACCEPTED,
    "ServiceStarted": HandoffState.IN_SERVICE,
    "HandoffDeclined": HandoffState.DECLINED,
    "HandoffExpired": HandoffState.EXPIRED,
    "HandoffWithdrawn": HandoffState.WITHDRAWN,
    "ServiceCompleted": HandoffState.COMPLETED,
}
"""The state a handoff is in after each referral event type that concerns one handoff."""


def is_active(state: str) -> bool:
    """Whether a handoff in ``state`` lets its provider obtain the case-file key."""
    return state in ACTIVE_STATES
