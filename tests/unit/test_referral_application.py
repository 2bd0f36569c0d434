"""The referral use cases end to end below the gRPC layer: intake's events in, handoffs and referral events out.

What is real: a network made by ``network init`` (keys, signed directory, routing key), a migrated SQLite
database, the event store sealing and signing as ``svc:referral``, the envelopes read back with the
directory's keys. What is replaced: the gRPC edge (callers are built as its interceptor builds them), Kafka
(intake's events are handed to ``apply_intake_event`` in a transaction, as the worker does) and the clock
(injected, so deadlines pass when a test says so).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from services.core.application import (
    ApplicationError,
    ErrorCode,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
)
from services.core.database import create_engine
from services.core.envelope import EventHeader
from services.core.events import UnprocessableEvent
from services.core.eventstore import ConcurrencyError, EventStore, NewEvent, StoredEvent, unit_of_work
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.intake.v1 import events_pb2 as intake_events
from services.core.generated.referralnet.referral.v1 import referral_pb2 as api
from services.core.grpcedge.caller import Caller
from services.core.identity.directory import Directory
from services.core.identity.network import NetworkCreated, init_network
from services.referral.adapters.database import migrate
from services.referral.adapters.tables import handoffs, referral_consents
from services.referral.application.app import ReferralApplication
from services.referral.bootstrap import build_application, referral_event_store
from services.referral.domain.deadlines import OfferDeadlines
from tests.unit.referral_support import (
    HOUR_US,
    Clock,
    ReadEvent,
    SubjectFeed,
    apply_all,
    caller,
    referral_events,
)

H = api
OFFERED, ACCEPTED = H.HANDOFF_STATE_OFFERED, H.HANDOFF_STATE_ACCEPTED
POLICE, COORDINATOR, AUDITOR, PROSECUTOR = "pol-mdd-01", "coo-lim-01", "aud-lim-01", "fis-lim-01"


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> NetworkCreated:
    return init_network(tmp_path_factory.mktemp("referral-app") / "network")


@dataclass
class World:
    """One referral database with the application over it, and what a test needs to drive and inspect it."""

    app: ReferralApplication
    engine: sa.Engine
    network_dir: Path
    directory: Directory
    clock: Clock
    commits: list[int] = field(default_factory=list)

    def caller(self, org_id: str, language: str = "es") -> Caller:
        return caller(self.directory, org_id, language)

    def submit(self, feed: SubjectFeed | None = None, *, consents: bool = True, **submission: Any) -> str:
        """A subject's consents (one per provider role) and its referral, applied as the worker would."""
        feed = feed or SubjectFeed(clock=self.clock)
        recorded = feed.provider_consents() if consents else []
        header, message = feed.submission(consent_ids=[m.consent_id for _, m in recorded], **submission)
        apply_all(self.app, self.engine, [*recorded, (header, message)])
        return message.referral_id

    def inbox(self, org_id: str, *states: int) -> list[api.Handoff]:
        request = api.ListHandoffsRequest(states=[cast("api.HandoffState", state) for state in states], page_size=500)
        return list(self.app.list_handoffs(self.caller(org_id), request).handoffs)

    def offer(self, org_id: str, referral_id: str) -> api.Handoff:
        """The one open offer of ``referral_id`` in ``org_id``'s inbox."""
        [found] = [h for h in self.inbox(org_id, OFFERED) if h.referral_id == referral_id]
        return found

    def status(self, referral_id: str, org_id: str = POLICE) -> api.Referral:
        return self.app.get_referral(self.caller(org_id), api.GetReferralRequest(referral_id=referral_id)).referral

    def events(self, prefix: str = "") -> list[ReadEvent]:
        return referral_events(self.engine, self.network_dir, self.directory, prefix)

    def stream(self, referral_id: str) -> list[str]:
        return [event.event_type for event in self.events(f"referral-{referral_id}")]

    def offered_to(self, referral_id: str) -> list[str]:
        return [event.message.provider_org for event in self.events(f"referral-{referral_id}")
                if event.event_type == "HandoffOffered"]

    def accept(self, org_id: str, referral_id: str) -> api.Handoff:
        handoff = self.offer(org_id, referral_id)
        return self.app.accept_handoff(self.caller(org_id), api.AcceptHandoffRequest(handoff_id=handoff.handoff_id)
                                       ).handoff

    def decline(self, org_id: str, referral_id: str) -> api.Handoff:
        request = api.DeclineHandoffRequest(handoff_id=self.offer(org_id, referral_id).handoff_id,
                                            reason=H.DECLINE_REASON_NO_CAPACITY, note="sin cupos esta semana")
        return self.app.decline_handoff(self.caller(org_id), request).handoff


def make_world(engine: sa.Engine, network: NetworkCreated, deadlines: OfferDeadlines | None = None) -> World:
    clock = Clock()
    commits: list[int] = []
    app = build_application(engine, network.layout.root, directory=network.directory, deadlines=deadlines,
                            clock=clock, after_commit=lambda: commits.append(clock()))
    return World(app, engine, network.layout.root, network.directory, clock, commits)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    url = f"sqlite+pysqlite:///{tmp_path / 'referral.db'}"
    migrate(url)
    made = create_engine(url)
    yield made
    made.dispose()


