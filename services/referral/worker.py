"""The referral worker (nameko): routes intake's referrals to providers and expires unanswered offers.

Run with ``nameko run --config worker.yaml services.referral.worker``. Config keys (services/core/runtime/
config.py and services/referral/config.py): ``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL`` (shared with the
referral edge, whose outbox relay publishes what this worker appends), ``NETWORK_DIR``,
``EVENT_STORE_SERVICE: referral``, optionally ``OFFER_DEADLINES`` and ``OFFER_EXPIRY_INTERVAL_SECONDS``.
The database must be migrated (the edge does it on start; ``python -m services.core.migrations upgrade
--version-location services/referral/migrations`` too) and the topics must exist, the dead-letter topic
``referralnet.referral-worker.dlq.v1`` included.

- ``on_intake_event`` consumes ``referralnet.intake.events.v1``: it opens each event's routing section with
  the network routing keys, decodes it with the intake catalogue and applies it in the handler's
  transaction (which holds the dedupe claim already).
  ``REFERRAL_WORKER_INTAKE_TOPIC`` and ``REFERRAL_WORKER_GROUP`` (environment, read at import, as the decorator
  needs them) run an isolated copy on another topic and consumer group, e.g. in tests; the dead-letter topic
  is then ``referralnet.<group>.dlq.v1``.
- ``expire_offers`` runs every ``OFFER_EXPIRY_INTERVAL_SECONDS`` (5 by default) in its own transaction:
  offers past their deadline expire and their needs go to the next provider. Deadlines are stored with
  each offer, so a restart misses none; a race lost to another worker is rolled back and left to it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from nameko.extensions import DependencyProvider
from nameko.timer import Timer

from services.core.envelope import SectionKind, now_micros
from services.core.events.catalogues import INTAKE_EVENTS
from services.core.eventstore import ConcurrencyError, EventStore
from services.core.identity.directory import Directory
from services.core.keyvault.routing_keys import NetworkRoutingKeys, load_routing_keys
from services.core.messaging.topics import events_topic
from services.core.runtime import (
    ConsumedEvent,
    EventStoreProvider,
    TracingProvider,
    UnitOfWork,
    consume,
)
from services.core.runtime import config as cfg
from services.referral.application.app import ReferralApplication
from services.referral.config import (
    DEFAULT_EXPIRY_INTERVAL_SECONDS,
    SERVICE,
    expiry_interval_seconds,
    offer_deadlines,
)
from services.referral.domain.deadlines import OfferDeadlines

log = logging.getLogger(__name__)

WORKER = "referral-worker"
EXPIRY_BATCH = 100
INTAKE_TOPIC = os.environ.get("REFERRAL_WORKER_INTAKE_TOPIC") or events_topic("intake")
GROUP = os.environ.get("REFERRAL_WORKER_GROUP") or WORKER


@dataclass(frozen=True)
class Routing:
    """What the worker routes with: the network routing keys, the directory, the offer deadlines, a clock."""

    keys: NetworkRoutingKeys
    directory: Directory
    deadlines: OfferDeadlines
    clock: Callable[[], int] = now_micros

    def decode(self, event: ConsumedEvent) -> Message:
        """The payload of an intake event: its routing section, opened and decoded (UnprocessableEvent or an
        EnvelopeError when it cannot be: the record is dead-lettered)."""
        payload = event.open(SectionKind.ROUTING, self.keys)
        return INTAKE_EVENTS.decode(event.header.event_type, event.header.schema_version, payload)

    def application(self, events: EventStore) -> ReferralApplication:
        """The application for one worker call, appending with ``events`` in the worker's own session."""
        return ReferralApplication(None, events, self.keys, self.directory, deadlines=self.deadlines,
                                   clock=self.clock)


class RoutingProvider(DependencyProvider):  # type: ignore[misc]  # nameko is untyped
    """Loads the network routing keys (``NETWORK_DIR``), the directory and ``OFFER_DEADLINES`` once."""

    def setup(self) -> None:
        """Read the config; refuse to sign referral events as any service but referral."""
        config = self.container.config
        if cfg.required(config, cfg.EVENT_STORE_SERVICE) != SERVICE:
            msg = f"{cfg.EVENT_STORE_SERVICE} must be {SERVICE!r} for the referral worker"
            raise cfg.RuntimeConfigError(msg)
        folder = cfg.network_dir(config)
        self.routing = Routing(load_routing_keys(folder), cfg.directory_at(folder), offer_deadlines(config))

    def get_dependency(self, worker_ctx: Any) -> Routing:  # noqa: ANN401 -- nameko's WorkerContext
        """The routing context (immutable, shared by the workers)."""
        return self.routing


class ExpiryTimer(Timer):  # type: ignore[misc]
    """nameko's timer, with its interval read from ``OFFER_EXPIRY_INTERVAL_SECONDS`` at setup."""

    def __init__(self, **kwargs: Any) -> None:  # noqa: ANN401 -- nameko's extension keywords
        super().__init__(interval=DEFAULT_EXPIRY_INTERVAL_SECONDS, **kwargs)

    def setup(self) -> None:
        """Take the interval from the config (ValueError for a value that is not > 0)."""
        self.interval = expiry_interval_seconds(self.container.config)


expiry_timer = ExpiryTimer.decorator


class ReferralWorker:
    """Routes submitted referrals, follows consent, and expires unanswered offers."""

    name = WORKER
    session = UnitOfWork()
    events = EventStoreProvider()
    routing = RoutingProvider()
    tracer = TracingProvider()

    @consume(topics=[INTAKE_TOPIC], group_id=GROUP)
    def on_intake_event(self, event: ConsumedEvent) -> None:
        """Apply one of intake's events in this record's transaction."""
        message = self.routing.decode(event)
        self.routing.application(self.events).apply_intake_event(self.session, event.header, message)

    @expiry_timer()  # type: ignore[untyped-decorator]  # nameko is untyped
    def expire_offers(self) -> None:
        """Expire offers past their deadline (a batch per tick) and route their needs again."""
        try:
            expired = self.routing.application(self.events).expire_due_offers(
                self.routing.clock(), EXPIRY_BATCH, session=self.session)
        except ConcurrencyError as lost:
            self.session.rollback()  # UnitOfWork then commits an empty transaction
            log.info("offer expiry: %s changed meanwhile; rolled back, the next tick starts afresh", lost.stream_id)
            return
        if expired:
            log.info("offer expiry: %d offer(s) expired", expired)
