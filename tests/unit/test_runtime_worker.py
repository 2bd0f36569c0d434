"""A Kafka handler and the worker around it, without servers.

What is real: SQLite files, the envelope crypto, nameko's ServiceContainer and worker lifecycle, the
OpenTelemetry SDK (in-memory exporter). What is replaced: Kafka. Handlers are called directly with
``worker_factory``; the dedupe claim, the skip of a duplicate and the consumer span are proven through a
real container whose entrypoint is nameko's test ``dummy``, settled as the Kafka entrypoint settles (that
entrypoint itself, with Kafka, is proven by tests/integration/test_kafka_entrypoint.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import ClassVar

import pytest
import sqlalchemy as sa
from eventlet.event import Event
from nameko.testing.services import dummy, worker_factory
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy.orm import Session

from services.core.envelope import SectionKind, UnknownKeyError
from services.core.eventstore.schema import METADATA, processed_events
from services.core.runtime import ConsumedEvent, TracingProvider, UnitOfWork
from tests.integration.support import effects_service
from tests.integration.support.effects_service import EffectsService, KeyRing, apply_effect, effects
from tests.unit.envelope_support import TRACEPARENT, Network, make_header, new_data_key

ROUTING_KEY = new_data_key()


@pytest.fixture
def network() -> Iterator[Network]:
    made = Network.create()
    yield made
    made.close()


def consumed(network: Network, event_type: str = "EffectRequested", offset: int = 7) -> ConsumedEvent:
    """A verified event as the entrypoint hands it over: routing facts sealed under ROUTING_KEY."""
    header = make_header(network.orgs["pol-mdd-01"], event_type=event_type, traceparent=TRACEPARENT)
    routing = json.dumps({"region": "MDD", "urgency": "high"}).encode()
    wire = network.sealer().seal(header, {SectionKind.ROUTING: (ROUTING_KEY, routing)})
    return ConsumedEvent(network.verifier.verify(wire), topic="referralnet.intake.events.v1", partition=2,
                         offset=offset, consumer="effects-worker", traceparent=TRACEPARENT)


def new_database(url: str, *, with_processed_events: bool = True) -> sa.Engine:
    engine = sa.create_engine(url)
    effects_service.METADATA.create_all(engine)
    if with_processed_events:
        METADATA.create_all(engine, tables=[processed_events])
    return engine


def rows(engine: sa.Engine, table: sa.Table) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(table)))


# -- the handler alone, with worker_factory ---------------------------------------------------------------

def test_handler_applies_the_effect_in_the_session_it_is_given(network, sqlite_url):
    engine = new_database(sqlite_url)
    event = consumed(network)
    with Session(engine) as session:
        service = worker_factory(EffectsService, session=session, keys=KeyRing({ROUTING_KEY.key_id: ROUTING_KEY.key}))
        service.handle(event)
        session.commit()
    [row] = rows(engine, effects)
    assert (row.event_id, row.region, row.applied) == (event.event_id, "MDD", 1)
    assert (row.stream_id, row.stream_sequence) == (event.header.stream_id, 1)


def test_handler_cannot_open_a_section_whose_key_it_does_not_hold(network, sqlite_url):
    with Session(new_database(sqlite_url)) as session:
        service = worker_factory(EffectsService, session=session, keys=KeyRing({}))
        with pytest.raises(UnknownKeyError) as caught:
            service.handle(consumed(network))
    assert caught.value.reason == "unknown_key"  # the reason its dead letter will carry


def test_handler_of_an_always_failing_event_raises(network, sqlite_url):
    with Session(new_database(sqlite_url)) as session:
        service = worker_factory(EffectsService, session=session, keys=KeyRing({}))
        with pytest.raises(RuntimeError, match="synthetic"):
            service.handle(consumed(network, event_type=effects_service.FAILING_TYPE))


# -- the worker lifecycle: dedupe claim, skip, rollback, span ------------------------------------------------

class ClaimingService:
    """A service whose entrypoint is nameko's test ``dummy``: the worker lifecycle without Kafka."""

    name = "claiming"
    session = UnitOfWork()
    tracer = TracingProvider()
    calls: ClassVar[list[str]] = []

    @dummy  # type: ignore[untyped-decorator]  # nameko is untyped
    def handle(self, event: ConsumedEvent) -> str:
        ClaimingService.calls.append(event.event_id)
        apply_effect(self.session, event, "CUS")
        if event.header.event_type == effects_service.FAILING_TYPE:
            raise RuntimeError("synthetic handler failure")
        return "handled"


