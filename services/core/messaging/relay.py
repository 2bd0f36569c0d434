"""The outbox relay: publishes a service's outbox to Kafka, at least once and in order per stream.

A round reads a page of unpublished rows (in outbox id order, so each stream's events are in sequence
order), sends them with the idempotent producer (key = stream id, so a stream stays in one partition),
waits for every acknowledgement, and only then marks the acknowledged rows published in a new
transaction. A crash between the acknowledgement and the mark re-sends that page: duplicates on the wire,
which consumers drop by the ``event-id`` header; nothing is lost.

Order: once a row of a stream is not acknowledged, the later rows of that stream in the round are not
marked either (nor sent, when the failure is known at send time), so the stream is re-sent from its first
unpublished event: every event after a gap comes again after the gap is filled (docs/adr/0007).

Run it as a process (``python -m services.core.messaging.relay``, until SIGTERM) or from a host that
calls ``publish_pending`` / ``run``; under eventlet pass ``cooperative_yield=eventlet.sleep`` so a long
page of sends gives the hub a turn every ``yield_every`` sends. One relay per outbox: two would
interleave their pages.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

import sqlalchemy as sa
from kafka.errors import KafkaError, KafkaTimeoutError
from opentelemetry import trace
from opentelemetry.sdk.environment_variables import OTEL_SERVICE_NAME
from opentelemetry.trace import SpanKind
from sqlalchemy.orm import Session

from services.core.database import create_engine
from services.core.envelope import now_micros
from services.core.eventstore.outbox import OutboxRecord, mark_published, pending
from services.core.messaging.producer import Producer, ProducerFactory, SendFuture, kafka_producer_factory
from services.core.messaging.security import KafkaSecurityError, kafka_security_from_env
from services.core.telemetry.attributes import span_attributes
from services.core.telemetry.propagation import context_from, current_trace_context, kafka_headers
from services.core.telemetry.setup import configure_tracing

_LOG = logging.getLogger(__name__)
_WAKEUP_SLICE_S = 0.05  # a pause that waits for a wake-up looks at ``stop`` this often
DEFAULT_SERVICE_NAME = "outbox-relay"


class OutboxRelay:
    """Publishes one database's outbox to Kafka. Not thread-safe: one caller at a time."""

    def __init__(self, engine: sa.Engine, producer: ProducerFactory | str, *, batch_size: int = 1000,
                 ack_timeout_s: float = 60.0, cooperative_yield: Callable[[], object] | None = None,
                 yield_every: int = 100, clock: Callable[[], int] = now_micros,
                 tracer: trace.Tracer | None = None) -> None:
        """``producer``: bootstrap servers, or a factory of producers (called lazily, again after a failure).

        ``ack_timeout_s`` bounds a round's wait for acknowledgements; keep it above the producer's
        ``delivery_timeout_ms`` (30 s by default) so every send resolves before the round gives up on it.
        """
        if batch_size < 1 or yield_every < 1:
            msg = "batch_size and yield_every must be at least 1"
            raise ValueError(msg)
        self._engine = engine
        self._factory = kafka_producer_factory(producer) if isinstance(producer, str) else producer
        self._batch_size = batch_size
        self._ack_timeout_s = ack_timeout_s
        self._cooperative_yield = cooperative_yield
        self._yield_every = yield_every
        self._clock = clock
        self._producer: Producer | None = None
        self._tracer = tracer or trace.get_tracer(__name__)

    def publish_pending(self) -> int:
        """Publish one page of the outbox; returns how many rows were acknowledged and marked published.

        Rows whose send failed stay pending for the next round (logged by outbox and event id). Raises
        when no producer can be made (Kafka unreachable) or the database fails; rows then stay pending.
        """
        with Session(self._engine) as session:  # read, then end the transaction before talking to Kafka
            records = pending(session, self._batch_size)
        if not records:
            return 0
        acknowledged = self._send(records)
        return self._mark(acknowledged) if acknowledged else 0

    def run(self, stop: threading.Event | Callable[[], bool], idle_sleep_s: float = 0.5,
            max_backoff_s: float = 30.0, wakeup: threading.Event | None = None) -> None:
        """Publish until ``stop`` is set (or returns True), finishing the round in progress; errors back off.

        ``wakeup``, when given, ends an idle pause early: set it right after a commit and the relay polls
        at once (it is cleared when it ends a pause; a back-off after an error is not shortened).
        """
        should_stop = stop.is_set if isinstance(stop, threading.Event) else stop
        backoff = idle_sleep_s
        while not should_stop():
            try:
                published = self.publish_pending()
            except Exception as exc:  # a failed round is retried; the loop must survive it
                _LOG.warning("outbox relay round failed (%s); retrying in %.1fs", _describe(exc), backoff)
                self._discard_producer()
                self._pause(stop, backoff)
                backoff = min(backoff * 2, max_backoff_s)
                continue
            backoff = idle_sleep_s
            if not published:
                self._pause(stop, idle_sleep_s, wakeup)

    def close(self, timeout_s: float = 10.0) -> None:
        """Close the producer, if one was made, waiting up to ``timeout_s`` for sends in flight.

        A producer that cannot finish in time is abandoned with a warning: its unacknowledged rows were
        not marked, so they are sent again by the next round (duplicates, never losses).
        """
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            producer.close(timeout=timeout_s)
        except Exception as exc:  # kafka-python's close() raises when its flush times out
            _LOG.warning("producer abandoned with sends unresolved (%s)", _describe(exc))

    def _send(self, records: Sequence[OutboxRecord]) -> list[int]:
        """Send ``records`` in order; the outbox ids acknowledged, keeping each stream's acknowledged prefix."""
        producer = self._producer_now()
        futures: list[SendFuture | None] = []
        blocked_topics: set[str] = set()
        blocked_streams: set[str] = set()
        for count, record in enumerate(records, start=1):
            future = None
            if record.topic not in blocked_topics and record.stream_id not in blocked_streams:
                try:
                    future = self._send_one(producer, record)
                except Exception as exc:  # the row stays pending; the error is logged below
                    _log_unsent(record, exc)
                    blocked_streams.add(record.stream_id)
                    if isinstance(exc, KafkaTimeoutError):  # no metadata for the topic: every send would wait
                        blocked_topics.add(record.topic)
            futures.append(future)
            if self._cooperative_yield is not None and count % self._yield_every == 0:
                self._cooperative_yield()
        return self._acknowledged(producer, records, futures)

    def _send_one(self, producer: Producer, record: OutboxRecord) -> SendFuture:
        """Send one record inside a PRODUCER span continuing the trace its event was appended in."""
        parent = context_from(record.traceparent, record.tracestate) if record.traceparent else None
        attributes = span_attributes(event_id=record.event_id, event_type=record.event_type, topic=record.topic,
                                     stream_sequence=record.stream_sequence)
        with self._tracer.start_as_current_span(f"{record.topic} publish", context=parent, kind=SpanKind.PRODUCER,
                                           attributes=attributes):
            return producer.send(record.topic, value=record.envelope, key=record.stream_id.encode(),
                                 headers=kafka_headers(record.event_id, record.event_type, *current_trace_context()))

    def _acknowledged(self, producer: Producer, records: Sequence[OutboxRecord],
                      futures: Sequence[SendFuture | None]) -> list[int]:
        deadline = time.monotonic() + self._ack_timeout_s
        try:
            producer.flush(timeout=self._ack_timeout_s)
        except Exception as exc:  # unresolved sends count as failed below
            _LOG.warning("outbox relay flush failed (%s)", _describe(exc))
        acknowledged: list[int] = []
        failed_streams: set[str] = set()
        for record, future in zip(records, futures, strict=True):
            if future is None or record.stream_id in failed_streams:
                failed_streams.add(record.stream_id)
                continue
            try:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
            except Exception as exc:  # not acknowledged: stays pending
                _log_unsent(record, exc)
                failed_streams.add(record.stream_id)
                continue
            acknowledged.append(record.outbox_id)
        if len(acknowledged) < len(records):
            self._discard_producer()  # the next round starts from a fresh producer id and clean sequences
        return acknowledged

    def _mark(self, outbox_ids: Sequence[int]) -> int:
        with Session(self._engine) as session, session.begin():
            return mark_published(session, outbox_ids, self._clock())

    def _producer_now(self) -> Producer:
        if self._producer is None:
            self._producer = self._factory()
        return self._producer

    def _discard_producer(self) -> None:
        self.close(timeout_s=0)  # every send of the round has resolved or been given up on

    @staticmethod
    def _pause(stop: threading.Event | Callable[[], bool], seconds: float,
               wakeup: threading.Event | None = None) -> None:
        if wakeup is not None:  # wait for the wake-up, looking at ``stop`` every slice
            should_stop = stop.is_set if isinstance(stop, threading.Event) else stop
            deadline = time.monotonic() + seconds
            while not should_stop() and (left := deadline - time.monotonic()) > 0:
                if wakeup.wait(min(left, _WAKEUP_SLICE_S)):
                    wakeup.clear()  # the poll that follows sees every commit made before the wake-up
                    return
        elif isinstance(stop, threading.Event):
            stop.wait(seconds)
        else:
            time.sleep(seconds)


