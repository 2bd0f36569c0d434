"""The notify worker (nameko): referral's and intake's events in, notices out, reminders, retries.

Run with ``nameko run --config worker.yaml services.notify.worker`` (service ``notify-worker``). Config keys:
the runtime's (services/core/runtime/config.py: ``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL`` shared with the
notify edge, whose outbox relay publishes what this worker appends, ``NETWORK_DIR``,
``EVENT_STORE_SERVICE: notify``) and notify's (services/notify/config.py: ``NOTIFY_*``). At setup it loads
the network routing keys, the signed directory (endpoints, languages, roles) and the webhook secrets
(``<NETWORK_DIR>/notify/webhook-secrets``): a change to any of them needs a restart. The database must be
migrated (the edge does it on start) and the topics must exist, the dead-letter topic
``referralnet.notify-worker.dlq.v1`` included.

- ``on_event`` consumes ``referralnet.referral.events.v1`` (accepted only from ``svc:referral``) and
  ``referralnet.intake.events.v1`` (only from ``svc:intake``); anything else is dead-lettered. It opens each
  event's routing section and applies it in the record's transaction (which holds the dedupe claim): the
  projections and the deliveries it calls for, at most one per (notice key, channel, endpoint).
- ``remind`` (every ``NOTIFY_DISPATCH_INTERVAL_SECONDS``) turns offers whose persisted reminder time has come
  into OFFER_REMINDER deliveries, so a restart misses none.
- ``dispatch`` (the same interval, and woken as soon as a transaction that added deliveries has committed)
  claims due deliveries under a lease, sends them concurrently (an eventlet GreenPool of
  ``SEND_CONCURRENCY``), and records each outcome: delivered, retried later, or failed for good and escalated.

On SQLite the workers of one process take turns at the database (services/core/runtime/dependencies.py), so
records wait while a dispatch sends; on PostgreSQL they do not. Two worker processes may share a PostgreSQL
database: the dedupe claim, the unique deliveries and the leases keep every notice single.

``NOTIFY_WORKER_GROUP``, ``NOTIFY_WORKER_REFERRAL_TOPIC`` and ``NOTIFY_WORKER_INTAKE_TOPIC`` (environment, read at
import, as the decorator needs them) run an isolated copy on other topics and another consumer group, e.g. in
tests; its dead-letter topic is then ``referralnet.<group>.dlq.v1``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import eventlet
import sqlalchemy as sa
from eventlet import Timeout
from eventlet.event import Event
from google.protobuf.message import Message
from nameko.extensions import DependencyProvider
from nameko.timer import Timer
from sqlalchemy.orm import Session

from services.core.envelope import SectionKind, now_micros
from services.core.events.producers import require_producer
from services.core.eventstore import EventStore
from services.core.identity.directory import Directory
from services.core.identity.webhook_secrets import load_webhook_secrets
from services.core.keyvault.routing_keys import NetworkRoutingKeys, load_routing_keys
from services.core.messaging.topics import events_topic
from services.core.runtime import ConsumedEvent, EventStoreProvider, TracingProvider, UnitOfWork, consume
from services.core.runtime import config as cfg
from services.notify.adapters.events import (
    INTAKE_PRODUCER,
    REFERRAL_PRODUCER,
    decode_intake_event,
    decode_referral_event,
)
from services.notify.adapters.repository import Delivery
from services.notify.adapters.transports import SendOutcome, Transports
from services.notify.application.app import NotifyApplication
from services.notify.bootstrap import network_transports
from services.notify.config import SERVICE, NotifySettings, notify_settings

log = logging.getLogger(__name__)

WORKER = "notify-worker"
SEND_CONCURRENCY = 10
REMINDER_BATCH = 100
DEFAULT_INTERVAL_SECONDS = 1.0
GROUP = os.environ.get("NOTIFY_WORKER_GROUP", "").strip() or WORKER
REFERRAL_TOPIC = os.environ.get("NOTIFY_WORKER_REFERRAL_TOPIC", "").strip() or events_topic("referral")
INTAKE_TOPIC = os.environ.get("NOTIFY_WORKER_INTAKE_TOPIC", "").strip() or events_topic("intake")


def green_send_all(pool_size: int) -> Callable[[Callable[[Delivery], SendOutcome], Sequence[Delivery]],
                                               list[SendOutcome]]:
    """Sends of one dispatch round at once, at most ``pool_size`` at a time, outcomes in the claimed order."""
    def send_all(send: Callable[[Delivery], SendOutcome], claimed: Sequence[Delivery]) -> list[SendOutcome]:
        return list(eventlet.GreenPool(pool_size).imap(send, claimed))
    return send_all


@dataclass(frozen=True)
class Notifier:
    """What the worker's methods use: keys, directory, settings, secrets, transports, a clock, and the wake-up."""

    keys: NetworkRoutingKeys
    directory: Directory
    settings: NotifySettings
    secrets: dict[str, bytes]
    transports: Transports
    wake: Callable[[], None]
    clock: Callable[[], int] = now_micros

    def decode(self, event: ConsumedEvent) -> tuple[bool, Message]:
        """(from referral?, the payload) of a consumed event: its producer checked first, then its routing
        section opened and decoded (UnprocessableEvent or an EnvelopeError: the record is dead-lettered)."""
        from_referral = event.topic == REFERRAL_TOPIC
        require_producer(event.header, REFERRAL_PRODUCER if from_referral else INTAKE_PRODUCER)
        payload = event.open(SectionKind.ROUTING, self.keys)
        decode = decode_referral_event if from_referral else decode_intake_event
        return from_referral, decode(event.header, payload)

    def application(self, events: EventStore, bind: sa.Engine | None = None) -> NotifyApplication:
        """The application for one worker call (``bind``: for the dispatcher's own transactions)."""
        return NotifyApplication(bind, events, self.keys, self.directory, settings=self.settings,
                                 transports=self.transports, secrets=self.secrets, clock=self.clock,
                                 send_all=green_send_all(SEND_CONCURRENCY), concurrency=SEND_CONCURRENCY)

    def wake_after_commit(self, session: Session) -> None:
        """Wake the dispatcher once ``session``'s transaction has committed (not if it rolls back)."""
        def woken(_session: Session) -> None:
            self.wake()
        sa.event.listen(session, "after_commit", woken, once=True)


