"""The event catalogues notify reads and writes, the producers it trusts, its stream names, sealing its events.

Notify reads only routing sections (docs/adr/0011, 0014): referral's events from ``svc:referral`` and intake's
from ``svc:intake``, each on its own stream, opened with the network routing keys. An event on either topic
signed by anyone else, on the wrong stream, of an unknown type or version, is UnprocessableEvent: the Kafka
entrypoint dead-letters it. Notify's own event, NoticeUndeliverable, goes to ``delivery-<delivery_id>``,
its payload as the routing section under the current network routing key, like referral's events.
"""

from __future__ import annotations

from google.protobuf.message import Message

from services.core.envelope import EventHeader, SectionKind
from services.core.events import EventCatalogue, UnprocessableEvent
from services.core.eventstore import NewEvent
from services.core.generated.referralnet.intake.v1 import events_pb2 as intake_events
from services.core.generated.referralnet.notify.v1 import events_pb2 as notify_events
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral_events
from services.core.identity.records import service_owner
from services.core.keyvault.routing_keys import NetworkRoutingKeys

REFERRAL_PRODUCER = service_owner("referral")
INTAKE_PRODUCER = service_owner("intake")
UNEXPECTED_PRODUCER = "unexpected_producer"
STREAM_MISMATCH = "stream_mismatch"

REFERRAL_EVENTS = EventCatalogue([
    referral_events.ReferralOpened, referral_events.HandoffOffered, referral_events.HandoffAccepted,
    referral_events.HandoffDeclined, referral_events.HandoffExpired, referral_events.HandoffWithdrawn,
    referral_events.ServiceStarted, referral_events.ServiceCompleted, referral_events.ReferralEscalated,
    referral_events.ReferralClosed, referral_events.CapacityUpdated,
])
"""Referral's events (``referralnet.referral.events.v1``), schema version 1."""

INTAKE_EVENTS = EventCatalogue([
    intake_events.ConsentRecorded, intake_events.ConsentOverrideRecorded, intake_events.ConsentRevoked,
    intake_events.ReferralSubmitted, intake_events.KeyReleased, intake_events.SubjectErased,
])
"""Intake's events (``referralnet.intake.events.v1``), schema version 1: only their routing sections."""

NOTIFY_EVENTS = EventCatalogue([notify_events.NoticeUndeliverable])
"""What notify publishes on ``referralnet.notify.events.v1`` (schema version 1)."""


def delivery_stream(delivery_id: str) -> str:
    """The stream of a delivery's events: ``delivery-<delivery_id>``."""
    return f"delivery-{delivery_id}"


def sealed_event(message: Message, keys: NetworkRoutingKeys, occurred_at: int) -> NewEvent:
    """A notify event to append: ``message`` as its routing section under the current routing key."""
    event_type, schema_version, payload = NOTIFY_EVENTS.encode(message)
    return NewEvent(event_type=event_type, schema_version=schema_version,
                    sections={SectionKind.ROUTING: (keys.current(), payload)}, occurred_at_unix_micros=occurred_at)


def check_producer(header: EventHeader, producer: str) -> None:
    """UnprocessableEvent unless ``producer`` signed the event: no one else may speak for that service."""
    if header.producer_org != producer:
        msg = f"event {header.event_id}: produced by {header.producer_org}, not by {producer}"
        raise UnprocessableEvent(UNEXPECTED_PRODUCER, msg)


def decode_referral_event(header: EventHeader, routing_payload: bytes) -> Message:
    """A referral event's message, checked to come from ``svc:referral`` and to sit on its own stream."""
    check_producer(header, REFERRAL_PRODUCER)
    message = REFERRAL_EVENTS.decode(header.event_type, header.schema_version, routing_payload)
    if isinstance(message, referral_events.CapacityUpdated):
        expected = f"capacity-{message.org_id}"
    else:
        expected = f"referral-{getattr(message, 'referral_id', '')}"
    _check_stream(header, expected)
    return message


def decode_intake_event(header: EventHeader, routing_payload: bytes) -> Message:
    """An intake event's message, checked to come from ``svc:intake`` and to sit on its subject's stream."""
    check_producer(header, INTAKE_PRODUCER)
    message = INTAKE_EVENTS.decode(header.event_type, header.schema_version, routing_payload)
    _check_stream(header, f"subject-{getattr(message, 'subject_id', '')}")
    return message


def _check_stream(header: EventHeader, expected: str) -> None:
    if header.stream_id != expected or expected.endswith("-"):
        msg = f"event {header.event_id}: stream {header.stream_id} is not the stream its payload names"
        raise UnprocessableEvent(STREAM_MISMATCH, msg)
