"""An event whose payload is its routing section, sealed under the network's current routing key (ADR 11).

Referral's and notify's events are all of this shape: the network's services and auditors read them with
the network routing keys, and no subject key is involved.
"""

from __future__ import annotations

from google.protobuf.message import Message

from services.core.envelope import SectionKind
from services.core.events.codec import EventCatalogue
from services.core.eventstore import NewEvent
from services.core.keyvault.routing_keys import NetworkRoutingKeys


def routing_sealed_event(catalogue: EventCatalogue, message: Message, keys: NetworkRoutingKeys,
                         occurred_at: int) -> NewEvent:
    """``message`` (encoded with ``catalogue``) as a new event's routing section under the current routing key."""
    event_type, schema_version, payload = catalogue.encode(message)
    return NewEvent(event_type=event_type, schema_version=schema_version,
                    sections={SectionKind.ROUTING: (keys.current(), payload)}, occurred_at_unix_micros=occurred_at)
