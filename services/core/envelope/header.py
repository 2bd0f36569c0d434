"""The cleartext header of an event: what routing, ordering, audit and tracing need, never personal data."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import uuid6
from google.protobuf.message import DecodeError

from services.core.envelope.errors import MalformedEnvelopeError, UnsupportedVersionError
from services.core.envelope.format import FORMAT_VERSION
from services.core.generated.referralnet.envelope.v1 import envelope_pb2

# The shapes of header fields; the outbox and the span attribute guard check against the same ones.
EVENT_TYPE_PATTERN = re.compile(r"[A-Z][A-Za-z0-9]{1,63}")
IDENTIFIER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:#/-]{0,127}")
# W3C Trace Context: version ff, an all-zero trace id and an all-zero parent id are invalid.
TRACEPARENT_PATTERN = re.compile(r"(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
TRACESTATE_PATTERN = re.compile(r"[\x20-\x7e]{0,512}")  # W3C tracestate characters: printable ASCII only
_UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
# The proto types' ranges: a value outside them would pass validation and then fail to encode.
_UINT32_MAX, _UINT64_MAX, _INT64_MAX = 2**32 - 1, 2**64 - 1, 2**63 - 1


def new_event_id() -> str:
    """A fresh UUIDv7 (RFC 9562): time-ordered, so ids sort roughly by creation."""
    return str(uuid6.uuid7())


def now_micros() -> int:
    """The current time in microseconds since the Unix epoch."""
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class EventHeader:
    """The cleartext header of one event (proto ``referralnet.envelope.v1.EnvelopeHeader``).

    A header is validated when it is made, so an invalid one never exists.
    """

    event_id: str
    event_type: str
    schema_version: int
    stream_id: str
    stream_sequence: int
    occurred_at_unix_micros: int
    producer_org: str
    producer_service: str
    signing_key_id: str
    traceparent: str = ""
    tracestate: str = ""

    def __post_init__(self) -> None:
        """Raise MalformedEnvelopeError naming the first field that is not acceptable."""
        _check(bool(_UUID7.fullmatch(self.event_id)), "event_id", "must be a lowercase hyphenated UUIDv7")
        _check(bool(EVENT_TYPE_PATTERN.fullmatch(self.event_type)), "event_type", "must be UpperCamelCase, 2-64 chars")
        _check(1 <= self.schema_version <= _UINT32_MAX, "schema_version", "must be 1 to 2**32-1")
        _check(bool(IDENTIFIER_PATTERN.fullmatch(self.stream_id)), "stream_id", "must be an opaque id of 1-128 chars")
        _check(1 <= self.stream_sequence <= _UINT64_MAX, "stream_sequence", "must be 1 to 2**64-1")
        _check(0 < self.occurred_at_unix_micros <= _INT64_MAX, "occurred_at_unix_micros",
               "must be after the epoch and fit an int64")
        for name in ("producer_org", "producer_service", "signing_key_id"):
            _check(bool(IDENTIFIER_PATTERN.fullmatch(getattr(self, name))), name, "must be an id of 1-128 chars")
        _check(not self.traceparent or bool(TRACEPARENT_PATTERN.fullmatch(self.traceparent)), "traceparent",
               "must be empty or a W3C traceparent")
        _check(bool(TRACESTATE_PATTERN.fullmatch(self.tracestate)), "tracestate",
               "must be at most 512 printable ASCII chars")

    def encode(self) -> bytes:
        """The header's bytes: protobuf with deterministic serialisation, encoded once by the producer."""
        message = envelope_pb2.EnvelopeHeader(
            format_version=FORMAT_VERSION, event_id=self.event_id, event_type=self.event_type,
            schema_version=self.schema_version, stream_id=self.stream_id, stream_sequence=self.stream_sequence,
            occurred_at_unix_micros=self.occurred_at_unix_micros, producer_org=self.producer_org,
            producer_service=self.producer_service, signing_key_id=self.signing_key_id,
        )
        if self.traceparent or self.tracestate:  # an absent trace is left out, not encoded empty
            message.trace.traceparent = self.traceparent
            message.trace.tracestate = self.tracestate
        return message.SerializeToString(deterministic=True)

    @classmethod
    def decode(cls, header_bytes: bytes) -> EventHeader:
        """Parse and validate header bytes; errors name the field."""
        message = envelope_pb2.EnvelopeHeader()
        try:
            message.ParseFromString(header_bytes)
        except DecodeError:
            msg = "header: not a valid EnvelopeHeader encoding"
            raise MalformedEnvelopeError(msg) from None
        if message.format_version == 0:  # proto3 cannot tell 0 from absent: a missing field, not a version
            msg = "header.format_version: missing"
            raise MalformedEnvelopeError(msg)
        if message.format_version != FORMAT_VERSION:
            msg = f"header.format_version: {message.format_version} is not supported (only {FORMAT_VERSION})"
            raise UnsupportedVersionError(msg)
        return cls(
            event_id=message.event_id, event_type=message.event_type, schema_version=message.schema_version,
            stream_id=message.stream_id, stream_sequence=message.stream_sequence,
            occurred_at_unix_micros=message.occurred_at_unix_micros, producer_org=message.producer_org,
            producer_service=message.producer_service, signing_key_id=message.signing_key_id,
            traceparent=message.trace.traceparent, tracestate=message.trace.tracestate,
        )


def _check(condition: bool, field: str, why: str) -> None:
    if not condition:
        msg = f"header.{field}: {why}"
        raise MalformedEnvelopeError(msg)
