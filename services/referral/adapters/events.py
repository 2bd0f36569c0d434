"""The event catalogues the referral service writes and reads, its stream names, and sealing its events.

Every referral event's payload is its routing section, sealed under the current network routing key
(docs/adr/0011): notify, audit and the auditors read it without any subject key. Intake's events are read
the same way: only their routing sections, with the network routing keys.
"""

from __future__ import annotations

from google.protobuf.message import Message

from services.core.events.catalogues import REFERRAL_EVENTS
from services.core.events.routing import routing_sealed_event
from services.core.eventstore import NewEvent
from services.core.keyvault.routing_keys import NetworkRoutingKeys


def sealed_event(message: Message, keys: NetworkRoutingKeys, occurred_at: int) -> NewEvent:
    """A referral event to append: ``message`` as its routing section under the current routing key."""
    return routing_sealed_event(REFERRAL_EVENTS, message, keys, occurred_at)
