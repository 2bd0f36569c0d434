"""Which stream an event sits on: the one name every service gives a stream, and the check consumers make.

An event's header names its stream (``subject-<id>``, ``referral-<id>``, ``capacity-<org>``) and its payload
names the subject, referral or organisation; a consumer applying another service's event refuses one whose
stream is not the one its payload names (a producer bug, or a replayed event moved to another stream).
"""

from __future__ import annotations

from services.core.envelope import EventHeader
from services.core.events.errors import UnprocessableEvent

STREAM_MISMATCH = "stream_mismatch"
"""The UnprocessableEvent reason (dead-letter reason) for an event whose stream is not its payload's."""


def subject_stream(subject_id: str) -> str:
    """Intake's stream of a subject's events: ``subject-<subject_id>``."""
    return f"subject-{subject_id}"


def referral_stream(referral_id: str) -> str:
    """Referral's stream of a referral's events: ``referral-<referral_id>``."""
    return f"referral-{referral_id}"


def capacity_stream(org_id: str) -> str:
    """Referral's stream of a provider's capacity updates: ``capacity-<org_id>``."""
    return f"capacity-{org_id}"


def require_stream(header: EventHeader, expected: str) -> None:
    """UnprocessableEvent(``stream_mismatch``) unless the event sits on ``expected``, the stream its payload names.

    A stream naming no id (``subject-``: the payload names none) never matches.
    """
    if header.stream_id != expected or expected.endswith("-"):
        msg = f"event {header.event_id}: stream {header.stream_id} is not the stream its payload names"
        raise UnprocessableEvent(STREAM_MISMATCH, msg)
