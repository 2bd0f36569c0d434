"""The notify use cases below the worker and the edge: events in, deliveries, sends, retries, escalation, the log.

What is real: a network made by ``network init`` whose organisations got endpoints with ``network endpoints``
(signed directory, webhook secrets, routing key), a migrated SQLite database, the event store sealing and
signing NoticeUndeliverable as ``svc:notify``, the notices built and rendered by the domain (webhook body,
e-mail text), the envelopes read back with the directory's keys. What is replaced: the network below the
transports (a RecordingTransports records each send and answers from a script: delivered, 503, 410...),
Kafka (events are handed to ``apply_*_event`` in a transaction, as the worker does), the gRPC edge (callers
are built as its interceptor builds them), the clock and the jitter's random number (injected).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.core.application import InvalidArgument
from services.core.database import create_engine
from services.core.events import UnprocessableEvent
from services.core.eventstore import unit_of_work
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.intake.v1 import events_pb2 as intake_events
from services.core.generated.referralnet.notify.v1 import notify_pb2 as api
from services.core.generated.referralnet.referral.v1.referral_pb2 import (
    WITHDRAW_REASON_CONSENT_REVOKED,
    WITHDRAW_REASON_NO_LONGER_NEEDED,
)
from services.core.grpcedge.caller import Caller
from services.core.identity.directory import Directory
from services.core.identity.network import NetworkCreated
from services.core.identity.webhook_secrets import load_webhook_secrets
from services.notify.adapters.database import migrate
from services.notify.adapters.repository import DeliveryStatus, NotifyRepository
from services.notify.adapters.tables import deliveries, notify_handoffs
from services.notify.application.app import NotifyApplication
from services.notify.application.dispatch import lease_micros
from services.notify.application.events import reminder_time
from services.notify.bootstrap import build_application
from services.notify.config import NotifySettings, notify_settings
from services.notify.domain.notices import parse_webhook_body
from tests.unit.notify_support import (
    GONE,
    UNAVAILABLE,
    RecordingTransports,
    ReferralFeed,
    apply_intake,
    apply_referral,
    email_address,
    notify_events,
    notify_network,
    webhook_url,
)
from tests.unit.referral_support import HOUR_US, Clock, SubjectFeed

SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
N = api


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> tuple[NetworkCreated, Directory]:
    return notify_network(tmp_path_factory.mktemp("notify-app") / "network")


def settings(**values: Any) -> NotifySettings:
    config = {"NOTIFY_MAX_ATTEMPTS": 3, "NOTIFY_RETRY_BASE_SECONDS": 2, "NOTIFY_RETRY_CAP_SECONDS": 60,
              "NOTIFY_REMINDER_BEFORE_SECONDS": 1800, "NOTIFY_ACT_AT": "referral.partner.invalid:50052", **values}
    return notify_settings(config, environ={})


@dataclass
class World:
    """A notify database with the application over it, a recording transport and an injected clock."""

    app: NotifyApplication
    engine: sa.Engine
    network: NetworkCreated
    directory: Directory
    clock: Clock
    transports: RecordingTransports
    secrets: dict[str, bytes] = field(default_factory=dict)

    def referral(self, **fields: Any) -> ReferralFeed:
        return ReferralFeed(clock=self.clock, **fields)

    def apply(self, *items: Any) -> int:
        return apply_referral(self.app, self.engine, items)

    def rows(self, org_id: str | None = None) -> list[Any]:
        query = sa.select(deliveries).order_by(deliveries.c.created_at_us, deliveries.c.delivery_id)
        if org_id is not None:
            query = query.where(deliveries.c.org_id == org_id)
        with Session(self.engine) as session:
            return list(session.execute(query))

    def told(self) -> list[tuple[str, int, int]]:
        """(org, channel, notice type) of every delivery, sorted."""
        return sorted((row.org_id, row.channel, row.notice_type) for row in self.rows())

    def log(self, org_id: str, **request: Any) -> api.ListDeliveriesResponse:
        caller = Caller(org_id, self.directory.org(org_id).role, "es")
        return self.app.list_deliveries(caller, api.ListDeliveriesRequest(**request))


def make_world(engine: sa.Engine, network: NetworkCreated, directory: Directory, *,
               secrets: dict[str, bytes] | None = None, **config: Any) -> World:
    clock, transports = Clock(), RecordingTransports()
    loaded = load_webhook_secrets(network.layout.root) if secrets is None else secrets
    app = build_application(engine, network.layout.root, directory=directory, settings=settings(**config),
                            transports=transports, secrets=loaded, clock=clock, random=lambda: 0.5)
    return World(app, engine, network, directory, clock, transports, loaded)


@pytest.fixture
def world(tmp_path: Path, network: tuple[NetworkCreated, Directory]) -> Iterator[World]:
    engine = create_engine(f"sqlite+pysqlite:///{tmp_path / 'notify.db'}")
    migrate(engine)
    yield make_world(engine, *network)
    engine.dispose()


WEBHOOK, EMAIL = N.CHANNEL_WEBHOOK, N.CHANNEL_EMAIL
OFFERED, REMINDER, EXPIRED = N.NOTICE_TYPE_HANDOFF_OFFERED, N.NOTICE_TYPE_OFFER_REMINDER, N.NOTICE_TYPE_HANDOFF_EXPIRED
ESCALATED, REVOKED, FAILED = (N.NOTICE_TYPE_REFERRAL_ESCALATED, N.NOTICE_TYPE_CONSENT_REVOKED,
                              N.NOTICE_TYPE_DELIVERY_FAILED)


# -- who is told what --

def test_an_offer_reaches_each_endpoint_of_the_provider_signed_and_saying_only_the_facts(world):
    feed = world.referral(region=vocab.REGION_CUSCO)
    header, offer = feed.offered("alb-cus-01")
    assert world.apply((header, offer)) == 2

    report = world.app.dispatch_due()
    assert len(report.delivered) == 2 and not report.failed
    [hook] = world.transports.to(webhook_url("alb-cus-01"))
    assert hook.secret == world.secrets["alb-cus-01"] and len(hook.secret) == 32
    notice = parse_webhook_body(hook.body)
    assert (notice.notice_type, notice.reference, notice.referral_id, notice.event_id) == (
        OFFERED, offer.handoff_id, feed.referral_id, header.event_id)
    assert (notice.service_type, notice.region, notice.language) == (vocab.SERVICE_TYPE_SHELTER, vocab.REGION_CUSCO,
                                                                      "es")
    assert notice.deadline_unix_micros == offer.expires_at_unix_micros
    assert notice.act_at == "referral.partner.invalid:50052" and "AcceptHandoff" in notice.text
    assert feed.subject_id not in hook.body.decode() and offer.consent_id not in hook.body.decode()
    [mail] = world.transports.to(email_address("alb-cus-01"))
    assert offer.handoff_id in mail.text and "Cusco" in mail.text and feed.subject_id not in mail.text
    assert {hook.delivery_id, mail.delivery_id} == {row.delivery_id for row in world.rows("alb-cus-01")}


def test_an_english_speaking_provider_gets_its_notice_in_english(world):
    feed = world.referral(region=vocab.REGION_LORETO)
    world.apply(feed.offered("ong-lor-01", vocab.SERVICE_TYPE_REPATRIATION))
    world.app.dispatch_due()
    [hook] = world.transports.to(webhook_url("ong-lor-01"))
    assert parse_webhook_body(hook.body).language == "en"
    [mail] = world.transports.to(email_address("ong-lor-01"))
    assert "repatriation" in mail.text.lower() and "Loreto" in mail.text


def test_an_expiry_tells_the_provider_with_the_facts_of_the_offer_it_had(world):
    feed = world.referral(region=vocab.REGION_CUSCO)
    header, offer = feed.offered("psi-cus-01", vocab.SERVICE_TYPE_PSYCHOSOCIAL)
    world.apply((header, offer))
    world.clock.advance(3 * HOUR_US)
    expired_header, _ = expired = feed.expired(offer)
    assert world.apply(expired) == 1
    [_, row] = world.rows("psi-cus-01")
    assert (row.notice_type, row.event_id, row.reference) == (EXPIRED, expired_header.event_id, offer.handoff_id)
    assert (row.service_type, row.region, row.deadline_us) == (vocab.SERVICE_TYPE_PSYCHOSOCIAL, vocab.REGION_CUSCO, 0)


def test_an_escalation_goes_to_the_coordinators_serving_the_department_or_to_all_when_none_does(world):
    assert world.apply(world.referral(region=vocab.REGION_CUSCO).escalated()) == 2  # coo-cus-01: webhook + e-mail
    assert world.told() == [("coo-cus-01", WEBHOOK, ESCALATED), ("coo-cus-01", EMAIL, ESCALATED)]
    lima = world.referral(region=vocab.REGION_LIMA)  # no coordinator serves Lima in this network
    header, escalation = lima.escalated()
    assert world.apply((header, escalation)) == 3
    rows = [row for row in world.rows() if row.event_id == header.event_id]
    assert sorted((row.org_id, row.channel) for row in rows) == [("coo-cus-01", WEBHOOK), ("coo-cus-01", EMAIL),
                                                                ("coo-lor-01", WEBHOOK)]
    assert {(row.reference, row.referral_id, row.region) for row in rows} == {
        (lima.referral_id, lima.referral_id, vocab.REGION_LIMA)}


def test_moves_that_need_no_notice_add_none_and_an_org_without_endpoints_gets_nothing(world):
    feed = world.referral()
    _, offer = offered = feed.offered("alb-mdd-01")
    assert world.apply(offered) == 1  # webhook only
    assert world.apply(feed.accepted(offer), feed.started(offer), feed.closed()) == 0
    assert world.apply(world.referral(region=vocab.REGION_LIMA).offered("psi-lim-01",
                                                                         vocab.SERVICE_TYPE_PSYCHOSOCIAL)) == 0
    assert world.told() == [("alb-mdd-01", WEBHOOK, OFFERED)]
    with Session(world.engine) as session:
        states = dict(session.execute(sa.select(notify_handoffs.c.provider_org, notify_handoffs.c.state)).all())
    assert states == {"alb-mdd-01": "in_service", "psi-lim-01": "offered"}  # projected all the same


def test_a_revoked_consent_tells_the_providers_it_named_that_hold_an_active_handoff_of_the_subject(world):
    subject = SubjectFeed(clock=world.clock)
    shelter_role = subject.consent(role=vocab.ORG_ROLE_SHELTER)
    legal_org = subject.consent(org_id="leg-aqp-01")
    psychosocial_role = subject.consent(role=vocab.ORG_ROLE_PSYCHOSOCIAL)
    apply_intake(world.app, world.engine, [shelter_role, legal_org, psychosocial_role])
    feed = world.referral(subject_id=subject.subject_id)
    _, cusco = cusco_offer = feed.offered("alb-cus-01")
    _, madre = madre_offer = feed.offered("alb-mdd-01")
    _, legal = legal_offer = feed.offered("leg-aqp-01", vocab.SERVICE_TYPE_LEGAL_AID)
    _, psycho = psycho_offer = feed.offered("psi-cus-01", vocab.SERVICE_TYPE_PSYCHOSOCIAL)
    world.apply(cusco_offer, madre_offer, legal_offer, psycho_offer, feed.declined(madre), feed.accepted(legal))
    before = len(world.rows())

    world.clock.advance(MINUTE_US)
    revocation_header, revocation = subject.revoke(shelter_role[1].consent_id)
    assert apply_intake(world.app, world.engine, [(revocation_header, revocation)]) == 2
    new = world.rows()[before:]
    assert sorted((row.org_id, row.channel, row.notice_type) for row in new) == [
        ("alb-cus-01", WEBHOOK, REVOKED), ("alb-cus-01", EMAIL, REVOKED)]  # not alb-mdd-01: it declined
    assert {(row.event_id, row.reference, row.deadline_us) for row in new} == {
        (revocation_header.event_id, cusco.handoff_id, 0)}

    assert apply_intake(world.app, world.engine, [subject.revoke(legal_org[1].consent_id)]) == 1  # accepted: held
    assert world.rows()[-1].org_id == "leg-aqp-01" and world.rows()[-1].channel == EMAIL

    # referral's withdrawal for this revocation may be applied first (another topic): still told
    world.clock.advance(MINUTE_US)
    psycho_revocation = subject.revoke(psychosocial_role[1].consent_id)
    world.apply(feed.withdrawn(psycho, WITHDRAW_REASON_CONSENT_REVOKED))
    assert apply_intake(world.app, world.engine, [psycho_revocation]) == 1
    assert world.rows()[-1].org_id == "psi-cus-01" and world.rows()[-1].reference == psycho.handoff_id

    assert apply_intake(world.app, world.engine, [subject.revoke(shelter_role[1].consent_id)]) == 0  # again: no-op
    assert apply_intake(world.app, world.engine, [subject.revoke("con-unknown")]) == 0


def test_a_handoff_withdrawn_for_an_earlier_revocation_is_not_told_about_a_later_one(world):
    subject = SubjectFeed(clock=world.clock)
    first, second = subject.consent(role=vocab.ORG_ROLE_SHELTER), subject.consent(org_id="alb-cus-01")
    apply_intake(world.app, world.engine, [first, second])
    feed = world.referral(subject_id=subject.subject_id)
    _, offer = offered = feed.offered("alb-cus-01")
    world.apply(offered, feed.withdrawn(offer, WITHDRAW_REASON_CONSENT_REVOKED))
    world.clock.advance(MINUTE_US)
    assert apply_intake(world.app, world.engine, [subject.revoke(second[1].consent_id)]) == 0


def test_a_service_completed_just_after_the_revocation_is_applied_first_and_its_provider_is_still_told(world):
    """The two topics are read in parallel: the provider held the handoff at the instant of revocation."""
    subject = SubjectFeed(clock=world.clock)
    legal = subject.consent(org_id="leg-aqp-01")
    apply_intake(world.app, world.engine, [legal])
    feed = world.referral(subject_id=subject.subject_id)
    _, offer = offered = feed.offered("leg-aqp-01", vocab.SERVICE_TYPE_LEGAL_AID)
    world.apply(offered, feed.accepted(offer), feed.started(offer))
    world.clock.advance(MINUTE_US)
    revocation = subject.revoke(legal[1].consent_id)
    world.clock.advance(1_000_000)
    world.apply(feed.completed(offer))  # completed a second after the revocation, applied before it

    before = len(world.rows())
    assert apply_intake(world.app, world.engine, [revocation]) == 1
    assert [(row.org_id, row.notice_type, row.reference) for row in world.rows()[before:]] == [
        ("leg-aqp-01", REVOKED, offer.handoff_id)]


def test_a_service_completed_before_the_revocation_is_not_told(world):
    subject = SubjectFeed(clock=world.clock)
    legal = subject.consent(org_id="leg-aqp-01")
    apply_intake(world.app, world.engine, [legal])
    feed = world.referral(subject_id=subject.subject_id)
    _, offer = offered = feed.offered("leg-aqp-01", vocab.SERVICE_TYPE_LEGAL_AID)
    world.apply(offered, feed.accepted(offer), feed.completed(offer))
    world.clock.advance(MINUTE_US)
    assert apply_intake(world.app, world.engine, [subject.revoke(legal[1].consent_id)]) == 0


def test_an_event_applied_twice_adds_no_second_delivery(world):
    """The dedupe claim stops a redelivered record; the unique (notice key, channel, endpoint) backs it up."""
    offered = world.referral().offered("alb-cus-01", window_us=HOUR_US)
    assert world.apply(offered) == 2
    assert world.apply(offered) == 0
    escalation = world.referral(region=vocab.REGION_CUSCO).escalated()
    assert world.apply(escalation) == 2
    assert world.apply(escalation) == 0
    assert len(world.rows()) == 4


def test_intake_events_notify_does_not_act_on_are_ignored_and_foreign_ones_are_unprocessable(world):
    subject = SubjectFeed(clock=world.clock)
    assert apply_intake(world.app, world.engine, [subject.submission(), subject.key_released("alb-mdd-01")]) == 0
    erased = intake_events.SubjectErased(subject_id=subject.subject_id, erased_by_org="pol-mdd-01",
                                         erased_at_unix_micros=world.clock())
    assert apply_intake(world.app, world.engine, [(subject.header(erased), erased)]) == 0
    with pytest.raises(UnprocessableEvent) as caught:
        apply_intake(world.app, world.engine, [world.referral().offered("alb-mdd-01")])
    assert caught.value.reason == "unroutable_event"


# -- sending, retrying, escalating --

def test_a_failed_send_is_retried_after_a_full_jitter_backoff_and_every_attempt_is_recorded(world):
    world.transports.answer(webhook_url("alb-mdd-01"), UNAVAILABLE, UNAVAILABLE)
    world.apply(world.referral().offered("alb-mdd-01"))
    start = world.clock.now

    assert len(world.app.dispatch_due().retrying) == 1
    [row] = world.rows()
    assert (row.status, row.attempts, row.next_attempt_at_us) == ("pending", 1, start + SECOND_US)  # 0.5 * 2 s
    assert world.app.dispatch_due().sent == 0  # not due yet
    world.clock.advance(SECOND_US)
    assert len(world.app.dispatch_due().retrying) == 1
    assert world.rows()[0].next_attempt_at_us == start + SECOND_US + 2 * SECOND_US  # 0.5 * 4 s
    world.clock.advance(2 * SECOND_US)
    assert len(world.app.dispatch_due().delivered) == 1

    [delivery] = world.log("alb-mdd-01").deliveries
    assert delivery.status == N.DELIVERY_STATUS_DELIVERED and delivery.next_attempt_at_unix_micros == 0
    assert [(a.attempted_at_unix_micros - start, a.outcome) for a in delivery.attempts] == [
        (0, "http_503"), (SECOND_US, "http_503"), (3 * SECOND_US, "delivered")]
    assert delivery.delivered_at_unix_micros == start + 3 * SECOND_US
    assert len({sent.delivery_id for sent in world.transports.sent}) == 1  # one id on every try


def test_after_the_last_attempt_the_delivery_fails_an_event_is_signed_and_the_coordinators_are_told(world):
    endpoint = webhook_url("alb-mdd-01")
    world.transports.answer(endpoint, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)
    feed = world.referral()
    header, offer = offered = feed.offered("alb-mdd-01")
    world.apply(offered)
    for _ in range(3):
        world.app.dispatch_due()
        world.clock.advance(10 * SECOND_US)

    [failed] = world.log("alb-mdd-01").deliveries
    assert failed.status == N.DELIVERY_STATUS_FAILED and len(failed.attempts) == 3
    assert failed.next_attempt_at_unix_micros == 0
    [event] = notify_events(world.engine, world.network.layout.root, world.directory)
    assert (event.stream_id, event.producer_org) == (f"delivery-{failed.delivery_id}", "svc:notify")
    message = event.message
    assert (message.delivery_id, message.org_id, message.notice_type, message.channel) == (
        failed.delivery_id, "alb-mdd-01", OFFERED, WEBHOOK)
    assert (message.event_id, message.reference, message.attempts, message.last_outcome) == (
        header.event_id, offer.handoff_id, 3, "http_503")

    told = [row for row in world.rows() if row.notice_type == FAILED]
    assert sorted((row.org_id, row.channel) for row in told) == [("coo-cus-01", WEBHOOK), ("coo-cus-01", EMAIL),
                                                                ("coo-lor-01", WEBHOOK)]
    assert {(row.event_id, row.reference, row.referral_id) for row in told} == {
        (event.event_id, offer.handoff_id, feed.referral_id)}
    assert {row.status for row in told} == {"delivered"}  # sent in the same dispatch, right after the failure
    assert parse_webhook_body(world.transports.to(webhook_url("coo-lor-01"))[0].body).language == "en"
    assert len(world.transports.to(endpoint)) == 3  # nothing more to the endpoint that failed


def test_a_permanent_refusal_or_a_missing_secret_fails_at_once(tmp_path, network):
    engine = create_engine(f"sqlite+pysqlite:///{tmp_path / 'notify.db'}")
    migrate(engine)
    world = make_world(engine, *network, secrets={})  # no webhook secret loaded for anyone
    world.transports.answer(email_address("leg-aqp-01"), GONE)
    world.apply(world.referral().offered("alb-mdd-01"), world.referral().offered("leg-aqp-01",
                                                                                  vocab.SERVICE_TYPE_LEGAL_AID))
    report = world.app.dispatch_due(limit=2)  # the two offers (the coordinators' notices come after them)
    assert len(report.failed) == 2
    outcomes = {row.org_id: (row.status, row.attempts, row.last_outcome) for row in world.rows()
                if row.notice_type == OFFERED}
    assert outcomes == {"alb-mdd-01": ("failed", 1, "no_secret"), "leg-aqp-01": ("failed", 1, "http_410")}
    assert world.transports.to(webhook_url("alb-mdd-01")) == []  # never sent unsigned
    assert len(notify_events(engine, world.network.layout.root, world.directory)) == 2
    engine.dispose()


def test_a_delivery_to_a_coordinator_that_fails_is_recorded_but_tells_no_other_coordinator(world):
    world.transports.answer(webhook_url("coo-cus-01"), GONE)
    world.apply(world.referral(region=vocab.REGION_CUSCO).escalated())
    report = world.app.dispatch_due()
    assert len(report.failed) == 1 and len(report.delivered) == 1
    assert [event.message.org_id for event in notify_events(world.engine, world.network.layout.root,
                                                            world.directory)] == ["coo-cus-01"]
    assert [row.notice_type for row in world.rows()] == [ESCALATED, ESCALATED]


def test_two_dispatchers_never_send_one_delivery_and_a_lapsed_lease_passes_to_the_other(world):
    world.apply(world.referral().offered("alb-mdd-01"))
    now = world.clock.now
    lease = lease_micros(settings().send_timeout_seconds)
    with unit_of_work(world.engine) as session:
        [held] = NotifyRepository(session).claim(now, "dispatcher-a", now + lease, 10)
    with unit_of_work(world.engine) as session:
        assert NotifyRepository(session).claim(now, "dispatcher-b", now + lease, 10) == []
    assert world.app.dispatch_due().sent == 0  # a third one finds nothing to take either

    world.clock.advance(lease)  # dispatcher-a died holding it: its lease lapses, the delivery is taken over
    assert len(world.app.dispatch_due().delivered) == 1
    with unit_of_work(world.engine) as session:  # a's late record counts for nothing
        assert not NotifyRepository(session).record(held, "dispatcher-a", at=world.clock.now, outcome="delivered",
                                                    status=DeliveryStatus.DELIVERED, next_attempt_at=0)
    [delivery] = world.log("alb-mdd-01").deliveries
    assert [attempt.outcome for attempt in delivery.attempts] == ["delivered"]


# -- reminders --

def test_a_reminder_goes_out_once_before_the_deadline_of_an_unanswered_offer(world):
    feed = world.referral()
    header, offer = feed.offered("alb-mdd-01", window_us=2 * HOUR_US)
    world.apply((header, offer))
    remind_at = offer.expires_at_unix_micros - 30 * MINUTE_US
    assert world.app.remind_due(remind_at - 1) == 0
    world.clock.now = remind_at
    assert world.app.remind_due(world.clock.now) == 1
    assert world.app.remind_due(world.clock.now + MINUTE_US) == 0
    reminder = world.rows()[-1]
    assert (reminder.notice_type, reminder.notice_key, reminder.event_id) == (
        REMINDER, f"reminder:{offer.handoff_id}", header.event_id)
    assert (reminder.deadline_us, reminder.occurred_at_us) == (offer.expires_at_unix_micros, remind_at)
    world.app.dispatch_due()
    assert "AcceptHandoff" in parse_webhook_body(world.transports.sent[-1].body).text


def test_an_answered_expired_or_withdrawn_offer_is_not_reminded_of(world):
    feed = world.referral()
    offers = [feed.offered("alb-mdd-01")[1] for _ in range(4)]
    world.apply(*((feed.header(offer), offer) for offer in offers))
    world.apply(feed.accepted(offers[0]), feed.declined(offers[1]), feed.expired(offers[2]),
                feed.withdrawn(offers[3], WITHDRAW_REASON_NO_LONGER_NEEDED))
    assert world.app.remind_due(world.clock.now + 3 * HOUR_US) == 0
    assert {row.notice_type for row in world.rows()} == {OFFERED, EXPIRED}


def test_a_short_offer_is_reminded_of_at_half_its_window_and_a_late_timer_sends_none(world):
    assert reminder_time(0, 10 * MINUTE_US, 30 * MINUTE_US) == 5 * MINUTE_US
    assert reminder_time(0, 2 * HOUR_US, 30 * MINUTE_US) == 90 * MINUTE_US
    feed = world.referral()
    _, short = short_offer = feed.offered("alb-mdd-01", window_us=10 * MINUTE_US)
    _, missed = missed_offer = feed.offered("alb-cus-01", window_us=10 * MINUTE_US)
    world.apply(short_offer)
    assert world.app.remind_due(world.clock.now + 5 * MINUTE_US) == 1
    world.apply(missed_offer)
    assert world.app.remind_due(missed.expires_at_unix_micros) == 0  # the deadline passed: HandoffExpired says it
    assert world.app.remind_due(missed.expires_at_unix_micros + HOUR_US) == 0
    assert short.handoff_id != missed.handoff_id


# -- the delivery log --

def test_an_organisation_lists_only_its_own_deliveries_newest_first_a_page_at_a_time(world):
    feed = world.referral(region=vocab.REGION_CUSCO)
    headers = []
    for _ in range(3):
        header, offer = feed.offered("alb-cus-01")
        world.apply((header, offer))
        headers.append(header)
        world.clock.advance(SECOND_US)
    world.apply(feed.offered("alb-mdd-01"))
    world.transports.answer(email_address("alb-cus-01"), UNAVAILABLE)
    world.app.dispatch_due()

    first = world.log("alb-cus-01", page_size=4)
    second = world.log("alb-cus-01", page_size=4, page_token=first.next_page_token)
    assert len(first.deliveries) == 4 and len(second.deliveries) == 2 and second.next_page_token == ""
    listed = [*first.deliveries, *second.deliveries]
    assert [d.created_at_unix_micros for d in listed] == sorted((d.created_at_unix_micros for d in listed),
                                                                reverse=True)
    assert {d.endpoint for d in listed} == {webhook_url("alb-cus-01"), email_address("alb-cus-01")}
    assert len({d.delivery_id for d in listed}) == 6

    pending = world.log("alb-cus-01", statuses=[N.DELIVERY_STATUS_PENDING])
    [retrying] = pending.deliveries
    assert retrying.channel == EMAIL and retrying.next_attempt_at_unix_micros > 0
    assert [a.outcome for a in retrying.attempts] == ["http_503"]
    by_event = world.log("alb-cus-01", event_id=headers[1].event_id).deliveries
    assert {d.event_id for d in by_event} == {headers[1].event_id} and len(by_event) == 2
    assert world.log("fis-lim-01").deliveries == []  # an outsider sees nothing of anyone's
    assert world.log("alb-mdd-01", event_id=headers[0].event_id).deliveries == []


@pytest.mark.parametrize(("request_fields", "field_name"), [
    ({"page_size": 501}, "page_size"), ({"page_size": -1}, "page_size"), ({"statuses": [99]}, "statuses[0]"),
    ({"event_id": "DNI-40000001"}, "event_id"), ({"page_token": "bm90LWEtdG9rZW4="}, "page_token")])
def test_a_malformed_list_request_names_the_field(world, request_fields, field_name):
    with pytest.raises(InvalidArgument) as caught:
        world.log("alb-cus-01", **request_fields)
    assert caught.value.field == field_name
