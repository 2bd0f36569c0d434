"""One trace from the gRPC edge, through the event store and a real Kafka topic, into a consumer.

In one process, with a provider exporting to memory: an edge span (SERVER) appends an event through
the EventStore (a SQLite file), which writes the active trace context into the envelope header; a
publisher, holding only the stored envelope as the outbox relay does, continues that trace in a
PRODUCER span and puts its own context in the Kafka record headers; a consumer reads the record from
the broker and continues the trace in a CONSUMER span. The relay and the nameko entrypoint add their
spans the same way; this proves the mechanism end to end. The case file carries a synthetic canary
name, and no exported span may contain it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic
from kafka.structs import TopicPartition
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.orm import Session

from services.core.eventstore.store import EventStore, NewEvent
from services.core.messaging.relay import OutboxRelay
from services.core.migrations import upgrade
from services.core.telemetry import (
    ALLOWED_ATTRIBUTE_KEYS,
    configure_tracing,
    context_from,
    current_trace_context,
    header_value,
    span_attributes,
)
from tests.unit.envelope_support import CASE_FILE, POLICE, ROUTING, ROUTING_PLAINTEXT, Network, new_data_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CANARY = "Persona Sintética Canario 7731"
CASE_FILE_PLAINTEXT = ('{"nombre":"' + CANARY + '","documento":"SINTETICO-7731"}').encode()


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="trace-admin")
    name = f"trace.{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(name, 1, 1)])
    admin.wait_for_topics([name], timeout_ms=30_000)
    yield name
    admin.delete_topics([name])
    admin.close()


@pytest.fixture
def network() -> Iterator[Network]:
    made = Network.create()
    yield made
    made.close()


def _read_one(bootstrap: str, topic: str, timeout_s: float = 30.0):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                return records[0]
    finally:
        consumer.close()
    pytest.fail(f"no record arrived on {topic} within {timeout_s:.0f} s")


def test_one_trace_runs_from_the_edge_through_the_outbox_relay_and_kafka_to_the_consumer(
        kafka_bootstrap, sqlite_url, topic, network):
    exporter = InMemorySpanExporter()
    tracer = configure_tracing("referral-trace-test", exporter=exporter).get_tracer(__name__)
    upgrade(sqlite_url)
    engine = sa.create_engine(sqlite_url)
    org = network.orgs[POLICE]
    store = EventStore(network.sealer(POLICE), POLICE, "intake", org.signing_key_id, topic)
    stream_id = f"ref-{uuid.uuid4().hex[:12]}"
    sections = {ROUTING: (new_data_key(), ROUTING_PLAINTEXT), CASE_FILE: (new_data_key(), CASE_FILE_PLAINTEXT)}

    # The edge: a gRPC call appends the event; EventStore.append reads the active trace context.
    # (A span the relay opens becomes the parent of the consumer's: edge -> relay PRODUCER -> CONSUMER.)
    edge_span = tracer.start_as_current_span("referralnet.intake.v1.Intake/SubmitReferral", kind=SpanKind.SERVER)
    with edge_span as edge, Session(engine) as session, session.begin():
        [stored] = store.append(session, stream_id, 0, [NewEvent("ReferralSubmitted", 1, sections)])
    assert current_trace_context() == ("", "")  # the edge's context stays in the envelope, not in a global

    # The publisher: the real outbox relay, which knows only the stored envelope and continues its trace.
    header = network.verifier.verify(stored.envelope).header
    relay = OutboxRelay(engine, kafka_bootstrap, tracer=tracer)
    assert relay.publish_pending() == 1
    relay.close()

    # The consumer: a real record from the broker; its trace context comes from the record headers.
    record = _read_one(kafka_bootstrap, topic)
    parent = context_from(header_value(record.headers, "traceparent"), header_value(record.headers, "tracestate"))
    attributes = span_attributes(topic=record.topic, partition=record.partition, offset=record.offset,
                                 event_id=header_value(record.headers, "event-id"))
    with tracer.start_as_current_span(f"{topic} process", context=parent, kind=SpanKind.CONSUMER,
                                      attributes=attributes):
        consumed = network.verifier.verify(record.value).header
    engine.dispose()

    spans = {span.kind: span for span in exporter.get_finished_spans()}
    assert set(spans) == {SpanKind.SERVER, SpanKind.PRODUCER, SpanKind.CONSUMER}
    server, producer_span, consumer_span = spans[SpanKind.SERVER], spans[SpanKind.PRODUCER], spans[SpanKind.CONSUMER]
    edge_context = edge.get_span_context()
    assert {span.context.trace_id for span in spans.values()} == {edge_context.trace_id}
    assert server.parent is None
    assert producer_span.parent is not None
    assert producer_span.parent.span_id == server.context.span_id
    assert consumer_span.parent is not None
    assert consumer_span.parent.span_id == producer_span.context.span_id
    assert header.traceparent == (f"00-{edge_context.trace_id:032x}-{edge_context.span_id:016x}-"
                                  f"{edge_context.trace_flags:02x}")
    assert consumed == header  # the consumer read the very envelope the edge appended
    assert header_value(record.headers, "event-id") == stored.event_id
    assert consumer_span.attributes is not None
    assert consumer_span.attributes["messaging.kafka.offset"] == record.offset
    for span in spans.values():
        assert set(span.attributes or {}) <= ALLOWED_ATTRIBUTE_KEYS
        assert CANARY not in repr(span.to_json())
        assert "SINTETICO-7731" not in repr(span.to_json())
