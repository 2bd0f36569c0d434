"""The notify service's use cases, shared by the gRPC edge and the nameko worker (docs/adr/0014-notify.md).

- The API's one use case, ``list_deliveries``: the caller's own delivery log, newest first, a page at a time.
  Any member may call it; it never shows another organisation's deliveries.
- The worker's: ``apply_referral_event`` and ``apply_intake_event`` run in the Kafka handler's transaction
  (which already holds the dedupe claim) and add the projections and deliveries an event calls for;
  ``remind_due`` turns offers whose persisted reminder time has come into OFFER_REMINDER deliveries;
  ``dispatch_due`` claims, sends and records due deliveries in transactions of its own
  (services/notify/application/dispatch.py). Each of the first three returns how many deliveries it added,
  so the worker can wake its dispatcher once they are committed.

Notices are built only from ``NoticeFacts``; this service holds no subject key and never calls the vault.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable, Mapping

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.orm import Session, sessionmaker

from services.core.envelope import EventHeader, now_micros
from services.core.eventstore import EventStore, unit_of_work
from services.core.generated.referralnet.notify.v1 import notify_pb2 as api
from services.core.grpcedge.caller import Caller
from services.core.grpcedge.page_token import decode_page_token, encode_page_token, page_size
from services.core.identity.directory import Directory
from services.core.keyvault.routing_keys import NetworkRoutingKeys
from services.notify.adapters.api import delivery_message
from services.notify.adapters.repository import HandoffState, NotifyRepository
from services.notify.adapters.transports import Transports
from services.notify.application import requests
from services.notify.application.deliveries import Planner, reminder_key
from services.notify.application.dispatch import (
    DEFAULT_CONCURRENCY,
    Dispatcher,
    DispatchReport,
    DispatchSettings,
    SendAll,
    send_in_order,
)
from services.notify.application.events import EventHandlers
from services.notify.config import NotifySettings, notify_settings
from services.notify.domain.notices import NoticeFacts

Bind = sa.Engine | sessionmaker[Session]
DEFAULT_REMINDER_BATCH = 100
MICROS = 1_000_000


class NotifyApplication:
    """The notify use cases over one database, event store, network routing key set and directory."""

    def __init__(self, bind: Bind | None, events: EventStore, routing_keys: NetworkRoutingKeys,
                 directory: Directory, *, settings: NotifySettings | None = None,
                 transports: Transports | None = None, secrets: Mapping[str, bytes] | None = None,
                 clock: Callable[[], int] = now_micros, random: Callable[[], float] = _random.random,
                 send_all: SendAll = send_in_order, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        """``bind`` (engine or session factory) is needed by every use case but the event handlers;
        ``transports`` and ``secrets`` (org id -> webhook secret) only by ``dispatch_due``."""
        self._bind = bind
        self._events = events
        self._keys = routing_keys
        self._directory = directory
        self._settings = settings or notify_settings(None, {})
        self._transports = transports
        self._secrets = dict(secrets or {})
        self._clock = clock
        self._random = random
        self._send_all = send_all
        self._concurrency = concurrency
        self._planner = Planner(directory, clock)
        self._handlers = EventHandlers(directory, self._planner,
                                       int(self._settings.reminder_before_seconds * MICROS), clock)

    # -- the API --

    def list_deliveries(self, caller: Caller, request: api.ListDeliveriesRequest) -> api.ListDeliveriesResponse:
        """The caller's own deliveries, newest first, optionally by status and causing event, one page at a time."""
        statuses = requests.statuses(request.statuses)
        event_id = requests.event_id(request.event_id)
        size = page_size(request.page_size)
        after = decode_page_token(request.page_token)
        with self._read() as session:
            repository = NotifyRepository(session)
            found = repository.deliveries_of(caller.org_id, statuses=statuses, event_id=event_id, after=after,
                                             limit=size + 1)
            page = found[:size]
            attempts = repository.attempts_of([delivery.delivery_id for delivery in page])
        token = ""
        if len(found) > size:
            token = encode_page_token(page[-1].created_at_us, page[-1].delivery_id)
        return api.ListDeliveriesResponse(
            deliveries=[delivery_message(delivery, attempts.get(delivery.delivery_id, [])) for delivery in page],
            next_page_token=token)

    # -- the worker's use cases --

    def apply_referral_event(self, session: Session, header: EventHeader, message: Message) -> int:
        """Apply one of referral's events (decoded routing section) in ``session``; deliveries added.

        UnprocessableEvent for an event type notify does not know what to do with (dead-lettered).
        """
        return self._handlers.referral_event(NotifyRepository(session), header, message)

    def apply_intake_event(self, session: Session, header: EventHeader, message: Message) -> int:
        """Apply one of intake's events (decoded routing section) in ``session``; deliveries added."""
        return self._handlers.intake_event(NotifyRepository(session), header, message)

    def remind_due(self, now_micros: int, limit: int = DEFAULT_REMINDER_BATCH, *,
                   session: Session | None = None) -> int:
        """OFFER_REMINDER deliveries for up to ``limit`` offers whose reminder time has come; deliveries added.

        Each reminder is taken with a guarded UPDATE, so two workers never both remind of one offer (and the
        notice key ``reminder:<handoff id>`` would refuse a second one anyway). An offer whose deadline has
        passed by now is not reminded of: its HandoffExpired notice follows. Runs in ``session`` (the timer's
        transaction) when given, else in a unit of work of its own.
        """
        if session is not None:
            return self._remind(NotifyRepository(session), now_micros, limit)
        with unit_of_work(self._require_bind()) as own:
            return self._remind(NotifyRepository(own), now_micros, limit)

    def _remind(self, repository: NotifyRepository, now: int, limit: int) -> int:
        added = 0
        for handoff in repository.due_reminders(now, limit):
            if not repository.take_reminder(handoff.handoff_id):
                continue
            if handoff.state != HandoffState.OFFERED or now >= handoff.expires_at_us:
                continue
            facts = NoticeFacts(api.NOTICE_TYPE_OFFER_REMINDER, handoff.offer_event_id, handoff.handoff_id,
                                handoff.referral_id, handoff.service_type, handoff.region, handoff.expires_at_us, now)
            added += self._planner.to_org(repository, handoff.provider_org, facts, reminder_key(handoff.handoff_id))
        return added

    def dispatch_due(self, limit: int | None = None) -> DispatchReport:
        """Claim, send and record up to ``limit`` (default ``NOTIFY_DISPATCH_BATCH``) due deliveries."""
        if self._transports is None:
            msg = "this NotifyApplication has no transports: dispatching needs them"
            raise RuntimeError(msg)
        settings = DispatchSettings(retry=self._settings.retry, act_at=self._settings.act_at,
                                    batch=self._settings.dispatch_batch,
                                    send_timeout_seconds=self._settings.send_timeout_seconds,
                                    concurrency=self._concurrency)
        dispatcher = Dispatcher(self._require_bind(), self._events, self._keys, self._directory,
                                secrets=self._secrets, transports=self._transports, settings=settings,
                                clock=self._clock, random=self._random, send_all=self._send_all)
        return dispatcher.dispatch(limit)

    # -- plumbing --

    def _read(self) -> Session:
        bind = self._require_bind()
        return bind() if isinstance(bind, sessionmaker) else Session(bind)

    def _require_bind(self) -> Bind:
        if self._bind is None:
            msg = "this NotifyApplication has no database bind: this use case needs one"
            raise RuntimeError(msg)
        return self._bind