@pytest.fixture
def world(engine: sa.Engine, network: NetworkCreated) -> World:
    return make_world(engine, network)


# -- submission -> offers --

def test_a_submitted_referral_opens_and_each_need_is_offered_to_its_best_provider(world):
    referral_id = world.submit()
    events = world.events(f"referral-{referral_id}")
    assert [e.event_type for e in events] == ["ReferralOpened", "HandoffOffered", "HandoffOffered", "HandoffOffered"]
    assert [e.sequence for e in events] == [1, 2, 3, 4]
    assert {e.producer_org for e in events} == {"svc:referral"} and {e.routing_key_id for e in events} == {"nrk-1"}
    offers = {e.message.provider_org: e.message for e in events[1:]}
    assert set(offers) == {"alb-mdd-01", "leg-aqp-01", "psi-cus-01"}
    assert offers["alb-mdd-01"].expires_at_unix_micros - offers["alb-mdd-01"].offered_at_unix_micros == 2 * HOUR_US
    assert offers["leg-aqp-01"].expires_at_unix_micros - world.clock() == 24 * HOUR_US
    assert offers["psi-cus-01"].expires_at_unix_micros - world.clock() == 48 * HOUR_US
    assert all(offer.consent_id.startswith("con-") and offer.attempt == 1 for offer in offers.values())
    [inboxed] = world.inbox("alb-mdd-01")
    assert (inboxed.referral_id, inboxed.state, inboxed.region, inboxed.minor) == (
        referral_id, OFFERED, vocab.REGION_MADRE_DE_DIOS, False)
    assert inboxed.exploitation_type == vocab.EXPLOITATION_TYPE_FORCED_LABOUR_MINING
    assert inboxed.offer_expires_at.ToMicroseconds() == world.clock() + 2 * HOUR_US
    assert world.commits == []  # the worker's transaction is the worker's: no after_commit there


def test_a_submission_applied_twice_opens_the_referral_once(world):
    feed = SubjectFeed(clock=world.clock)
    consents = feed.provider_consents()
    submission = feed.submission(consent_ids=[m.consent_id for _, m in consents])
    apply_all(world.app, world.engine, [*consents, submission, submission])
    assert world.stream(submission[1].referral_id).count("ReferralOpened") == 1
    assert len(world.inbox("alb-mdd-01")) == 1


def test_a_referral_without_any_consent_is_escalated_need_by_need(world):
    referral_id = world.submit(consents=False)
    assert world.stream(referral_id) == ["ReferralOpened", "ReferralEscalated", "ReferralEscalated",
                                         "ReferralEscalated"]
    assert [need.state for need in world.status(referral_id).needs] == [H.NEED_STATE_ESCALATED] * 3


def test_a_minor_is_offered_only_to_shelters_serving_minors(world):
    referral_id = world.submit(minor=True, needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE)])
    world.decline("alb-mdd-01", referral_id)
    assert world.offered_to(referral_id) == ["alb-mdd-01", "alb-pun-01"]


def test_key_released_events_change_nothing(world):
    feed = SubjectFeed(clock=world.clock)
    referral_id = world.submit(feed)
    before = world.events()
    apply_all(world.app, world.engine, [feed.key_released("alb-mdd-01")])
    assert len(world.events()) == len(before) and world.offer("alb-mdd-01", referral_id)


@pytest.mark.parametrize("problem", ["producer", "stream", "region", "service_type", "no needs"])
def test_intake_events_that_cannot_be_routed_are_unprocessable(world, problem):
    feed = SubjectFeed(clock=world.clock, producer="pol-mdd-01" if problem == "producer" else "svc:intake")
    broken: dict[str, dict[str, Any]] = {
        "region": {"region": vocab.REGION_UNSPECIFIED},
        "service_type": {"needs": [(vocab.SERVICE_TYPE_UNSPECIFIED, vocab.URGENCY_ROUTINE)]},
        "no needs": {"needs": []},
    }
    kwargs = broken.get(problem, {})
    header, message = feed.submission(**kwargs)
    if problem == "stream":
        header = feed.header(message, stream_id="subject-sub-" + "f" * 32)
    with pytest.raises(UnprocessableEvent) as caught, unit_of_work(world.engine) as session:
        world.app.apply_intake_event(session, header, message)
    assert caught.value.reason == {"producer": "unexpected_producer", "stream": "stream_mismatch"}.get(
        problem, "unroutable_event")
    assert world.events() == []


# -- decline, expiry, escalation, capacity --

