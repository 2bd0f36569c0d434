"""Who may speak for a service: an event on a service's topic must be signed by that service's own key.

Every consumer of another service's topic checks it (intake reads referral's, referral reads intake's, notify
reads both, audit reads all): the envelope proves who signed, this refuses anyone but the expected producer.
"""

from __future__ import annotations

from services.core.envelope import EventHeader
from services.core.events.errors import UnprocessableEvent

UNEXPECTED_PRODUCER = "unexpected_producer"
"""The UnprocessableEvent reason (dead-letter reason, audit rejection) for an event from another producer."""


def require_producer(header: EventHeader, producer: str) -> None:
    """UnprocessableEvent(``unexpected_producer``) unless ``producer`` (``svc:<service>``) signed the event."""
    if header.producer_org != producer:
        msg = f"event {header.event_id}: produced by {header.producer_org}, not by {producer}"
        raise UnprocessableEvent(UNEXPECTED_PRODUCER, msg)
