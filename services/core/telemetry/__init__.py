"""OpenTelemetry for the network: ids and types in spans, never personal data.

- :mod:`.setup`: ``configure_tracing`` (provider, exporter from the standard OTEL_ variables, W3C propagator).
- :mod:`.attributes`: ``span_attributes``, the allow-list every span attribute goes through.
- :mod:`.propagation`: trace context in and out of event headers and Kafka record headers.
"""

from services.core.telemetry.attributes import (
    ALLOWED_ATTRIBUTE_KEYS,
    DisallowedAttributeError,
    header_attributes,
    span_attributes,
)
from services.core.telemetry.propagation import context_from, current_trace_context, header_value, kafka_headers
from services.core.telemetry.setup import build_tracer_provider, configure_tracing

__all__ = [
    "ALLOWED_ATTRIBUTE_KEYS", "DisallowedAttributeError", "build_tracer_provider", "configure_tracing",
    "context_from", "current_trace_context", "header_attributes", "header_value", "kafka_headers",
    "span_attributes",
]
