"""Tracing set-up, the span attribute allow-list, and trace context through headers (no collector runs).

Each test builds its own provider (``configure_tracing(..., exporter=InMemorySpanExporter())`` returns a
new one every time), so tests never depend on which provider became the process's global one. The wiring
tests at the end prove that each kind of process (edge, nameko worker, relay) configures tracing at start:
the real functions run; only what would need Kafka is replaced (the relay's loop).
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from nameko.extensions import DependencyProvider
from nameko.testing.services import dummy
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from deploy.local.process import free_ports
from services.core.grpcedge import server
from services.core.grpcedge.settings import EdgeSettings
from services.core.identity.network import init_network
from services.core.messaging import relay
from services.core.runtime import TracingProvider
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
from services.core.telemetry.setup import exporter_from_environment, exporter_names, span_processors_from_environment
from tests.unit.envelope_support import SyntheticOrg, make_header

REPO_ROOT = Path(__file__).resolve().parents[2]
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


# -- OTEL_TRACES_EXPORTER ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "names"), [
    (None, {"otlp"}), ("", {"otlp"}), (" , ", {"otlp"}), ("console", {"console"}),
    (" Console , OTLP ", {"console", "otlp"}), ("none", {"none"}),
])
def test_exporter_names_are_the_standard_comma_separated_list(monkeypatch, value, names):
    if value is not None:
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", value)
    assert exporter_names() == names


def printed_spans(out: str) -> list[dict[str, Any]]:
    """Every line of ``out`` that is a span as the console exporter prints it (one JSON object per line)."""
    spans = []
    for line in out.splitlines():
        if line.startswith("{"):
            span = json.loads(line)
            assert {"name", "context", "resource", "attributes"} <= set(span)
            spans.append(span)
    return spans


def test_console_prints_each_span_as_one_json_line_when_it_ends(monkeypatch, capsys):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")  # not chosen: no OTLP
    assert exporter_from_environment() is None
    provider = build_tracer_provider("notify-edge")
    tracer = provider.get_tracer(__name__)
    with tracer.start_as_current_span("parent", attributes=span_attributes(event_id=EVENT_ID)):
        with tracer.start_as_current_span("child"):
            pass
        assert [span["name"] for span in printed_spans(capsys.readouterr().out)] == ["child"]  # at once
    [parent] = printed_spans(capsys.readouterr().out)
    provider.shutdown()

    assert parent["name"] == "parent"
    assert parent["attributes"] == {"messaging.message.id": EVENT_ID}
    assert parent["resource"]["attributes"]["service.name"] == "notify-edge"
    assert parent["resource"]["attributes"]["service.namespace"] == "referralnet"


def test_console_and_otlp_together_give_both_processors(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console,otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{free_ports(1)[0]}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    processors = span_processors_from_environment()
    assert [type(processor) for processor in processors] == [SimpleSpanProcessor, BatchSpanProcessor]
    for processor in processors:
        processor.shutdown()


@pytest.mark.parametrize(("variable", "value"), [("OTEL_TRACES_EXPORTER", "console,none"),
                                                  ("OTEL_TRACES_EXPORTER", "NONE"),
                                                  ("OTEL_SDK_DISABLED", "true")])
def test_none_or_a_disabled_sdk_beats_console(monkeypatch, capsys, variable, value):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv(variable, value)
    assert span_processors_from_environment() == []
    provider = build_tracer_provider("intake-edge")
    with provider.get_tracer(__name__).start_as_current_span("silent"):
        pass
    assert capsys.readouterr().out == ""


def test_an_exporter_this_process_does_not_know_is_logged_and_ignored(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin,console")
    processors = span_processors_from_environment()
    assert [type(processor) for processor in processors] == [SimpleSpanProcessor]
    assert "OTEL_TRACES_EXPORTER names 'zipkin'" in caplog.text


def test_a_process_configured_with_console_prints_its_spans_through_the_global_api(tmp_path):
    script = ("from opentelemetry import trace\n"
              "from services.core.telemetry import configure_tracing\n"
              "configure_tracing('probe-worker')\n"
              "with trace.get_tracer('probe').start_as_current_span('work'):\n"
              "    pass\n")
    environment = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=60, check=False, env={**environment, "OTEL_TRACES_EXPORTER": "console"})
    assert result.returncode == 0, result.stderr
    [span] = printed_spans(result.stdout)
    assert span["name"] == "work"
    assert span["resource"]["attributes"]["service.name"] == "probe-worker"


# -- every process configures tracing at start ---------------------------------------------------------------


@pytest.fixture
def recorded_configuration(monkeypatch) -> list[str]:
    """The service names ``configure_tracing`` is called with (the real function still runs)."""
    names: list[str] = []
    real = configure_tracing

    def recording(service_name: str, **kwargs: Any) -> TracerProvider:
        names.append(service_name)
        return real(service_name, **kwargs)

    for module in (server, relay, importlib.import_module("services.core.runtime.dependencies")):
        monkeypatch.setattr(module, "configure_tracing", recording)
    return names


def test_run_edge_configures_tracing_as_service_edge(tmp_path, recorded_configuration):
    network = tmp_path / "network"
    init_network(network)
    directory, ca_certificate = server.load_network_trust(network)
    stop = threading.Event()
    stop.set()  # serve, then stop at once
    status = server.run_edge(EdgeSettings(listen="127.0.0.1:0", network_dir=network, grace_seconds=0),
                             "notify", directory, ca_certificate, lambda _server: None, [], stop=stop)
    assert status == 0
    assert recorded_configuration == ["notify-edge"]


class TracedService:
    """A nameko service with nothing but the tracer (its entrypoint never fires)."""

    name = "tracing-probe-worker"
    tracer = TracingProvider()
    calls: ClassVar[list[str]] = []

    @dummy  # type: ignore[untyped-decorator]  # nameko is untyped
    def handle(self) -> None:
        TracedService.calls.append("handled")


def test_a_nameko_worker_configures_tracing_under_its_service_name(container_factory, monkeypatch, capsys,
                                                                   recorded_configuration):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    container = container_factory(TracedService, {})
    container.start()
    assert recorded_configuration == ["tracing-probe-worker"]
    tracing = next(dep for dep in container.dependencies if isinstance(dep, TracingProvider))
    assert isinstance(tracing.tracer, Tracer)
    assert tracing.tracer.resource.attributes["service.name"] == "tracing-probe-worker"
    with tracing.tracer.start_as_current_span("handler work"):
        pass
    [span] = printed_spans(capsys.readouterr().out)
    assert span["resource"]["attributes"]["service.name"] == "tracing-probe-worker"


def worker_services() -> list[Any]:
    """The nameko service classes of every ``services/<service>/worker.py``."""
    found = []
    for path in sorted((REPO_ROOT / "services").glob("*/worker.py")):
        module = importlib.import_module(f"services.{path.parent.name}.worker")
        found += [value for value in vars(module).values()
                  if inspect.isclass(value) and value.__module__ == module.__name__
                  and isinstance(getattr(value, "name", None), str)
                  and any(isinstance(attribute, DependencyProvider) for attribute in vars(value).values())]
    return found


def test_every_worker_service_declares_the_tracing_provider():
    services = worker_services()
    assert {service.name for service in services} >= {"intake-worker", "referral-worker", "audit-worker"}
    for service in services:
        assert any(isinstance(value, TracingProvider) for value in vars(service).values()), service.name


def test_the_relay_process_configures_tracing_and_relays_with_that_tracer(monkeypatch, recorded_configuration):
    relays: list[dict[str, Any]] = []

    class RecordingRelay:
        """Stands in for the relay loop, which would need Kafka."""

        def __init__(self, engine: Any, producer: Any, **options: Any) -> None:
            relays.append(options)

        def run(self, stop: Any, idle_sleep_s: float) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr(relay, "OutboxRelay", RecordingRelay)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        monkeypatch.setenv("OTEL_SERVICE_NAME", "referral-relay")
        assert relay.main(["--database-url", "sqlite://", "--bootstrap-servers", "127.0.0.1:9"]) == 0
        monkeypatch.delenv("OTEL_SERVICE_NAME")
        assert relay.main(["--database-url", "sqlite://", "--bootstrap-servers", "127.0.0.1:9"]) == 0
        assert relay.main(["--database-url", "sqlite://", "--bootstrap-servers", "127.0.0.1:9",
                           "--service-name", "notify-relay"]) == 0
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert recorded_configuration == ["referral-relay", "outbox-relay", "notify-relay"]
    tracers = [options["tracer"] for options in relays]
    assert [tracer.resource.attributes["service.name"] for tracer in tracers] == recorded_configuration
