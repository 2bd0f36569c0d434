"""Sending due deliveries: claim under a lease, send outside any transaction, record, retry or escalate.

One dispatch is a few rounds of: (1) a transaction leases up to ``concurrency`` due deliveries to this
dispatch (``lease_owner``, ``lease_until_us``), so another dispatcher, in this process or another, skips them;
(2) the notices are built from the stored facts and sent, concurrently through ``send_all`` (a GreenPool
in the worker), with no transaction open; (3) the round's outcomes are recorded in one transaction (each
alone if that fails), each only while this dispatch still holds the lease: delivered; or a retry after a
full-jitter backoff from the RetryPolicy; or, after the last try or a permanent refusal, FAILED with a
signed NoticeUndeliverable event (stream ``delivery-<id>``) and DELIVERY_FAILED notices to the coordinators,
unless the failed delivery was itself to a coordinator. Nothing is dropped.

A crash between (2) and (3) sends that one delivery again once its lease lapses, with the same delivery id
(receivers dedupe on ``X-Referralnet-Delivery``); a crash at any other moment sends nothing twice.
"""

from __future__ import annotations

import logging
import random as _random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from services.core.eventstore import EventStore, unit_of_work
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import ORG_ROLE_COORDINATOR
from services.core.generated.referralnet.notify.v1 import events_pb2 as notify_events
from services.core.generated.referralnet.notify.v1 import notify_pb2
from services.core.identity.directory import Directory
from services.core.identity.errors import UnknownOrganisationError
from services.core.keyvault.routing_keys import NetworkRoutingKeys
from services.notify.adapters.events import delivery_stream, sealed_event
from services.notify.adapters.repository import Delivery, DeliveryStatus, NotifyRepository
from services.notify.adapters.tables import OUTCOME_CHARS
from services.notify.adapters.transports import SendOutcome, Transports
from services.notify.application.deliveries import Planner, coordinators_for, facts_of
from services.notify.domain.notices import NoticeFacts, notice_message, webhook_body
from services.notify.domain.retry import RetryPolicy
from services.notify.domain.templates import render

log = logging.getLogger(__name__)

Bind = sa.Engine | sessionmaker[Session]
SendAll = Callable[[Callable[[Delivery], SendOutcome], Sequence[Delivery]], list[SendOutcome]]
"""Sends every claimed delivery with the given function, returning the outcomes in the same order."""

NO_SECRET = "no_secret"  # noqa: S105 -- an outcome code, not a password
UNRENDERABLE = "unrenderable"
SEND_ERROR = "send_error"
DEFAULT_CONCURRENCY = 10
LEASE_SLACK_SECONDS = 5.0
MICROS = 1_000_000


def send_in_order(send: Callable[[Delivery], SendOutcome], claimed: Sequence[Delivery]) -> list[SendOutcome]:
    """``SendAll`` one at a time (tests, and anywhere without green threads)."""
    return [send(delivery) for delivery in claimed]


def lease_micros(send_timeout_seconds: float) -> int:
    """How long a claim holds: a send may wait ``send_timeout`` to connect and again for each answer."""
    return int((3 * send_timeout_seconds + LEASE_SLACK_SECONDS) * MICROS)


@dataclass
class DispatchReport:
    """What one dispatch did: deliveries sent, and how each ended up."""

    delivered: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # sent, but not recorded here (lease lapsed, database error)

    @property
    def sent(self) -> int:
        """How many sends were made."""
        return len(self.delivered) + len(self.retrying) + len(self.failed) + len(self.lost)


@dataclass(frozen=True)
class DispatchSettings:
    """What a dispatch needs to know of the configuration (from NotifySettings)."""

    retry: RetryPolicy
    act_at: str
    batch: int = 50
    send_timeout_seconds: float = 5.0
    concurrency: int = DEFAULT_CONCURRENCY