def test_a_decline_offers_the_need_to_the_next_provider_in_the_same_transaction(world):
    referral_id = world.submit()
    declined = world.decline("alb-mdd-01", referral_id)
    assert declined.state == H.HANDOFF_STATE_DECLINED and declined.decline_reason == H.DECLINE_REASON_NO_CAPACITY
    assert declined.note == "sin cupos esta semana"
    events = world.events(f"referral-{referral_id}")
    assert [e.event_type for e in events[-2:]] == ["HandoffDeclined", "HandoffOffered"]
    assert events[-1].message.provider_org == "alb-cus-01" and events[-1].message.attempt == 2
    assert world.offer("alb-cus-01", referral_id).state == OFFERED
    assert [h.state for h in world.inbox("alb-mdd-01")] == [H.HANDOFF_STATE_DECLINED]
    assert len(world.commits) == 1  # one commit, one wake-up of the relay


def test_an_unanswered_offer_expires_at_its_deadline_and_the_next_provider_is_offered(world):
    referral_id = world.submit()
    deadline = {org: world.offer(org, referral_id).offer_expires_at.ToMicroseconds()
                for org in ("alb-mdd-01", "leg-aqp-01", "psi-cus-01")}
    assert world.app.expire_due_offers(deadline["alb-mdd-01"] - 1) == 0
    world.clock.now = deadline["alb-mdd-01"]
    assert world.app.expire_due_offers(world.clock()) == 1
    assert world.app.expire_due_offers(world.clock()) == 0  # idempotent
    assert world.stream(referral_id)[-2:] == ["HandoffExpired", "HandoffOffered"]
    assert world.offer("alb-cus-01", referral_id).offered_at.ToMicroseconds() == world.clock()
    assert [h.state for h in world.inbox("alb-mdd-01")] == [H.HANDOFF_STATE_EXPIRED]

    world.clock.now = deadline["psi-cus-01"]  # past the new shelter offer's 2 h and legal's 24 h too
    assert world.app.expire_due_offers(world.clock()) == 3
    assert world.offered_to(referral_id)[4:] == ["alb-lim-01", "leg-lim-01", "psi-lim-01"]
    expired = [e.message.provider_org for e in world.events(f"referral-{referral_id}")
               if e.event_type == "HandoffExpired"]
    assert expired == ["alb-mdd-01", "leg-aqp-01", "psi-cus-01", "alb-cus-01"]  # oldest offer first
    assert len(world.commits) == 2  # one commit per referral that changed


def test_expiry_in_the_workers_session_commits_with_it(world):
    referral_id = world.submit(needs=[(vocab.SERVICE_TYPE_PSYCHOSOCIAL, vocab.URGENCY_ROUTINE)])
    world.clock.advance(48 * HOUR_US)
    with unit_of_work(world.engine) as session:
        assert world.app.expire_due_offers(world.clock(), 10, session=session) == 1
    assert world.offered_to(referral_id) == ["psi-cus-01", "psi-lim-01"]
    assert world.stream(referral_id)[-2:] == ["HandoffExpired", "HandoffOffered"]


def test_accepting_an_offer_past_its_deadline_is_a_failed_precondition_before_and_after_the_timer(world):
    referral_id = world.submit()
    shelter = world.offer("alb-mdd-01", referral_id)
    world.clock.advance(2 * HOUR_US)
    request = api.AcceptHandoffRequest(handoff_id=shelter.handoff_id)
    with pytest.raises(FailedPrecondition, match="expired"):
        world.app.accept_handoff(world.caller("alb-mdd-01", "en"), request)
    world.app.expire_due_offers(world.clock())
    with pytest.raises(FailedPrecondition) as caught:
        world.app.accept_handoff(world.caller("alb-mdd-01"), request)
    assert "vencida" in caught.value.message("es")


def test_with_no_provider_left_the_need_is_escalated_and_a_capacity_update_routes_it_again(world):
    capacity = api.UpdateCapacityRequest(service_type=vocab.SERVICE_TYPE_PSYCHOSOCIAL, available_places=0)
    world.app.update_capacity(world.caller("psi-lim-01"), capacity)
    referral_id = world.submit()
    world.decline("psi-cus-01", referral_id)
    assert world.stream(referral_id)[-2:] == ["HandoffDeclined", "ReferralEscalated"]
    assert world.status(referral_id, COORDINATOR).needs[2].state == H.NEED_STATE_ESCALATED

    world.clock.advance(60_000_000)
    capacity.available_places = 2
    updated = world.app.update_capacity(world.caller("psi-lim-01"), capacity)
    assert (updated.available_places, updated.updated_at.ToMicroseconds()) == (2, world.clock())
    assert [(e.event_type, e.message.available_places) for e in world.events("capacity-psi-lim-01")] == [
        ("CapacityUpdated", 0), ("CapacityUpdated", 2)]
    assert world.stream(referral_id)[-1] == "HandoffOffered"
    assert world.offer("psi-lim-01", referral_id).offered_at.ToMicroseconds() == world.clock()
    assert world.status(referral_id).needs[2].state == H.NEED_STATE_OFFERED


