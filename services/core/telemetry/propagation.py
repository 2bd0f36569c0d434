"""W3C Trace Context in and out of event headers and Kafka record headers."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


def current_trace_context() -> tuple[str, str]:
    """``(traceparent, tracestate)`` of the active span, or two empty strings outside any span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent", ""), carrier.get("tracestate", "")


def context_from(traceparent: str, tracestate: str = "") -> Context:
    """An OpenTelemetry context whose parent is the remote span named by ``traceparent``."""
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier, context=otel_context.get_current())


def kafka_headers(event_id: str, event_type: str, traceparent: str, tracestate: str) -> list[tuple[str, bytes]]:
    """Kafka record headers of an event: its id, type and trace context (ids only, never personal data)."""
    headers = [("event-id", event_id.encode()), ("event-type", event_type.encode())]
    if traceparent:
        headers.append(("traceparent", traceparent.encode()))
    if tracestate:
        headers.append(("tracestate", tracestate.encode()))
    return headers


def header_value(headers: Sequence[tuple[str, bytes]], name: str) -> str:
    """A Kafka header's value as text, or "" when absent."""
    for key, value in headers:
        if key == name:
            return value.decode(errors="replace")
    return ""