@pytest.fixture
def claiming(container_factory, sqlite_url):
    ClaimingService.calls.clear()
    container = container_factory(ClaimingService, {"DATABASE_URL": sqlite_url})
    container.start()
    return container


def deliver(container, event: ConsumedEvent) -> object:
    """Run one worker as the Kafka entrypoint does: settle the transaction in ``handle_result``.

    (nameko's ``entrypoint_hook`` waits on OS-thread primitives, which needs eventlet's monkey-patching;
    plain pytest is not patched, so this waits on an eventlet Event instead.)
    """
    [entrypoint] = container.entrypoints
    [uow] = [dep for dep in container.dependencies if isinstance(dep, UnitOfWork)]
    outcome = Event()

    def handle_result(worker_ctx, result, exc_info):
        uow.settle(worker_ctx, succeeded=exc_info is None)
        outcome.send((result, exc_info))
        return result, exc_info

    container.spawn_worker(entrypoint, (event,), {}, handle_result=handle_result)
    result, exc_info = outcome.wait()
    container._worker_pool.waitall()  # worker_teardown closed the session
    if exc_info is not None:
        raise exc_info[1]
    return result


def test_a_redelivered_event_is_skipped_without_calling_the_handler(claiming, network, sqlite_url):
    engine = new_database(sqlite_url)
    event = consumed(network)
    assert deliver(claiming, event) == "handled"
    assert deliver(claiming, event) is None, "the duplicate's handler must not run"
    assert ClaimingService.calls == [event.event_id]
    assert [row.applied for row in rows(engine, effects)] == [1]
    [claim] = rows(engine, processed_events)
    assert (claim.consumer, claim.event_id, claim.topic, claim.partition, claim.offset) == (
        "effects-worker", event.event_id, "referralnet.intake.events.v1", 2, 7)


def test_a_failed_handler_rolls_back_its_effect_and_its_claim(claiming, network, sqlite_url):
    engine = new_database(sqlite_url)
    failing = consumed(network, event_type=effects_service.FAILING_TYPE)
    with pytest.raises(RuntimeError, match="synthetic"):
        deliver(claiming, failing)
    assert rows(engine, effects) == [] and rows(engine, processed_events) == []
    assert ClaimingService.calls == [failing.event_id]


def test_a_claim_that_cannot_be_written_fails_the_worker_before_the_handler(claiming, network, sqlite_url):
    new_database(sqlite_url, with_processed_events=False)
    with pytest.raises(sa.exc.OperationalError, match="processed_events"):
        deliver(claiming, consumed(network))
    assert ClaimingService.calls == []


@pytest.fixture
def exporter(claiming) -> InMemorySpanExporter:
    """The spans of the ``claiming`` container's workers (an SDK provider of its own, no global state)."""
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracing = next(dep for dep in claiming.dependencies if isinstance(dep, TracingProvider))
    tracing.tracer = provider.get_tracer("test")
    return exported


def test_the_worker_runs_in_a_consumer_span_continuing_the_producers_trace(claiming, exporter, network, sqlite_url):
    new_database(sqlite_url)
    event = consumed(network)
    deliver(claiming, event)
    [span] = exporter.get_finished_spans()
    assert span.kind is SpanKind.CONSUMER and span.name == "process referralnet.intake.events.v1"
    assert f"{span.context.trace_id:032x}" == TRACEPARENT.split("-")[1]
    assert span.parent is not None and f"{span.parent.span_id:016x}" == TRACEPARENT.split("-")[2]
    header = event.header
    assert dict(span.attributes or {}) == {
        "messaging.system": "kafka", "messaging.destination.name": "referralnet.intake.events.v1",
        "messaging.destination.partition.id": "2", "messaging.kafka.offset": 7,
        "messaging.message.id": event.event_id, "referralnet.event.type": "EffectRequested",
        "referralnet.stream.id": header.stream_id, "referralnet.stream.sequence": 1,
        "referralnet.producer.org": "pol-mdd-01", "referralnet.producer.service": "intake",
    }


def test_a_failed_worker_span_carries_a_reason_code_never_the_exception_text(claiming, exporter, network,
                                                                             sqlite_url):
    new_database(sqlite_url)
    with pytest.raises(RuntimeError):
        deliver(claiming, consumed(network, event_type=effects_service.FAILING_TYPE))
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR and span.status.description == "handler_failed"
    assert (span.attributes or {})["error.type"] == "handler_failed"
    assert span.events == (), "no exception event: its message could carry plaintext"
