"""Span attributes from an allow-list: the one way code in this project puts attributes on a span.

A span is exported to a collector that people outside the network may operate, so it may carry only
what is already cleartext on the wire: ids, types, positions, the producing org and service, a reason
code. ``span_attributes`` takes those as keyword arguments and refuses anything else, so nobody can put
a name, a document number or a narrative in a span by accident:

=================  ======================================  ==============================================
argument           attribute key                           accepted values
=================  ======================================  ==============================================
event_id           messaging.message.id                    an opaque id (the event's UUIDv7)
event_type         referralnet.event.type                  UpperCamelCase, 2-64 characters
stream_id          referralnet.stream.id                   an opaque id (pseudonymous stream id)
stream_sequence    referralnet.stream.sequence             an integer >= 0
topic              messaging.destination.name              a Kafka topic name (also sets messaging.system)
partition          messaging.destination.partition.id      an integer >= 0 (recorded as text, per semconv)
offset             messaging.kafka.offset                  an integer >= 0
producer_org       referralnet.producer.org                an opaque id
producer_service   referralnet.producer.service            an opaque id
error_reason       error.type                              a snake_case reason code (``bad_signature``)
=================  ======================================  ==============================================

An opaque id is 1-128 characters of ``A-Za-z0-9._:#/-``, starting with a letter or digit: the shape of
every id in an envelope header. Free text (a space, an accent, an exception message) never fits one.
Errors name the argument and the rule, never the refused value.
"""

from __future__ import annotations

import re

from services.core.envelope.header import EVENT_TYPE_PATTERN, IDENTIFIER_PATTERN, EventHeader

AttributeValue = str | int

_OPAQUE_ID = IDENTIFIER_PATTERN  # ids as the envelope header allows them
_EVENT_TYPE = EVENT_TYPE_PATTERN
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_REASON = re.compile(r"[a-z][a-z0-9_]{0,63}")

# argument -> (attribute key, pattern for text; None for a non-negative integer)
_FIELDS: dict[str, tuple[str, re.Pattern[str] | None]] = {
    "event_id": ("messaging.message.id", _OPAQUE_ID),
    "event_type": ("referralnet.event.type", _EVENT_TYPE),
    "stream_id": ("referralnet.stream.id", _OPAQUE_ID),
    "stream_sequence": ("referralnet.stream.sequence", None),
    "topic": ("messaging.destination.name", _TOPIC),
    "partition": ("messaging.destination.partition.id", None),
    "offset": ("messaging.kafka.offset", None),
    "producer_org": ("referralnet.producer.org", _OPAQUE_ID),
    "producer_service": ("referralnet.producer.service", _OPAQUE_ID),
    "error_reason": ("error.type", _REASON),
}
MESSAGING_SYSTEM = "messaging.system"
ALLOWED_ATTRIBUTE_KEYS = frozenset({key for key, _ in _FIELDS.values()} | {MESSAGING_SYSTEM})


class DisallowedAttributeError(ValueError):
    """An attribute that is not on the allow-list, or a value of the wrong shape (the value is not shown)."""


def span_attributes(**fields: AttributeValue) -> dict[str, AttributeValue]:
    """Span attributes for the allowed ``fields`` (see the module docstring); DisallowedAttributeError else."""
    attributes: dict[str, AttributeValue] = {}
    for name, value in fields.items():
        if name not in _FIELDS:
            msg = f"span attribute {name!r} is not on the allow-list (allowed: {', '.join(sorted(_FIELDS))})"
            raise DisallowedAttributeError(msg)
        key, pattern = _FIELDS[name]
        attributes[key] = _checked(name, value, pattern)
    if "topic" in fields:
        attributes[MESSAGING_SYSTEM] = "kafka"
    return attributes


def header_attributes(header: EventHeader, **fields: AttributeValue) -> dict[str, AttributeValue]:
    """The allowed attributes of an event header (id, type, stream, sequence, producer) plus ``fields``."""
    return span_attributes(
        event_id=header.event_id, event_type=header.event_type, stream_id=header.stream_id,
        stream_sequence=header.stream_sequence, producer_org=header.producer_org,
        producer_service=header.producer_service, **fields,
    )


def _checked(name: str, value: object, pattern: re.Pattern[str] | None) -> AttributeValue:
    if pattern is None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            msg = f"span attribute {name!r} must be an integer >= 0"
            raise DisallowedAttributeError(msg)
        return str(value) if name == "partition" else value
    if not isinstance(value, str) or not pattern.fullmatch(value):
        msg = f"span attribute {name!r} must match {pattern.pattern}"
        raise DisallowedAttributeError(msg)
    return value