def _log_unsent(record: OutboxRecord, exc: BaseException) -> None:
    _LOG.warning("outbox row %d (event %s) not acknowledged, stays pending: %s", record.outbox_id,
                 record.event_id, _describe(exc))


def _describe(exc: BaseException) -> str:
    """The error's class, and its text only for Kafka's own errors (a database error's text carries row data)."""
    return f"{type(exc).__name__}: {exc}" if isinstance(exc, KafkaError) else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m services.core.messaging.relay``: relay one database's outbox until SIGTERM or SIGINT.

    Kafka TLS comes from ``KAFKA_SECURITY_PROTOCOL`` and ``KAFKA_SSL_*`` (services/core/messaging/security.py).
    Traces go where the OTEL_ variables say, under ``--service-name`` (services/core/telemetry/setup.py).
    """
    parser = argparse.ArgumentParser(prog="python -m services.core.messaging.relay", description=main.__doc__)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="SQLAlchemy URL of the service's database (default: $DATABASE_URL, which keeps "
                             "the password out of the process list)")
    parser.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
                        help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--idle-sleep", type=float, default=0.5, help="seconds between polls of an empty outbox")
    parser.add_argument("--service-name", default=os.environ.get(OTEL_SERVICE_NAME) or DEFAULT_SERVICE_NAME,
                        help=f"this process's name in traces, e.g. referral-relay (default: ${OTEL_SERVICE_NAME}, "
                             f"else {DEFAULT_SERVICE_NAME})")
    args = parser.parse_args(argv)
    if not args.database_url or not args.bootstrap_servers:
        parser.error("--database-url and --bootstrap-servers (or their environment variables) are required")
    try:
        producer = kafka_producer_factory(args.bootstrap_servers, **kafka_security_from_env())
    except KafkaSecurityError as error:
        parser.error(str(error))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        _LOG.info("signal %d: stopping after the current round", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    tracer = configure_tracing(args.service_name).get_tracer(__name__)
    engine = create_engine(args.database_url)
    relay = OutboxRelay(engine, producer, batch_size=args.batch_size, tracer=tracer)
    _LOG.info("outbox relay started")
    try:
        relay.run(stop, idle_sleep_s=args.idle_sleep)
    finally:
        relay.close()
        engine.dispose()
    _LOG.info("outbox relay stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
