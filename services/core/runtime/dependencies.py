"""nameko DependencyProviders: how a worker reaches its database, event store, key vault and tracer.

Handlers stay thin and testable with ``nameko.testing.services.worker_factory``: each provider injects a
plain object (a SQLAlchemy Session, an EventStore, a KeyVault, an OpenTelemetry Tracer) that a unit test
replaces with a real SQLite-backed one or a fake.
"""

from __future__ import annotations

import logging
from contextvars import Token
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from eventlet.semaphore import Semaphore
from nameko.extensions import DependencyProvider
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from sqlalchemy.orm import Session

from services.core.database import create_engine
from services.core.envelope import EnvelopeError
from services.core.events.errors import UnprocessableEvent
from services.core.eventstore.signing import service_event_store
from services.core.eventstore.store import EventStore
from services.core.identity.errors import KeystoreError
from services.core.keyvault import KeyVault, LocalFileKek
from services.core.runtime import config as cfg
from services.core.runtime.dead_letter import HANDLER_FAILED
from services.core.runtime.delivery import ConsumedEvent, claim, consumed_event_of, skip_handler
from services.core.runtime.green import cooperative_psycopg
from services.core.telemetry.attributes import AttributeValue, header_attributes, span_attributes
from services.core.telemetry.propagation import context_from
from services.core.telemetry.setup import configure_tracing

log = logging.getLogger(__name__)


class Settlement(StrEnum):
    """How a Kafka worker's transaction ended."""

    COMMITTED = "committed"  # the handler's effects and the dedupe row are durable
    DUPLICATE = "duplicate"  # already processed: nothing ran, nothing changed
    ROLLED_BACK = "rolled_back"  # the handler failed: nothing changed


@dataclass
class _Transaction:
    session: Session
    duplicate: bool = False
    settled: bool = False
    locked: bool = False


def _engine(url: str, workers: int) -> sa.Engine:
    cooperative_psycopg()
    if url.startswith("sqlite"):
        return create_engine(url)
    return create_engine(url, pool_size=workers, max_overflow=2, pool_pre_ping=True)


class UnitOfWork(DependencyProvider):  # type: ignore[misc]  # nameko is untyped
    """A SQLAlchemy Session per worker; its transaction is committed or rolled back around the handler.

    For a Kafka worker the transaction begins with the dedupe claim (``processed_events``), the handler is
    skipped for an event already processed, and the Kafka entrypoint settles the transaction (commit or
    rollback) before it counts the record's offset as finished. For other entrypoints the transaction
    commits when the handler returns and rolls back when it raises. On SQLite, whose writers lock the
    whole file, one worker at a time holds a transaction.
    """

    def __init__(self, url_key: str = cfg.DATABASE_URL) -> None:
        self.url_key = url_key
        self.engine: sa.Engine | None = None
        self._transactions: dict[Any, _Transaction] = {}
        self._file_lock: Semaphore | None = None

    def setup(self) -> None:
        """Create the engine from the nameko config (``DATABASE_URL``)."""
        url = cfg.database_url(self.container.config, self.url_key)
        self.engine = _engine(url, self.container.max_workers)
        self._file_lock = Semaphore(1) if self.engine.dialect.name == "sqlite" else None

    def stop(self) -> None:
        """Close the pooled connections."""
        if self.engine is not None:
            self.engine.dispose()

    def get_dependency(self, worker_ctx: Any) -> Session:  # noqa: ANN401 -- nameko's WorkerContext
        """A new Session for this worker (it opens a connection at its first statement)."""
        transaction = _Transaction(Session(self.engine))
        self._transactions[worker_ctx] = transaction
        return transaction.session

    def worker_setup(self, worker_ctx: Any) -> None:  # noqa: ANN401
        """For a Kafka worker: claim the event, or skip the handler if it was processed already."""
        transaction = self._transactions[worker_ctx]
        if self._file_lock is not None:
            self._file_lock.acquire()
            transaction.locked = True
        event = consumed_event_of(worker_ctx)
        if event is None:
            return
        try:
            transaction.duplicate = not claim(transaction.session, event)
        except Exception as exc:  # raising here would kill the container: fail the handler
            log.warning("dedupe claim of event %s failed: %s", event.event_id, type(exc).__name__)
            skip_handler(worker_ctx, exc)
            return
        if transaction.duplicate:
            skip_handler(worker_ctx)

    def settle(self, worker_ctx: Any, succeeded: bool) -> Settlement:  # noqa: ANN401
        """Commit (handler succeeded) or roll back this worker's transaction; commit errors propagate."""
        transaction = self._transactions[worker_ctx]
        transaction.settled = True
        if transaction.duplicate or not succeeded:
            transaction.session.rollback()
            return Settlement.DUPLICATE if transaction.duplicate else Settlement.ROLLED_BACK
        transaction.session.commit()
        return Settlement.COMMITTED

    def worker_result(self, worker_ctx: Any, result: object = None, exc_info: object = None) -> None:  # noqa: ANN401
        """Settle a transaction the entrypoint did not settle itself (entrypoints other than Kafka)."""
        transaction = self._transactions.get(worker_ctx)
        if transaction is None or transaction.settled:
            return
        try:
            self.settle(worker_ctx, succeeded=exc_info is None)
        except Exception:
            log.exception("the transaction of %s did not commit", worker_ctx)

    def worker_teardown(self, worker_ctx: Any) -> None:  # noqa: ANN401
        """Close the session (rolling back anything left open) and let the next SQLite writer in."""
        transaction = self._transactions.pop(worker_ctx, None)
        if transaction is None:
            return
        transaction.session.close()
        if transaction.locked and self._file_lock is not None:
            self._file_lock.release()