def test_a_capacity_update_does_not_offer_an_escalated_need_to_a_provider_that_declined_it(world):
    referral_id = world.submit(needs=[(vocab.SERVICE_TYPE_PSYCHOSOCIAL, vocab.URGENCY_ROUTINE)])
    world.decline("psi-cus-01", referral_id)
    world.decline("psi-lim-01", referral_id)
    assert world.stream(referral_id)[-1] == "ReferralEscalated"
    world.app.update_capacity(world.caller("psi-cus-01"), api.UpdateCapacityRequest(
        service_type=vocab.SERVICE_TYPE_PSYCHOSOCIAL, available_places=5))
    assert world.stream(referral_id)[-1] == "ReferralEscalated"


def test_a_capacity_update_routes_at_most_as_many_escalated_needs_as_places(world):
    world.app.update_capacity(world.caller("leg-lim-01"), api.UpdateCapacityRequest(
        service_type=vocab.SERVICE_TYPE_LEGAL_AID, available_places=0))
    legal = [(vocab.SERVICE_TYPE_LEGAL_AID, vocab.URGENCY_ROUTINE)]
    referrals = [world.submit(needs=legal) for _ in range(3)]
    for referral_id in referrals:
        world.decline("leg-aqp-01", referral_id)
    world.app.update_capacity(world.caller("leg-lim-01"), api.UpdateCapacityRequest(
        service_type=vocab.SERVICE_TYPE_LEGAL_AID, available_places=2))
    assert {h.referral_id for h in world.inbox("leg-lim-01", OFFERED)} == set(referrals[:2])  # oldest first


# -- the whole loop, and what the referrer sees --

def test_accept_start_and_complete_every_need_closes_the_referral_and_the_referrer_sees_the_loop(world):
    referral_id = world.submit()
    world.decline("alb-mdd-01", referral_id)
    for org_id in ("alb-cus-01", "leg-aqp-01", "psi-cus-01"):
        accepted = world.accept(org_id, referral_id)
        assert accepted.state == ACCEPTED
        caller_ = world.caller(org_id)
        started = world.app.start_service(caller_, api.StartServiceRequest(handoff_id=accepted.handoff_id)).handoff
        assert started.state == H.HANDOFF_STATE_IN_SERVICE
        assert world.status(referral_id).state == H.REFERRAL_STATE_OPEN
        world.clock.advance(HOUR_US)
        done = world.app.complete_service(caller_, api.CompleteServiceRequest(
            handoff_id=accepted.handoff_id, outcome=H.SERVICE_OUTCOME_COMPLETED_AS_PLANNED, note="plan cumplido"))
        assert done.handoff.state == H.HANDOFF_STATE_COMPLETED
    assert world.stream(referral_id)[-2:] == ["ServiceCompleted", "ReferralClosed"]
    for viewer in (POLICE, COORDINATOR):
        status = world.status(referral_id, viewer)
        assert status.state == H.REFERRAL_STATE_CLOSED and status.closed_at.ToMicroseconds() == world.clock()
        assert [need.state for need in status.needs] == [H.NEED_STATE_COMPLETED] * 3
        shelter = status.needs[0]
        assert [(h.provider_org, h.state) for h in shelter.handoffs] == [
            ("alb-mdd-01", H.HANDOFF_STATE_DECLINED), ("alb-cus-01", H.HANDOFF_STATE_COMPLETED)]
        assert shelter.handoffs[1].outcome == H.SERVICE_OUTCOME_COMPLETED_AS_PLANNED
        assert shelter.handoffs[0].decline_reason == H.DECLINE_REASON_NO_CAPACITY
    with pytest.raises(PermissionDenied):
        world.status(referral_id, "alb-cus-01")  # a provider of the referral does not see the whole loop


def test_the_referrer_withdraws_a_need_and_the_referral_closes_when_the_rest_is_done(world):
    referral_id = world.submit(needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE),
                                      (vocab.SERVICE_TYPE_LEGAL_AID, vocab.URGENCY_ROUTINE)])
    accepted = world.accept("alb-mdd-01", referral_id)
    legal = world.offer("leg-aqp-01", referral_id)
    withdrawn = world.app.withdraw_handoff(world.caller(POLICE), api.WithdrawHandoffRequest(
        handoff_id=legal.handoff_id, reason=H.WITHDRAW_REASON_NO_LONGER_NEEDED)).handoff
    assert withdrawn.state == H.HANDOFF_STATE_WITHDRAWN
    assert withdrawn.withdraw_reason == H.WITHDRAW_REASON_NO_LONGER_NEEDED
    assert world.status(referral_id).needs[1].state == H.NEED_STATE_WITHDRAWN
    world.app.withdraw_handoff(world.caller(COORDINATOR), api.WithdrawHandoffRequest(
        handoff_id=accepted.handoff_id, reason=H.WITHDRAW_REASON_SAFETY_CONCERN))
    assert world.stream(referral_id)[-2:] == ["HandoffWithdrawn", "ReferralClosed"]
    with pytest.raises(FailedPrecondition, match="withdrawn"):
        world.app.start_service(world.caller("alb-mdd-01"), api.StartServiceRequest(handoff_id=accepted.handoff_id))


