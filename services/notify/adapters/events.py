"""The event catalogues notify reads and writes, the producers it trusts, its stream names, sealing its events.

Notify reads only routing sections (docs/adr/0011, 0014): referral's events from ``svc:referral`` and intake's
from ``svc:intake``, each on its own stream, opened with the network routing keys. An event on either topic
signed by anyone else, on the wrong stream, of an unknown type or version, is UnprocessableEvent: the Kafka
entrypoint dead-letters it. Notify's own event, NoticeUndeliverable, goes to ``delivery-<delivery_id>``,
its payload as the routing section under the current network routing key, like referral's events.
"""

from __future__ import annotations

from google.protobuf.message import Message

from services.core.envelope import EventHeader
from services.core.events.catalogues import INTAKE_EVENTS, NOTIFY_EVENTS, REFERRAL_EVENTS
from services.core.events.producers import require_producer
from services.core.events.routing import routing_sealed_event
from services.core.events.streams import capacity_stream, referral_stream, require_stream, subject_stream
from services.core.eventstore import NewEvent
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral_events
from services.core.identity.records import service_owner
from services.core.keyvault.routing_keys import NetworkRoutingKeys

REFERRAL_PRODUCER = service_owner("referral")
INTAKE_PRODUCER = service_owner("intake")


def delivery_stream(delivery_id: str) -> str:
    """The stream of a delivery's events: ``delivery-<delivery_id>``."""
    return f"delivery-{delivery_id}"


def sealed_event(message: Message, keys: NetworkRoutingKeys, occurred_at: int) -> NewEvent:
    """A notify event to append: ``message`` as its routing section under the current routing key."""
    return routing_sealed_event(NOTIFY_EVENTS, message, keys, occurred_at)


def decode_referral_event(header: EventHeader, routing_payload: bytes) -> Message:
    """A referral event's message, checked to come from ``svc:referral`` and to sit on its own stream."""
    require_producer(header, REFERRAL_PRODUCER)
    message = REFERRAL_EVENTS.decode(header.event_type, header.schema_version, routing_payload)
    if isinstance(message, referral_events.CapacityUpdated):
        require_stream(header, capacity_stream(message.org_id))
    else:
        require_stream(header, referral_stream(getattr(message, "referral_id", "")))
    return message


def decode_intake_event(header: EventHeader, routing_payload: bytes) -> Message:
    """An intake event's message, checked to come from ``svc:intake`` and to sit on its subject's stream."""
    require_producer(header, INTAKE_PRODUCER)
    message = INTAKE_EVENTS.decode(header.event_type, header.schema_version, routing_payload)
    require_stream(header, subject_stream(getattr(message, "subject_id", "")))
    return message