class NotifierProvider(DependencyProvider):  # type: ignore[misc]  # nameko is untyped
    """Loads the routing keys, the directory, the webhook secrets and the ``NOTIFY_*`` settings once."""

    def setup(self) -> None:
        """Read the config; refuse to sign notify's events as any service but notify."""
        config = self.container.config
        if cfg.required(config, cfg.EVENT_STORE_SERVICE) != SERVICE:
            msg = f"{cfg.EVENT_STORE_SERVICE} must be {SERVICE!r} for the notify worker"
            raise cfg.RuntimeConfigError(msg)
        folder = cfg.network_dir(config)
        settings = notify_settings(config)
        self.notifier = Notifier(load_routing_keys(folder), cfg.directory_at(folder), settings,
                                 load_webhook_secrets(folder), network_transports(settings), self._wake)
        log.info("notify worker: %d webhook secret(s) loaded", len(self.notifier.secrets))

    def _wake(self) -> None:
        for entrypoint in self.container.entrypoints:
            if isinstance(entrypoint, DispatchTimer):
                entrypoint.wake()

    def get_dependency(self, worker_ctx: Any) -> Notifier:  # noqa: ANN401 -- nameko's WorkerContext
        """The notifier (immutable, shared by the workers)."""
        return self.notifier


class IntervalTimer(Timer):  # type: ignore[misc]  # nameko is untyped
    """nameko's timer, every ``NOTIFY_DISPATCH_INTERVAL_SECONDS`` (read at setup)."""

    def __init__(self, **kwargs: Any) -> None:  # noqa: ANN401 -- nameko's extension keywords
        super().__init__(interval=DEFAULT_INTERVAL_SECONDS, **kwargs)

    def setup(self) -> None:
        """Take the interval from the config (ValueError naming the key for a bad value)."""
        self.interval = notify_settings(self.container.config).dispatch_interval_seconds


class DispatchTimer(IntervalTimer):
    """An interval timer that ``wake()`` fires at once (a wake-up during a run makes the next run start at once)."""

    def __init__(self, **kwargs: Any) -> None:  # noqa: ANN401 -- nameko's extension keywords
        super().__init__(**kwargs)
        self._signal = Event()
        self._stopping = False

    def wake(self) -> None:
        """Run the dispatcher now (or right after the run in progress)."""
        if not self._signal.ready():
            self._signal.send(True)

    def stop(self) -> None:
        """Let the run in progress finish, then stop."""
        self._stopping = True
        self.wake()
        self.gt.wait()

    def _run(self) -> None:
        while not self._stopping:
            with Timeout(self.interval, exception=False):
                self._signal.wait()
            if self._signal.ready():
                self._signal.reset()
            if self._stopping:
                break
            self.handle_timer_tick()
            self.worker_complete.wait()
            self.worker_complete.reset()


interval_timer = IntervalTimer.decorator
dispatch_timer = DispatchTimer.decorator


class NotifyWorker:
    """Turns referral's and intake's events into notices, reminds of unanswered offers, and delivers."""

    name = WORKER
    session = UnitOfWork()
    events = EventStoreProvider()
    notifier = NotifierProvider()
    tracer = TracingProvider()

    @consume(topics=[REFERRAL_TOPIC, INTAKE_TOPIC], group_id=GROUP)
    def on_event(self, event: ConsumedEvent) -> None:
        """Apply one of referral's or intake's events in this record's transaction; wake the dispatcher after."""
        from_referral, message = self.notifier.decode(event)
        application = self.notifier.application(self.events)
        apply = application.apply_referral_event if from_referral else application.apply_intake_event
        if apply(self.session, event.header, message):
            self.notifier.wake_after_commit(self.session)

    @interval_timer()  # type: ignore[untyped-decorator]  # nameko is untyped
    def remind(self) -> None:
        """OFFER_REMINDER deliveries for offers whose reminder time has come (a batch per tick)."""
        added = self.notifier.application(self.events).remind_due(self.notifier.clock(), REMINDER_BATCH,
                                                                  session=self.session)
        if added:
            log.info("reminders: %d delivery(ies) added", added)
            self.notifier.wake_after_commit(self.session)

    @dispatch_timer()  # type: ignore[untyped-decorator]  # nameko is untyped
    def dispatch(self) -> None:
        """Send due deliveries (a batch per run) in transactions of the dispatcher's own."""
        report = self.notifier.application(self.events, bind=self.session.get_bind()).dispatch_due()
        if report.sent >= self.notifier.settings.dispatch_batch:
            self.notifier.wake()  # a full batch: more may be due, do not wait for the interval
