"""The referral use cases on PostgreSQL, and writers racing on one referral there.

What is real: PostgreSQL (a schema of its own per test), the migrations, a ``network init`` network, the event
store and envelopes, threads writing at the same moment. What is replaced: the gRPC edge and Kafka, as in
tests/unit/test_referral_application.py, whose World drives the application here too; the clock is injected.
On PostgreSQL a racing INSERT waits for the other transaction and then hits the unique (stream, sequence)
index, unlike SQLite where writers take turns: these tests prove the use cases lose nothing either way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.core.eventstore import EventStore, NewEvent, StoredEvent
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.referral.v1 import referral_pb2 as api
from services.core.identity.network import NetworkCreated, init_network
from services.referral.adapters.database import migrate
from services.referral.adapters.tables import handoffs
from services.referral.application.app import ReferralApplication
from services.referral.bootstrap import referral_event_store
from tests.integration.database_backends import fresh_engine
from tests.unit.referral_support import HOUR_US, SubjectFeed, apply_all
from tests.unit.test_referral_application import COORDINATOR, POLICE, World, make_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> NetworkCreated:
    return init_network(tmp_path_factory.mktemp("referral-pg") / "network")


@pytest.fixture
def world(request: pytest.FixtureRequest, network: NetworkCreated) -> Iterator[World]:
    with fresh_engine(request, "postgresql") as engine:
        migrate(engine)
        yield make_world(engine, network)


class BarrierStore(EventStore):
    """The referral store; each thread's first append waits until every racer has reached its own."""

    def __init__(self, inner: EventStore, barrier: threading.Barrier) -> None:
        self.__dict__.update(inner.__dict__)
        self._barrier = barrier
        self._waited: set[int] = set()

    def append(self, session: Session, stream_id: str, expected_version: int,
               new_events: Sequence[NewEvent]) -> list[StoredEvent]:
        if threading.get_ident() not in self._waited:
            self._waited.add(threading.get_ident())
            self._barrier.wait(timeout=30)
        return super().append(session, stream_id, expected_version, new_events)


def racing(world: World, barrier: threading.Barrier) -> ReferralApplication:
    store = BarrierStore(referral_event_store(world.network_dir, world.directory), barrier)
    return ReferralApplication(world.engine, store, world.app._keys, world.directory, clock=world.clock)


def run_together(*calls: Callable[[], object]) -> list[object]:
    results: list[object] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            results[index] = calls[index]()
        except Exception as error:  # the test inspects it
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,), daemon=True) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_the_whole_loop_on_postgresql(world):
    world.app.update_capacity(world.caller("psi-lim-01"), api.UpdateCapacityRequest(
        service_type=vocab.SERVICE_TYPE_PSYCHOSOCIAL, available_places=0))
    feed = SubjectFeed(clock=world.clock)
    by_role = feed.consent(role=vocab.ORG_ROLE_SHELTER)
    others = feed.provider_consents([vocab.ORG_ROLE_LEGAL, vocab.ORG_ROLE_PSYCHOSOCIAL])
    named = [feed.consent(org_id="alb-cus-01"), feed.consent(org_id="alb-lim-01")]
    submission = feed.submission()
    apply_all(world.app, world.engine, [by_role, *others, *named, submission])
    referral_id = submission[1].referral_id

    apply_all(world.app, world.engine, [feed.revoke(by_role[1].consent_id)])  # alb-mdd-01's offer -> alb-cus-01
    world.decline("psi-cus-01", referral_id)  # psi-lim-01 has no places: escalated
    world.clock.advance(24 * HOUR_US)
    assert world.app.expire_due_offers(world.clock()) == 2  # alb-cus-01 (2 h) and leg-aqp-01 (24 h)
    world.app.update_capacity(world.caller("psi-lim-01"), api.UpdateCapacityRequest(
        service_type=vocab.SERVICE_TYPE_PSYCHOSOCIAL, available_places=1))
    for org_id in ("alb-lim-01", "leg-lim-01", "psi-lim-01"):
        handoff = world.accept(org_id, referral_id)
        caller = world.caller(org_id)
        world.app.start_service(caller, api.StartServiceRequest(handoff_id=handoff.handoff_id))
        world.app.complete_service(caller, api.CompleteServiceRequest(
            handoff_id=handoff.handoff_id, outcome=api.SERVICE_OUTCOME_COMPLETED_AS_PLANNED))
    status = world.status(referral_id, COORDINATOR)
    assert status.state == api.REFERRAL_STATE_CLOSED
    assert [[h.provider_org for h in need.handoffs] for need in status.needs] == [
        ["alb-mdd-01", "alb-cus-01", "alb-lim-01"], ["leg-aqp-01", "leg-lim-01"], ["psi-cus-01", "psi-lim-01"]]
    assert world.stream(referral_id)[-1] == "ReferralClosed"
    assert world.status(referral_id, POLICE).closed_at.ToMicroseconds() == world.clock()


def test_two_processes_expiring_the_same_offers_at_the_same_moment_expire_each_once(world):
    referral_ids = [world.submit(needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE)]) for _ in range(3)]
    now = world.clock.advance(2 * HOUR_US)
    barrier = threading.Barrier(2)
    first, second = racing(world, barrier), racing(world, barrier)
    results = run_together(lambda: first.expire_due_offers(now), lambda: second.expire_due_offers(now))
    assert all(isinstance(result, int) for result in results), results
    assert sum(results) == 3  # type: ignore[arg-type]
    for referral_id in referral_ids:
        assert world.stream(referral_id) == ["ReferralOpened", "HandoffOffered", "HandoffExpired", "HandoffOffered"]
    with Session(world.engine) as session:
        states = session.execute(sa.select(handoffs.c.state, sa.func.count()).group_by(handoffs.c.state)).all()
    assert dict(states) == {"expired": 3, "offered": 3}


def test_two_providers_answering_the_same_referral_at_once_both_succeed(world):
    referral_id = world.submit()
    shelter, legal = world.offer("alb-mdd-01", referral_id), world.offer("leg-aqp-01", referral_id)
    app = racing(world, threading.Barrier(2))
    results = run_together(
        lambda: app.decline_handoff(world.caller("alb-mdd-01"), api.DeclineHandoffRequest(
            handoff_id=shelter.handoff_id, reason=api.DECLINE_REASON_NO_CAPACITY)),
        lambda: app.accept_handoff(world.caller("leg-aqp-01"), api.AcceptHandoffRequest(handoff_id=legal.handoff_id)))
    assert [type(result).__name__ for result in results] == ["DeclineHandoffResponse", "AcceptHandoffResponse"]
    stream = world.stream(referral_id)
    assert sorted(stream[4:]) == ["HandoffAccepted", "HandoffDeclined", "HandoffOffered"]
    assert world.offer("alb-cus-01", referral_id).state == api.HANDOFF_STATE_OFFERED