class EventStoreProvider(DependencyProvider):  # type: ignore[misc]
    """The service's EventStore, sealing as the network service ``EVENT_STORE_SERVICE`` with its own key.

    Append with the worker's session (``self.events.append(self.session, ...)``) so the events, their
    outbox rows and the handler's other changes commit together with the dedupe claim.
    """

    def setup(self) -> None:
        """Load the service's signing key from the network folder and check it against the directory."""
        config = self.container.config
        service, folder = cfg.required(config, cfg.EVENT_STORE_SERVICE), cfg.network_dir(config)
        try:
            self.store = service_event_store(folder, service, cfg.directory_at(folder))
        except KeystoreError as error:
            raise cfg.RuntimeConfigError(str(error)) from None

    def get_dependency(self, worker_ctx: Any) -> EventStore:  # noqa: ANN401
        """The store (stateless between calls: the transaction is the caller's session)."""
        return self.store


class KeyVaultProvider(DependencyProvider):  # type: ignore[misc]
    """The key vault (intake's): data keys by id, so handlers can open sections of their own subjects."""

    def setup(self) -> None:
        """Open the vault's database (``KEYVAULT_DATABASE_URL``, else ``DATABASE_URL``) and its KEK file."""
        config = self.container.config
        key = cfg.KEYVAULT_DATABASE_URL if config.get(cfg.KEYVAULT_DATABASE_URL) else cfg.DATABASE_URL
        self.engine = _engine(cfg.database_url(config, key), self.container.max_workers)
        kek = LocalFileKek.from_file(Path(cfg.required(config, cfg.KEYVAULT_KEK_PATH)))
        self.vault = KeyVault(self.engine, kek)

    def stop(self) -> None:
        """Close the vault's pooled connections."""
        self.engine.dispose()

    def get_dependency(self, worker_ctx: Any) -> KeyVault:  # noqa: ANN401
        """The vault, shared by the workers (it caches unwrapped keys briefly)."""
        return self.vault


class TracingProvider(DependencyProvider):  # type: ignore[misc]
    """An OpenTelemetry tracer; a Kafka worker runs inside a CONSUMER span continuing the producer's trace.

    The span's parent is the record's ``traceparent``; its attributes go through the telemetry allow-list
    (event id and type, stream and sequence, producer, topic, partition, offset), never payloads or
    exception text. ``setup`` configures the process's tracing under the nameko service's name
    (``configure_tracing``: where spans go comes from the standard OTEL_ variables), so every worker
    process that declares this provider exports its spans.
    """

    def __init__(self) -> None:
        self.tracer = trace.get_tracer(__name__)
        self._spans: dict[Any, tuple[trace.Span, Token[Context]]] = {}

    def setup(self) -> None:
        """Configure tracing for this service (``notify-worker``...) and take the tracer from its provider."""
        self.tracer = configure_tracing(self.container.service_name).get_tracer(__name__)

    def get_dependency(self, worker_ctx: Any) -> trace.Tracer:  # noqa: ANN401
        """The tracer, for a handler's own child spans."""
        return self.tracer

    def worker_setup(self, worker_ctx: Any) -> None:  # noqa: ANN401
        """Start the CONSUMER span of a Kafka worker and make it current for the handler."""
        event = consumed_event_of(worker_ctx)
        if event is None:
            return
        parent = context_from(event.traceparent, event.tracestate) if event.traceparent else None
        span = self.tracer.start_span(f"process {event.topic}", context=parent, kind=trace.SpanKind.CONSUMER,
                                      attributes=consumer_span_attributes(event))
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        self._spans[worker_ctx] = (span, token)

    def worker_result(self, worker_ctx: Any, result: object = None, exc_info: Any = None) -> None:  # noqa: ANN401
        """Mark the span failed with a reason code (an exception's text may hold plaintext: left out)."""
        entry = self._spans.get(worker_ctx)
        if entry is not None and exc_info is not None:
            error = exc_info[1]
            reason = error.reason if isinstance(error, EnvelopeError | UnprocessableEvent) else HANDLER_FAILED
            entry[0].set_attributes(span_attributes(error_reason=reason))
            entry[0].set_status(trace.Status(trace.StatusCode.ERROR, reason))

    def worker_teardown(self, worker_ctx: Any) -> None:  # noqa: ANN401
        """End the span and restore the worker's previous context."""
        entry = self._spans.pop(worker_ctx, None)
        if entry is not None:
            span, token = entry
            span.end()
            otel_context.detach(token)


def consumer_span_attributes(event: ConsumedEvent) -> dict[str, AttributeValue]:
    """A consumer span's attributes, through the telemetry allow-list: header ids, topic, partition, offset."""
    return header_attributes(event.header, topic=event.topic, partition=event.partition, offset=event.offset)