class Dispatcher:
    """Claims, sends and records due deliveries over one database (see the module's docstring)."""

    def __init__(self, bind: Bind, events: EventStore, keys: NetworkRoutingKeys, directory: Directory, *,
                 secrets: Mapping[str, bytes], transports: Transports, settings: DispatchSettings,
                 clock: Callable[[], int], random: Callable[[], float] = _random.random,
                 send_all: SendAll = send_in_order) -> None:
        self._bind = bind
        self._events = events
        self._keys = keys
        self._directory = directory
        self._secrets = secrets
        self._transports = transports
        self._settings = settings
        self._clock = clock
        self._random = random
        self._send_all = send_all
        self._planner = Planner(directory, clock)

    def dispatch(self, limit: int | None = None) -> DispatchReport:
        """Send up to ``limit`` (default: the batch setting) due deliveries; what happened to each."""
        budget = self._settings.batch if limit is None else limit
        owner = uuid.uuid4().hex
        report = DispatchReport()
        while budget > 0:
            claimed = self._claim(owner, min(budget, self._settings.concurrency))
            if not claimed:
                break
            budget -= len(claimed)
            self._record_round(list(zip(claimed, self._send_all(self._send, claimed), strict=True)), owner, report)
        return report

    def _record_round(self, results: list[tuple[Delivery, SendOutcome]], owner: str, report: DispatchReport) -> None:
        """Record a round's outcomes in one transaction (one commit, not one per delivery: on PostgreSQL the
        commits were what capped deliveries per second); if that transaction fails, each on its own, so one
        row that cannot be recorded does not cost the others their record."""
        round_report = DispatchReport()
        try:
            with unit_of_work(self._bind) as session:
                for delivery, outcome in results:
                    self._record(session, delivery, outcome, owner, round_report)
        except Exception as error:
            log.warning("a round of %d outcomes could not be recorded together (%s); recording each alone",
                        len(results), type(error).__name__)
            round_report = DispatchReport()
            for delivery, outcome in results:
                try:
                    with unit_of_work(self._bind) as session:
                        self._record(session, delivery, outcome, owner, round_report)
                except Exception as single_error:  # the others' outcomes are still worth recording
                    log.warning("delivery %s: its attempt could not be recorded (%s); it is tried again once its "
                                "lease lapses", delivery.delivery_id, type(single_error).__name__)
                    round_report.lost.append(delivery.delivery_id)
        for mine, theirs in ((report.delivered, round_report.delivered), (report.retrying, round_report.retrying),
                             (report.failed, round_report.failed), (report.lost, round_report.lost)):
            mine.extend(theirs)

    def _claim(self, owner: str, limit: int) -> list[Delivery]:
        now = self._clock()
        with unit_of_work(self._bind) as session:
            return NotifyRepository(session).claim(now, owner, now + lease_micros(self._settings.send_timeout_seconds),
                                                   limit)

    # -- sending (no transaction open) --

    def _send(self, delivery: Delivery) -> SendOutcome:
        try:
            if delivery.channel == notify_pb2.CHANNEL_WEBHOOK:
                return self._send_webhook(delivery)
            rendered = render(facts_of(delivery), delivery.language, self._settings.act_at)
            return self._transports.send_email(delivery.endpoint, rendered.subject, rendered.text,
                                               delivery.delivery_id)
        except ValueError as error:  # facts no template can say (an unknown enum value): no retry helps
            log.warning("delivery %s cannot be rendered: %s", delivery.delivery_id, type(error).__name__)
            return SendOutcome(delivered=False, outcome=UNRENDERABLE, permanent=True)
        except Exception as error:  # a transport must not raise; if one does, this attempt failed
            log.warning("delivery %s: the transport raised %s", delivery.delivery_id, type(error).__name__)
            return SendOutcome(delivered=False, outcome=SEND_ERROR)

    def _send_webhook(self, delivery: Delivery) -> SendOutcome:
        secret = self._secrets.get(delivery.org_id)
        if not secret:
            return SendOutcome(delivered=False, outcome=NO_SECRET, permanent=True)
        notice = notice_message(facts_of(delivery), notice_id=delivery.notice_id, language=delivery.language,
                                act_at=self._settings.act_at)
        return self._transports.send_webhook(delivery.endpoint, secret, delivery.delivery_id, webhook_body(notice))

    # -- recording --

    def _record(self, session: Session, delivery: Delivery, outcome: SendOutcome, owner: str,
                report: DispatchReport) -> None:
        attempt = delivery.attempts + 1
        policy = self._settings.retry
        repository, now = NotifyRepository(session), self._clock()
        if outcome.delivered:
            status, next_at, bucket = DeliveryStatus.DELIVERED, 0, report.delivered
        elif outcome.permanent or policy.exhausted(attempt):
            status, next_at, bucket = DeliveryStatus.FAILED, 0, report.failed
        else:
            delay = policy.delay_seconds(attempt, self._random)
            status, next_at, bucket = DeliveryStatus.PENDING, now + int(delay * MICROS), report.retrying
        code = outcome.outcome[:OUTCOME_CHARS]
        if not repository.record(delivery, owner, at=now, outcome=code, status=status, next_attempt_at=next_at):
            log.warning("delivery %s: the lease lapsed before attempt %d was recorded; another dispatcher "
                        "has it", delivery.delivery_id, attempt)
            report.lost.append(delivery.delivery_id)
            return
        if status == DeliveryStatus.FAILED:
            self._escalate(session, repository, delivery, attempts=attempt, last_outcome=code, now=now)
        bucket.append(delivery.delivery_id)
        log.info("delivery %s attempt %d: %s (%s)", delivery.delivery_id, attempt, outcome.outcome, status)

    def _escalate(self, session: Session, repository: NotifyRepository, delivery: Delivery, *, attempts: int,
                  last_outcome: str, now: int) -> None:
        """NoticeUndeliverable on ``delivery-<id>``, and DELIVERY_FAILED to the coordinators (in ``session``)."""
        message = notify_events.NoticeUndeliverable(
            delivery_id=delivery.delivery_id, org_id=delivery.org_id,
            notice_type=delivery.notice_type,  # type: ignore[arg-type]  # a NoticeType number from the row
            channel=delivery.channel,  # type: ignore[arg-type]
            event_id=delivery.event_id, reference=delivery.reference, attempts=attempts, last_outcome=last_outcome,
            failed_at_unix_micros=now)
        event = sealed_event(message, self._keys, now)
        self._events.append(session, delivery_stream(delivery.delivery_id), 0, [event])
        if self._is_coordinator(delivery.org_id):
            log.warning("delivery %s to coordinator %s failed for good; NoticeUndeliverable %s appended",
                        delivery.delivery_id, delivery.org_id, event.event_id)
            return
        facts = NoticeFacts(notify_pb2.NOTICE_TYPE_DELIVERY_FAILED, event.event_id, delivery.reference,
                            delivery.referral_id, delivery.service_type, delivery.region, delivery.deadline_us, now)
        told = self._planner.to_orgs(repository, coordinators_for(self._directory, 0), facts, event.event_id)
        log.warning("delivery %s to %s failed for good; NoticeUndeliverable %s, %d delivery(ies) to coordinators",
                    delivery.delivery_id, delivery.org_id, event.event_id, told)

    def _is_coordinator(self, org_id: str) -> bool:
        try:
            return bool(self._directory.org(org_id).role == ORG_ROLE_COORDINATOR)
        except UnknownOrganisationError:
            return False
