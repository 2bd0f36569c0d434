"""Tracing set-up, the span attribute allow-list, and trace context through headers (no collector runs).

Each test builds its own provider (``configure_tracing(..., exporter=InMemorySpanExporter())`` returns a
new one every time), so tests never depend on which provider became the process's global one.
"""

from __future__ import annotations

import logging
import os
import time

import pytest
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from deploy.local.process import free_ports
from services.core.telemetry import (
    ALLOWED_ATTRIBUTE_KEYS,
    DisallowedAttributeError,
    build_tracer_provider,
    configure_tracing,
    context_from,
    current_trace_context,
    header_attributes,
    span_attributes,
)
from services.core.telemetry.setup import exporter_from_environment
from tests.unit.envelope_support import SyntheticOrg, make_header

EVENT_ID = "01890a5d-ac96-774b-bcce-b302099a8057"
CANARY = "Persona Sintética 001"  # a synthetic name: it must never fit any attribute


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch):
    """Tests start from an environment without OTEL_ variables, whatever the shell exported."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


def _traced(service: str = "telemetry-test") -> tuple[TracerProvider, InMemorySpanExporter, trace.Tracer]:
    exporter = InMemorySpanExporter()
    provider = configure_tracing(service, exporter=exporter)
    return provider, exporter, provider.get_tracer(__name__)


def test_span_with_allowed_attributes_is_exported_with_the_service_resource():
    _, exporter, tracer = _traced("intake-edge")
    attributes = span_attributes(event_id=EVENT_ID, event_type="ReferralSubmitted", stream_id="ref-0a1b2c",
                                 stream_sequence=3, topic="referralnet.intake.events.v1", partition=2,
                                 offset=41, producer_org="pol-mdd-01", producer_service="intake",
                                 error_reason="bad_signature")
    with tracer.start_as_current_span("referralnet.intake.events.v1 publish", attributes=attributes):
        pass

    [span] = exporter.get_finished_spans()
    assert dict(span.attributes or {}) == {
        "messaging.message.id": EVENT_ID, "referralnet.event.type": "ReferralSubmitted",
        "referralnet.stream.id": "ref-0a1b2c", "referralnet.stream.sequence": 3,
        "messaging.destination.name": "referralnet.intake.events.v1", "messaging.system": "kafka",
        "messaging.destination.partition.id": "2", "messaging.kafka.offset": 41,
        "referralnet.producer.org": "pol-mdd-01", "referralnet.producer.service": "intake",
        "error.type": "bad_signature",
    }
    assert set(span.attributes or {}) <= ALLOWED_ATTRIBUTE_KEYS
    assert span.resource.attributes["service.name"] == "intake-edge"
    assert span.resource.attributes["service.namespace"] == "referralnet"


def test_header_attributes_take_the_ids_of_an_event_header():
    org = SyntheticOrg.create("pol-mdd-01")
    header = make_header(org, stream_id="ref-0a1b2c", stream_sequence=7)
    assert header_attributes(header, topic="t.v1") == span_attributes(
        event_id=header.event_id, event_type="ReferralSubmitted", stream_id="ref-0a1b2c", stream_sequence=7,
        producer_org="pol-mdd-01", producer_service="intake", topic="t.v1")


@pytest.mark.parametrize("name", ["name", "subject_name", "document", "narrative", "messaging.message.id"])
def test_attribute_guard_rejects_keys_off_the_allow_list(name):
    with pytest.raises(DisallowedAttributeError, match=f"'{name}' is not on the allow-list") as raised:
        span_attributes(**{name: CANARY})
    assert CANARY not in str(raised.value)


@pytest.mark.parametrize(("name", "value"), [
    ("stream_id", CANARY),  # free text never fits an opaque id
    ("producer_org", "pol mdd"),
    ("event_type", "referral submitted"),
    ("error_reason", "Traceback: KeyError('Persona')"),
    ("topic", "a topic"),
    ("event_id", ""),
    ("stream_id", "x" * 129),
    ("offset", -1),
    ("partition", True),
    ("stream_sequence", "3"),
    ("event_type", 7),
])
def test_attribute_guard_rejects_values_of_the_wrong_shape_without_echoing_them(name, value):
    with pytest.raises(DisallowedAttributeError, match=f"'{name}' must") as raised:
        span_attributes(**{name: value})
    if isinstance(value, str) and len(value) > 3:
        assert value not in str(raised.value)


def test_trace_context_injected_in_a_span_is_extracted_into_a_child_with_the_same_trace():
    _, exporter, tracer = _traced()
    with tracer.start_as_current_span("edge", kind=trace.SpanKind.SERVER) as edge:
        traceparent, tracestate = current_trace_context()
    assert current_trace_context() == ("", "")  # outside any span there is nothing to propagate

    with tracer.start_as_current_span("worker", context=context_from(traceparent, tracestate),
                                      kind=trace.SpanKind.CONSUMER) as worker:
        pass

    edge_context, worker_context = edge.get_span_context(), worker.get_span_context()
    assert traceparent == f"00-{edge_context.trace_id:032x}-{edge_context.span_id:016x}-{edge_context.trace_flags:02x}"
    assert edge_context.trace_flags.sampled
    assert worker_context.trace_id == edge_context.trace_id
    [_, exported_worker] = exporter.get_finished_spans()
    assert exported_worker.parent is not None
    assert exported_worker.parent.span_id == edge_context.span_id
    assert exported_worker.parent.is_remote


def test_sdk_disabled_records_and_exports_nothing(monkeypatch):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "TRUE")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    _, exporter, tracer = _traced()
    with tracer.start_as_current_span("edge") as span:
        assert not span.is_recording()
        assert current_trace_context() == ("", "")
    assert exporter.get_finished_spans() == ()
    assert exporter_from_environment() is None


def test_configuring_twice_is_safe_and_sets_the_global_provider_once(caplog):
    caplog.set_level(logging.WARNING)
    first = configure_tracing("referral-worker")
    global_provider = trace.get_tracer_provider()
    again = configure_tracing("referral-worker")
    other_exporter = InMemorySpanExporter()
    separate = configure_tracing("referral-worker", exporter=other_exporter)

    assert again is first  # no second provider, no second exporter thread
    assert separate is not first
    assert isinstance(global_provider, TracerProvider)
    assert trace.get_tracer_provider() is global_provider
    assert "Overriding" not in caplog.text
    assert isinstance(propagate.get_global_textmap(), TraceContextTextMapPropagator)  # no W3C Baggage
    with separate.get_tracer(__name__).start_as_current_span("only here"):
        pass
    assert [span.name for span in other_exporter.get_finished_spans()] == ["only here"]


def test_without_an_endpoint_spans_are_dropped():
    assert exporter_from_environment() is None
    provider = build_tracer_provider("notify-worker")
    with provider.get_tracer(__name__).start_as_current_span("dropped") as span:
        assert span.is_recording()  # ids still exist and propagate; nothing is exported
    provider.shutdown()


def test_an_endpoint_without_a_collector_never_crashes_and_shuts_down_in_bounded_time(monkeypatch, caplog):
    closed_port = free_ports(1)[0]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    assert isinstance(exporter_from_environment(), OTLPSpanExporter)

    provider = build_tracer_provider("audit-worker")
    with provider.get_tracer(__name__).start_as_current_span("to nowhere"):
        pass
    started = time.monotonic()
    provider.shutdown()  # flushes the batch: the export fails, is logged, and is given up

    assert time.monotonic() - started < 10
    assert "Failed to export" in caplog.text or "UNAVAILABLE" in caplog.text


@pytest.mark.parametrize(("variable", "value"), [("OTEL_TRACES_EXPORTER", "none"),
                                                  ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon")])
def test_no_exporter_when_switched_off_or_misconfigured(monkeypatch, caplog, variable, value):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv(variable, value)
    assert exporter_from_environment() is None
    provider = build_tracer_provider("intake-edge")  # and building a provider does not raise either
    provider.shutdown()
    if value == "soon":
        assert "OTLP trace exporter not created (ValueError)" in caplog.text