# -- consent --

def test_revoking_the_consent_behind_an_offer_withdraws_it_and_routes_the_need_under_the_remaining_consent(world):
    feed = SubjectFeed(clock=world.clock)
    by_role = feed.consent(role=vocab.ORG_ROLE_SHELTER)
    for_cusco = feed.consent(org_id="alb-cus-01")
    legal = feed.consent(role=vocab.ORG_ROLE_LEGAL)
    submission = feed.submission(needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE),
                                        (vocab.SERVICE_TYPE_LEGAL_AID, vocab.URGENCY_ROUTINE)])
    apply_all(world.app, world.engine, [by_role, for_cusco, legal, submission])
    referral_id = submission[1].referral_id
    shelter_offer = world.offer("alb-mdd-01", referral_id)
    world.clock.advance(60_000_000)
    apply_all(world.app, world.engine, [feed.revoke(by_role[1].consent_id)])

    events = world.events(f"referral-{referral_id}")
    assert [e.event_type for e in events[-2:]] == ["HandoffWithdrawn", "HandoffOffered"]
    withdrawn, offered = events[-2].message, events[-1].message
    assert (withdrawn.handoff_id, withdrawn.reason) == (shelter_offer.handoff_id, H.WITHDRAW_REASON_CONSENT_REVOKED)
    assert (offered.provider_org, offered.consent_id) == ("alb-cus-01", for_cusco[1].consent_id)
    assert world.offer("leg-aqp-01", referral_id)  # another consent's offer is untouched
    assert world.status(referral_id).needs[0].state == H.NEED_STATE_OFFERED


def test_revoking_a_consent_keeps_offers_another_consent_still_covers_and_accepted_handoffs(world):
    feed = SubjectFeed(clock=world.clock)
    by_role = feed.consent(role=vocab.ORG_ROLE_SHELTER, expires_at=world.clock() + 2 * 365 * 24 * HOUR_US)
    also = feed.consent(role=vocab.ORG_ROLE_SHELTER)
    legal = feed.consent(role=vocab.ORG_ROLE_LEGAL)
    submission = feed.submission(needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE),
                                        (vocab.SERVICE_TYPE_LEGAL_AID, vocab.URGENCY_ROUTINE)])
    apply_all(world.app, world.engine, [by_role, also, legal, submission])
    referral_id = submission[1].referral_id
    world.accept("leg-aqp-01", referral_id)
    before = world.stream(referral_id)
    apply_all(world.app, world.engine, [feed.revoke(by_role[1].consent_id), feed.revoke(legal[1].consent_id),
                                        feed.revoke(legal[1].consent_id)])
    assert world.stream(referral_id) == before
    assert world.offer("alb-mdd-01", referral_id).state == OFFERED


def test_with_no_consent_left_for_any_provider_the_revoked_offer_is_escalated(world):
    feed = SubjectFeed(clock=world.clock)
    only = feed.consent(role=vocab.ORG_ROLE_SHELTER)
    submission = feed.submission(needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE)])
    apply_all(world.app, world.engine, [only, submission, feed.revoke(only[1].consent_id)])
    assert world.stream(submission[1].referral_id) == [
        "ReferralOpened", "HandoffOffered", "HandoffWithdrawn", "ReferralEscalated"]


# -- erasure --

def erased(feed: SubjectFeed, by: str = POLICE) -> tuple[EventHeader, intake_events.SubjectErased]:
    message = intake_events.SubjectErased(subject_id=feed.subject_id, erased_by_org=by,
                                          erased_at_unix_micros=feed.clock())
    return feed.header(message), message


def test_erasing_a_subject_withdraws_its_active_handoffs_keeps_completed_ones_and_closes_the_referral(world):
    feed = SubjectFeed(clock=world.clock)
    referral_id = world.submit(feed)  # shelter, legal aid, psychosocial
    psychosocial = world.accept("psi-cus-01", referral_id)
    psychosocial_caller = world.caller("psi-cus-01")
    world.app.start_service(psychosocial_caller, api.StartServiceRequest(handoff_id=psychosocial.handoff_id))
    world.app.complete_service(psychosocial_caller, api.CompleteServiceRequest(
        handoff_id=psychosocial.handoff_id, outcome=H.SERVICE_OUTCOME_COMPLETED_AS_PLANNED))
    shelter = world.accept("alb-mdd-01", referral_id)
    legal = world.offer("leg-aqp-01", referral_id)
    world.clock.advance(HOUR_US)

    apply_all(world.app, world.engine, [erased(feed)])

    events = world.events(f"referral-{referral_id}")
    assert [e.event_type for e in events[-3:]] == ["HandoffWithdrawn", "HandoffWithdrawn", "ReferralClosed"]
    assert {(e.message.handoff_id, e.message.reason, e.message.withdrawn_by_org) for e in events[-3:-1]} == {
        (shelter.handoff_id, H.WITHDRAW_REASON_SUBJECT_ERASED, POLICE),
        (legal.handoff_id, H.WITHDRAW_REASON_SUBJECT_ERASED, POLICE)}
    status = world.status(referral_id)
    assert [need.state for need in status.needs] == [H.NEED_STATE_WITHDRAWN, H.NEED_STATE_WITHDRAWN,
                                                     H.NEED_STATE_COMPLETED]
    assert status.state == H.REFERRAL_STATE_CLOSED
    before = world.events()
    apply_all(world.app, world.engine, [erased(feed, by=COORDINATOR)])  # a second erasure changes nothing
    assert len(world.events()) == len(before)


