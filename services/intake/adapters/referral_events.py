"""Referral's events as the intake worker reads them: from referral only, decoded with referral's catalogue."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from services.core.envelope import EventHeader
from services.core.events.catalogues import REFERRAL_EVENTS
from services.core.events.producers import require_producer
from services.core.identity.records import service_owner

REFERRAL_PRODUCER = service_owner("referral")


@dataclass(frozen=True)
class ReferralEvent:
    """A verified, decoded referral event: where it sits in its stream, and its payload message."""

    event_id: str
    event_type: str
    stream_id: str
    stream_sequence: int
    occurred_at_micros: int
    message: Message


def check_producer(header: EventHeader) -> None:
    """UnprocessableEvent unless referral signed it: no one else may tell intake that a handoff was accepted."""
    require_producer(header, REFERRAL_PRODUCER)


def decode_referral_event(header: EventHeader, routing_payload: bytes) -> ReferralEvent:
    """The event's message (UnprocessableEvent for another producer, an unknown type or version, bad bytes)."""
    check_producer(header)
    message = REFERRAL_EVENTS.decode(header.event_type, header.schema_version, routing_payload)
    return ReferralEvent(event_id=header.event_id, event_type=header.event_type, stream_id=header.stream_id,
                         stream_sequence=header.stream_sequence, occurred_at_micros=header.occurred_at_unix_micros,
                         message=message)
