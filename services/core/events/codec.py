"""Event payloads: which protobuf message each event type carries, and its schema version.

Every service's events are protobuf messages from proto/referralnet/<service>/v1/events.proto. The
envelope header's ``event_type`` is the message's name and ``schema_version`` the catalogue's version
for it; the routing section's plaintext is the serialized message. A consumer decodes with the same
catalogue: an event type or version it does not know, or bytes that do not parse, raise
``UnprocessableEvent`` (the dead-letter topic, with the reason), never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from services.core.events.errors import UnprocessableEvent

M = TypeVar("M", bound=Message)

UNKNOWN_EVENT_TYPE = "unknown_event_type"
UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
MALFORMED_PAYLOAD = "malformed_payload"


class EventCatalogue:
    """The event types one topic carries: message class and schema version per type."""

    def __init__(self, messages: Iterable[type[Message]], schema_version: int = 1) -> None:
        self._by_type: dict[str, tuple[type[Message], int]] = {}
        for message in messages:
            name = message.DESCRIPTOR.name
            if name in self._by_type:
                raise ValueError(f"event type {name} is catalogued twice")
            self._by_type[name] = (message, schema_version)

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._by_type

    @property
    def event_types(self) -> frozenset[str]:
        """Every event type in the catalogue."""
        return frozenset(self._by_type)

    def encode(self, message: Message) -> tuple[str, int, bytes]:
        """(event type, schema version, payload bytes) of a catalogued message."""
        name = message.DESCRIPTOR.name
        if name not in self._by_type or not isinstance(message, self._by_type[name][0]):
            raise ValueError(f"{name} is not an event of this catalogue")
        return name, self._by_type[name][1], message.SerializeToString(deterministic=True)

    def decode(self, event_type: str, schema_version: int, payload: bytes) -> Message:
        """The message an event carries; UnprocessableEvent for an unknown type or version, or bad bytes."""
        try:
            message_class, version = self._by_type[event_type]
        except KeyError:
            raise UnprocessableEvent(UNKNOWN_EVENT_TYPE, f"event type {event_type!r} is not known here") from None
        if schema_version != version:
            msg = f"{event_type} schema version {schema_version} is not supported (this build reads {version})"
            raise UnprocessableEvent(UNSUPPORTED_SCHEMA_VERSION, msg)
        message = message_class()
        try:
            message.ParseFromString(payload)
        except DecodeError:
            raise UnprocessableEvent(MALFORMED_PAYLOAD, f"{event_type} payload does not parse") from None
        return message

    def decode_as(self, expected: type[M], event_type: str, schema_version: int, payload: bytes) -> M:
        """Like ``decode``, typed: the message must be an ``expected``."""
        message = self.decode(event_type, schema_version, payload)
        if not isinstance(message, expected):
            raise UnprocessableEvent(UNKNOWN_EVENT_TYPE, f"{event_type} is not a {expected.DESCRIPTOR.name}")
        return message
