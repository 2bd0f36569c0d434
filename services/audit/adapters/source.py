"""What the ledger reads: which topics carry which event catalogue, and decoding a verified event's payload.

The one place that knows the source services: intake's events (``referralnet.intake.events.v1``,
services/intake/adapters/events.py), referral's (``referralnet.referral.events.v1``,
services/referral/adapters/events.py) and notify's (``referralnet.notify.events.v1``: NoticeUndeliverable,
services/notify/adapters/events.py). An event is decoded with the catalogue of its header's
``producer_service``, and only when its producer is that service itself (``svc:<service>``): an
organisation's key never speaks for a network service. Routing sections are opened with the network
routing keys (ADR 11); case files are never opened here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from google.protobuf.message import Message

from services.core.envelope import EventHeader, Opener, SectionKind, VerifiedEnvelope
from services.core.events import EventCatalogue, UnprocessableEvent
from services.core.events.catalogues import INTAKE_EVENTS, NOTIFY_EVENTS, REFERRAL_EVENTS
from services.core.events.producers import require_producer
from services.core.identity.records import service_owner
from services.core.keyvault.routing_keys import NetworkRoutingKeys
from services.core.messaging.topics import dead_letter_topic, events_topic

SOURCE_CATALOGUES: Mapping[str, EventCatalogue] = MappingProxyType({
    "intake": INTAKE_EVENTS,
    "referral": REFERRAL_EVENTS,
    "notify": NOTIFY_EVENTS,
})
"""Producer service -> the catalogue of the events it publishes."""

SOURCE_TOPICS: tuple[str, ...] = tuple(events_topic(service) for service in SOURCE_CATALOGUES)
"""The events topics the ledger reads (each producing service's), in a fixed order."""

SOURCE_CONSUMERS: tuple[str, ...] = ("intake-worker", "referral-worker", "notify-worker")
"""The consumers whose dead-letter topics the ledger reads."""

DEAD_LETTER_TOPICS: tuple[str, ...] = tuple(dead_letter_topic(consumer) for consumer in SOURCE_CONSUMERS)
"""Every worker's dead-letter topic (records there are accounted for, never leaves)."""

UNKNOWN_PRODUCER_SERVICE = "unknown_producer_service"


def decode_source_event(header: EventHeader, routing_plaintext: bytes) -> Message:
    """The message a verified event carries, decoded with its producer service's catalogue.

    Raises UnprocessableEvent with reason ``unknown_producer_service`` (not a source service),
    ``unexpected_producer`` (``producer_org`` is not ``svc:<producer_service>``), or the catalogue's
    ``unknown_event_type`` / ``unsupported_schema_version`` / ``malformed_payload``.
    """
    catalogue = SOURCE_CATALOGUES.get(header.producer_service)
    if catalogue is None:
        msg = f"event {header.event_id}: producer service {header.producer_service!r} is not one the ledger reads"
        raise UnprocessableEvent(UNKNOWN_PRODUCER_SERVICE, msg)
    require_producer(header, service_owner(header.producer_service))
    return catalogue.decode(header.event_type, header.schema_version, routing_plaintext)


def read_source_event(envelope: VerifiedEnvelope, keys: NetworkRoutingKeys, opener: Opener) -> Message:
    """Open a verified event's routing section with the network routing keys and decode it.

    Raises the EnvelopeError of the opening (``unknown_key`` when the section is not under a network
    routing key, ``malformed`` when there is no routing section) or UnprocessableEvent (see above).
    """
    section = envelope.section(SectionKind.ROUTING)
    plaintext = opener.open(envelope, SectionKind.ROUTING, keys.key(section.key_id))
    return decode_source_event(envelope.header, plaintext)