def test_an_erased_subjects_escalated_need_is_never_offered_again(world):
    feed = SubjectFeed(clock=world.clock)
    only = feed.consent(role=vocab.ORG_ROLE_LEGAL)
    submission = feed.submission(needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE),
                                        (vocab.SERVICE_TYPE_LEGAL_AID, vocab.URGENCY_ROUTINE)],
                                 consent_ids=[only[1].consent_id])
    apply_all(world.app, world.engine, [only, submission])
    referral_id = submission[1].referral_id
    assert world.stream(referral_id) == ["ReferralOpened", "ReferralEscalated", "HandoffOffered"]

    erasure = erased(feed)
    apply_all(world.app, world.engine, [erasure])

    assert world.stream(referral_id)[-1] == "HandoffWithdrawn"
    assert world.status(referral_id).state == H.REFERRAL_STATE_OPEN  # the escalated need stays as it is
    assert world.inbox("leg-aqp-01", OFFERED) == []
    with Session(world.engine) as session:  # no consent covers anything any more: routing offers nothing again
        rows = session.execute(sa.select(referral_consents.c.revoked_at_us).where(
            referral_consents.c.subject_id == feed.subject_id)).scalars().all()
    assert rows == [erasure[1].erased_at_unix_micros]


def test_a_person_may_not_give_subject_erased_as_a_withdrawal_reason(world):
    referral_id = world.submit()
    with pytest.raises(InvalidArgument):
        world.app.withdraw_handoff(world.caller(POLICE), api.WithdrawHandoffRequest(
            handoff_id=world.offer("alb-mdd-01", referral_id).handoff_id, reason=H.WITHDRAW_REASON_SUBJECT_ERASED))


# -- who may do what --

def every_rpc(world: World, handoff_id: str, referral_id: str) -> dict[str, Callable[[Caller], object]]:
    app = world.app
    return {
        "ListHandoffs": lambda c: app.list_handoffs(c, api.ListHandoffsRequest()),
        "AcceptHandoff": lambda c: app.accept_handoff(c, api.AcceptHandoffRequest(handoff_id=handoff_id)),
        "DeclineHandoff": lambda c: app.decline_handoff(c, api.DeclineHandoffRequest(
            handoff_id=handoff_id, reason=H.DECLINE_REASON_OTHER)),
        "StartService": lambda c: app.start_service(c, api.StartServiceRequest(handoff_id=handoff_id)),
        "CompleteService": lambda c: app.complete_service(c, api.CompleteServiceRequest(
            handoff_id=handoff_id, outcome=H.SERVICE_OUTCOME_OTHER)),
        "WithdrawHandoff": lambda c: app.withdraw_handoff(c, api.WithdrawHandoffRequest(
            handoff_id=handoff_id, reason=H.WITHDRAW_REASON_OTHER)),
        "GetReferral": lambda c: app.get_referral(c, api.GetReferralRequest(referral_id=referral_id)),
        "UpdateCapacity": lambda c: app.update_capacity(c, api.UpdateCapacityRequest(
            service_type=vocab.SERVICE_TYPE_SHELTER, available_places=3)),
    }


@pytest.mark.parametrize("org_id", [PROSECUTOR, AUDITOR, "pol-cus-01"])
def test_an_uninvolved_organisation_is_denied_every_rpc(world, org_id):
    referral_id = world.submit()
    handoff_id = world.offer("alb-mdd-01", referral_id).handoff_id
    before = world.events()
    for name, call in every_rpc(world, handoff_id, referral_id).items():
        with pytest.raises(PermissionDenied) as caught:
            call(world.caller(org_id))
        assert caught.value.code is ErrorCode.PERMISSION_DENIED, name
    assert world.events() == before


def test_another_provider_is_denied_a_handoff_exactly_as_for_an_id_that_does_not_exist(world):
    referral_id = world.submit()
    handoff_id = world.offer("alb-mdd-01", referral_id).handoff_id
    other = world.caller("alb-lim-01", "en")
    accept = world.app.accept_handoff
    with pytest.raises(PermissionDenied) as theirs:
        accept(other, api.AcceptHandoffRequest(handoff_id=handoff_id))
    with pytest.raises(PermissionDenied) as missing:
        accept(other, api.AcceptHandoffRequest(handoff_id="hof-" + "0" * 32))
    assert theirs.value.messages == missing.value.messages
    with pytest.raises(PermissionDenied):
        world.app.update_capacity(other, api.UpdateCapacityRequest(service_type=vocab.SERVICE_TYPE_LEGAL_AID,
                                                                   available_places=1))
    assert world.inbox("alb-lim-01") == []  # a provider only ever lists its own handoffs


