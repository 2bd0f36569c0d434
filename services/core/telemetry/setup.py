"""Tracing set-up for one process: a TracerProvider, where its spans go, and W3C Trace Context propagation.

``configure_tracing(service_name)`` is called once at start-up by every process and returns the provider:
``run_edge`` as ``<service>-edge``, a nameko worker's ``TracingProvider.setup`` under the nameko service
name (``referral-worker``), the outbox relay process under ``--service-name`` / ``OTEL_SERVICE_NAME``.
Code gets tracers from it (``provider.get_tracer(__name__)``) or from the global API, which points at the
first provider configured in the process.

Where spans go, first match wins:

1. ``OTEL_SDK_DISABLED=true``: nowhere. The SDK provider hands out no-op tracers (even with an exporter).
2. ``exporter=`` given (tests pass an ``InMemorySpanExporter``): exported synchronously to it
   (SimpleSpanProcessor), so a test sees a span as soon as it ends.
3. Otherwise ``OTEL_TRACES_EXPORTER``, the standard comma-separated list (default ``otlp``) decides:

   - ``none`` (anywhere in the list): nowhere.
   - ``console``: each span as one line of JSON on standard output, as it ends (the SDK's
     ConsoleSpanExporter with a SimpleSpanProcessor): for development and for tests of a whole process.
   - ``otlp``, when ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set:
     batched (BatchSpanProcessor) to an OTLP/gRPC collector. The exporter reads the other standard
     variables itself: headers, certificate and client key, compression,
     ``OTEL_EXPORTER_OTLP_[TRACES_]INSECURE``, and ``OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT`` (seconds in this
     SDK, not milliseconds as the specification says). An ``http://`` endpoint means a plaintext channel.
     Without an endpoint, nowhere: spans are created (ids still propagate through Kafka) and dropped.
   - any other name: logged and ignored.

Tracing never takes a process down: no collector running only costs retries in the exporter's thread
(bounded by its timeout), and an exporter that cannot be built (a malformed variable) is logged by
its type and the process runs without one.

The global provider can be set only once per process (an OpenTelemetry rule). The first call here
sets it, unless something else did before; later calls never try again, so nothing logs "Overriding of
current TracerProvider". Calls without an exporter are idempotent per service name: they return the
same provider, so a second call builds no second exporter. Calls with an exporter always build a new
provider that the caller owns (tests keep theirs apart this way).

The global propagator becomes W3C Trace Context alone. The SDK default also propagates W3C Baggage,
free-form key/values that would travel to every service through Kafka headers: a place personal data
could leak, so it is left out on purpose.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import IO

from opentelemetry import propagate, trace
from opentelemetry.environment_variables import OTEL_TRACES_EXPORTER
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_SDK_DISABLED,
)
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_NAMESPACE, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

NAMESPACE = "referralnet"
OTLP, CONSOLE, NONE = "otlp", "console", "none"
"""The values of ``OTEL_TRACES_EXPORTER`` understood here (the standard names)."""

_LOG = logging.getLogger(__name__)
_LOCK = threading.Lock()
_BY_SERVICE: dict[str, TracerProvider] = {}  # environment-configured providers, one per service name
_global_set = False


def configure_tracing(service_name: str, *, exporter: SpanExporter | None = None) -> TracerProvider:
    """The process's tracer provider for ``service_name`` (see the module docstring for where spans go)."""
    with _LOCK:
        if exporter is None and service_name in _BY_SERVICE:
            return _BY_SERVICE[service_name]
        provider = build_tracer_provider(service_name, exporter=exporter)
        if exporter is None:
            _BY_SERVICE[service_name] = provider
        _set_global_once(provider)
        propagate.set_global_textmap(TraceContextTextMapPropagator())
        return provider


def build_tracer_provider(service_name: str, *, exporter: SpanExporter | None = None) -> TracerProvider:
    """A new provider for ``service_name``, exporting as the module docstring says; touches no global."""
    resource = Resource.create({SERVICE_NAME: service_name, SERVICE_NAMESPACE: NAMESPACE})
    provider = TracerProvider(resource=resource)
    if sdk_disabled():
        return provider
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider
    for processor in span_processors_from_environment():
        provider.add_span_processor(processor)
    return provider


def exporter_names() -> frozenset[str]:
    """``OTEL_TRACES_EXPORTER`` as a set of lower-case names; ``{"otlp"}`` when unset or empty."""
    names = {name.strip().lower() for name in os.environ.get(OTEL_TRACES_EXPORTER, "").split(",")}
    return frozenset(names - {""} or {OTLP})


def span_processors_from_environment() -> list[SpanProcessor]:
    """The span processors the environment asks for (see the module docstring); none when switched off."""
    names = exporter_names()
    if sdk_disabled() or NONE in names:
        return []
    for unknown in sorted(names - {OTLP, CONSOLE}):
        _LOG.warning("OTEL_TRACES_EXPORTER names %r, which this process does not support: ignored", unknown)
    processors: list[SpanProcessor] = []
    if CONSOLE in names:
        processors.append(SimpleSpanProcessor(console_exporter()))
    otlp = exporter_from_environment()
    if otlp is not None:
        processors.append(BatchSpanProcessor(otlp))
    return processors


def console_exporter(out: IO[str] | None = None) -> ConsoleSpanExporter:
    """Spans as JSON, one line each, to ``out`` (default: the process's standard output at call time)."""
    return ConsoleSpanExporter(out=out or sys.stdout, formatter=_json_line)


def _json_line(span: ReadableSpan) -> str:
    line: str = span.to_json(indent=None)
    return line + "\n"


def exporter_from_environment() -> SpanExporter | None:
    """An OTLP/gRPC exporter when ``otlp`` is chosen and the standard variables name an endpoint, else None."""
    names = exporter_names()
    if sdk_disabled() or NONE in names or OTLP not in names:
        return None
    if not (os.environ.get(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or os.environ.get(OTEL_EXPORTER_OTLP_ENDPOINT)):
        return None
    # Imported here: grpc is loaded only by processes that export.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

    try:
        return OTLPSpanExporter()
    except Exception as error:  # tracing must never stop a service from starting
        _LOG.warning("OTLP trace exporter not created (%s): spans of this process are dropped",
                     type(error).__name__)
        return None


def sdk_disabled() -> bool:
    """Whether ``OTEL_SDK_DISABLED`` is ``true`` (case-insensitive), as the SDK itself reads it."""
    return os.environ.get(OTEL_SDK_DISABLED, "").strip().lower() == "true"


def _set_global_once(provider: TracerProvider) -> None:
    global _global_set  # noqa: PLW0603 - one process-wide flag, guarded by _LOCK
    if _global_set:
        return
    _global_set = True
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    else:
        _LOG.info("a global tracer provider was already set by other code; it is left in place")