def test_get_referral_is_for_the_referrer_and_coordinators_only(world):
    referral_id = world.submit()
    assert world.status(referral_id, POLICE).referrer_org == POLICE
    assert len(world.status(referral_id, COORDINATOR).needs) == 3
    for org_id in ("alb-mdd-01", "pol-cus-01", AUDITOR):
        with pytest.raises(PermissionDenied):
            world.status(referral_id, org_id)
    with pytest.raises(PermissionDenied):
        world.status("ref-" + "0" * 32, COORDINATOR)


# -- requests people can act on --

@pytest.mark.parametrize(("call", "field"), [
    (lambda app, c: app.accept_handoff(c, api.AcceptHandoffRequest()), "handoff_id"),
    (lambda app, c: app.accept_handoff(c, api.AcceptHandoffRequest(handoff_id="DNI-0001")), "handoff_id"),
    (lambda app, c: app.decline_handoff(c, api.DeclineHandoffRequest(handoff_id="hof-" + "1" * 32)), "reason"),
    (lambda app, c: app.decline_handoff(c, api.DeclineHandoffRequest(
        handoff_id="hof-" + "1" * 32, reason=H.DECLINE_REASON_OTHER, note="x" * 501)), "note"),
    (lambda app, c: app.decline_handoff(c, api.DeclineHandoffRequest(
        handoff_id="hof-" + "1" * 32, reason=H.DECLINE_REASON_OTHER, note="sin\x00cupo")), "note"),
    (lambda app, c: app.complete_service(c, api.CompleteServiceRequest(handoff_id="hof-" + "1" * 32)), "outcome"),
    (lambda app, c: app.withdraw_handoff(c, api.WithdrawHandoffRequest(
        handoff_id="hof-" + "1" * 32, reason=H.WITHDRAW_REASON_CONSENT_REVOKED)), "reason"),
    (lambda app, c: app.get_referral(c, api.GetReferralRequest(referral_id="ref-../../x")), "referral_id"),
    (lambda app, c: app.list_handoffs(c, api.ListHandoffsRequest(page_size=501)), "page_size"),
    (lambda app, c: app.list_handoffs(c, api.ListHandoffsRequest(page_token="bm90IGEgdG9rZW4=")), "page_token"),
    (lambda app, c: app.list_handoffs(c, api.ListHandoffsRequest(states=[H.HANDOFF_STATE_UNSPECIFIED])),
     "states[0]"),
    (lambda app, c: app.update_capacity(c, api.UpdateCapacityRequest(service_type=vocab.SERVICE_TYPE_UNSPECIFIED)),
     "service_type"),
    (lambda app, c: app.update_capacity(c, api.UpdateCapacityRequest(
        service_type=vocab.SERVICE_TYPE_SHELTER, available_places=10_001)), "available_places"),
])
def test_malformed_requests_are_invalid_arguments_naming_the_field(world, call, field):
    with pytest.raises(InvalidArgument) as caught:
        call(world.app, world.caller("alb-mdd-01"))
    assert caught.value.field == field
    assert caught.value.message("es") != caught.value.message("en")


def test_the_inbox_pages_newest_first_with_an_opaque_token_and_filters_by_state(world):
    legal = [(vocab.SERVICE_TYPE_LEGAL_AID, vocab.URGENCY_ROUTINE)]
    referrals = []
    for _ in range(5):
        referrals.append(world.submit(needs=legal))
        world.clock.advance(1_000_000)
    world.accept("leg-aqp-01", referrals[0])
    leg = world.caller("leg-aqp-01")
    seen, token, pages = [], "", 0
    while True:
        page = world.app.list_handoffs(leg, api.ListHandoffsRequest(page_size=2, page_token=token))
        seen += [h.referral_id for h in page.handoffs]
        pages, token = pages + 1, page.next_page_token
        if not token:
            break
    assert pages == 3 and seen == referrals[::-1]
    offered = world.app.list_handoffs(leg, api.ListHandoffsRequest(states=[OFFERED])).handoffs
    assert [h.referral_id for h in offered] == referrals[:0:-1]
    both = world.app.list_handoffs(leg, api.ListHandoffsRequest(states=[OFFERED, ACCEPTED], page_size=4))
    assert len(both.handoffs) == 4 and both.next_page_token


# -- racing writers --

class RacingStore(EventStore):
    """The referral event store, letting someone else write first just before this process's first append."""

    def __init__(self, inner: EventStore, before_first_append: Callable[[], object]) -> None:
        self.__dict__.update(inner.__dict__)
        self._before: Callable[[], object] | None = before_first_append

    def append(self, session: Session, stream_id: str, expected_version: int,
               new_events: Sequence[NewEvent]) -> list[StoredEvent]:
        before, self._before = self._before, None
        if before is not None:
            thread = threading.Thread(target=before)  # its own connection, like another process
            thread.start()
            thread.join(timeout=30)
        return super().append(session, stream_id, expected_version, new_events)


def racing_app(world: World, rival: Callable[[], object]) -> ReferralApplication:
    store = RacingStore(referral_event_store(world.network_dir, world.directory), rival)
    return ReferralApplication(world.engine, store, world.app._keys, world.directory, clock=world.clock)


def test_two_processes_expiring_the_same_offer_expire_it_once(world):
    referral_id = world.submit(needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE)])
    now = world.clock.advance(2 * HOUR_US)
    rival_expired: list[int] = []
    slow = racing_app(world, lambda: rival_expired.append(world.app.expire_due_offers(now)))
    assert slow.expire_due_offers(now) == 0  # lost the race: the referral is the rival's
    assert rival_expired == [1]
    assert world.stream(referral_id) == ["ReferralOpened", "HandoffOffered", "HandoffExpired", "HandoffOffered"]


def test_a_race_lost_in_the_workers_session_raises_for_the_worker_to_roll_back(world):
    world.submit(needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE)])
    now = world.clock.advance(2 * HOUR_US)
    slow = racing_app(world, lambda: world.app.expire_due_offers(now))
    with pytest.raises(ConcurrencyError), unit_of_work(world.engine) as session:
        slow.expire_due_offers(now, session=session)
    with Session(world.engine) as session:
        states = sorted(session.execute(sa.select(handoffs.c.provider_org, handoffs.c.state)).all())
    assert states == [("alb-cus-01", "offered"), ("alb-mdd-01", "expired")]


def test_a_command_that_loses_a_race_is_retried_with_fresh_state(world):
    referral_id = world.submit()
    legal = world.offer("leg-aqp-01", referral_id)
    rival = lambda: world.decline("alb-mdd-01", referral_id)  # noqa: E731 -- a change to the same referral
    slow = racing_app(world, rival)
    accepted = slow.accept_handoff(world.caller("leg-aqp-01"), api.AcceptHandoffRequest(handoff_id=legal.handoff_id))
    assert accepted.handoff.state == ACCEPTED
    assert world.stream(referral_id)[-3:] == ["HandoffDeclined", "HandoffOffered", "HandoffAccepted"]


# -- fuzzed requests ------------------------------------------------------------------------------------------------

ENUM_NUMBERS = st.integers(min_value=-3, max_value=12)  # proto3 enums are open: unknown numbers arrive too
FUZZ_TEXT = st.text(max_size=80)


def fuzzed_call(draw: st.DrawFn, app: ReferralApplication, known: list[str]) -> Callable[[Caller], object]:
    handoff_id = draw(st.one_of(FUZZ_TEXT, st.sampled_from(known), st.from_regex(r"hof-[0-9a-f]{32}", fullmatch=True)))
    note = draw(st.one_of(st.text(max_size=520), st.just("")))
    number = draw(ENUM_NUMBERS)
    calls: list[Callable[[Caller], object]] = [
        lambda c: app.list_handoffs(c, api.ListHandoffsRequest(
            states=draw(st.lists(ENUM_NUMBERS, max_size=3)), page_size=draw(st.integers(-5, 600)),  # type: ignore[arg-type]
            page_token=draw(st.one_of(FUZZ_TEXT, st.just(""))))),
        lambda c: app.accept_handoff(c, api.AcceptHandoffRequest(handoff_id=handoff_id)),
        lambda c: app.decline_handoff(c, api.DeclineHandoffRequest(
            handoff_id=handoff_id, reason=number, note=note)),  # type: ignore[arg-type]
        lambda c: app.start_service(c, api.StartServiceRequest(handoff_id=handoff_id)),
        lambda c: app.complete_service(c, api.CompleteServiceRequest(
            handoff_id=handoff_id, outcome=number, note=note)),  # type: ignore[arg-type]
        lambda c: app.withdraw_handoff(c, api.WithdrawHandoffRequest(
            handoff_id=handoff_id, reason=number, note=note)),  # type: ignore[arg-type]
        lambda c: app.get_referral(c, api.GetReferralRequest(referral_id=draw(FUZZ_TEXT))),
        lambda c: app.update_capacity(c, api.UpdateCapacityRequest(
            service_type=number, available_places=draw(st.integers(-2**31, 2**31 - 1)))),  # type: ignore[arg-type]
    ]
    return draw(st.sampled_from(calls))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_requests_get_an_answer_or_an_error_people_can_act_on(world, data):
    if not world.inbox("alb-mdd-01"):
        world.submit()
    known = [h.handoff_id for org in ("alb-mdd-01", "leg-aqp-01", "psi-cus-01") for h in world.inbox(org)]
    org_id = data.draw(st.sampled_from([org.org_id for org in world.directory.organisations]))
    call = data.draw(st.composite(lambda draw: fuzzed_call(draw, world.app, known))())
    try:
        call(world.caller(org_id, data.draw(st.sampled_from(["es", "en"]))))
    except ApplicationError as error:
        assert error.message("es") and error.message("en")
