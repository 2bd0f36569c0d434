"""The referral worker's handlers: intake's sealed events in, routing out; the expiry timer in its own transaction.

What is real: a ``network init`` network (intake's signing key, the routing key, the signed directory),
envelopes sealed as ``svc:intake`` and verified as the Kafka entrypoint verifies them, a migrated SQLite
database, nameko's ServiceContainer with the real UnitOfWork and the timer entrypoint. What is replaced:
Kafka (handlers get a ConsumedEvent directly; tests/integration/test_referral_worker.py runs the worker with
Kafka) and, where a test says so, the clock.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import eventlet
import pytest
import sqlalchemy as sa
from google.protobuf.message import Message
from nameko.testing.services import worker_factory
from sqlalchemy.orm import Session

from services.core.database import create_engine
from services.core.envelope import EnvelopeSigner, EventHeader, Sealer, SectionKind, UnknownKeyError, Verifier
from services.core.events import UnprocessableEvent
from services.core.events.catalogues import INTAKE_EVENTS
from services.core.eventstore import unit_of_work
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.identity.keystore import load_service_signing_key
from services.core.identity.network import NetworkCreated, init_network
from services.core.keyvault.keys import DataKey, new_data_key
from services.core.keyvault.routing_keys import load_routing_keys
from services.core.runtime import ConsumedEvent
from services.core.runtime.config import RuntimeConfigError
from services.referral.adapters.database import migrate
from services.referral.adapters.tables import handoffs
from services.referral.bootstrap import build_application, referral_event_store
from services.referral.domain.deadlines import parse_offer_deadlines
from services.referral.worker import ExpiryTimer, ReferralWorker, Routing, RoutingProvider
from tests.unit.referral_support import HOUR_US, Clock, SubjectFeed, apply_all, referral_events

PSYCHOSOCIAL = [(vocab.SERVICE_TYPE_PSYCHOSOCIAL, vocab.URGENCY_ROUTINE)]


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> NetworkCreated:
    return init_network(tmp_path_factory.mktemp("referral-worker") / "network")


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[str, sa.Engine]]:
    url = f"sqlite+pysqlite:///{tmp_path / 'referral.db'}"
    migrate(url)
    engine = create_engine(url)
    yield url, engine
    engine.dispose()


def consumed(network: NetworkCreated, header: EventHeader, payload: bytes, key: DataKey | None = None,
             offset: int = 0) -> ConsumedEvent:
    """An intake event as the Kafka entrypoint hands it over: sealed by intake, verified with the directory."""
    signer = EnvelopeSigner("svc:intake", "svc:intake#sig-1", load_service_signing_key(network.layout.root, "intake"))
    key = key or load_routing_keys(network.layout.root).current()
    wire = Sealer(signer).seal(header, {SectionKind.ROUTING: (key, payload)})
    return ConsumedEvent(Verifier(network.directory, workers=1).verify(wire), topic="referralnet.intake.events.v1",
                         partition=0, offset=offset, consumer="referral-worker")


def encoded(network: NetworkCreated, items: Sequence[tuple[EventHeader, Message]]) -> list[ConsumedEvent]:
    return [consumed(network, header, INTAKE_EVENTS.encode(message)[2], offset=index)
            for index, (header, message) in enumerate(items)]


def routing(network: NetworkCreated, clock: Clock | None = None, deadlines: str = "") -> Routing:
    return Routing(load_routing_keys(network.layout.root), network.directory, parse_offer_deadlines(deadlines),
                   clock or Clock())


def test_intake_events_are_opened_with_the_routing_key_and_route_the_referral(network, database):
    _, engine = database
    feed = SubjectFeed()
    consents = feed.provider_consents()
    submission = feed.submission(needs=PSYCHOSOCIAL, consent_ids=[m.consent_id for _, m in consents])
    store = referral_event_store(network.layout.root, network.directory)
    for event in encoded(network, [*consents, submission]):
        with Session(engine) as session:
            worker = worker_factory(ReferralWorker, session=session, events=store, routing=routing(network))
            worker.on_intake_event(event)
            session.commit()
    stored = referral_events(engine, network.layout.root, network.directory)
    assert [e.event_type for e in stored] == ["ReferralOpened", "HandoffOffered"]
    assert stored[1].message.provider_org == "psi-cus-01" and stored[1].producer_org == "svc:referral"


def test_an_event_sealed_under_a_key_the_network_does_not_hold_cannot_be_opened(network, database):
    _, engine = database
    header, message = SubjectFeed().consent(role=vocab.ORG_ROLE_SHELTER)
    event = consumed(network, header, message.SerializeToString(), key=new_data_key())
    with Session(engine) as session:
        worker = worker_factory(ReferralWorker, session=session, routing=routing(network))
        with pytest.raises(UnknownKeyError):
            worker.on_intake_event(event)  # the entrypoint dead-letters it with reason unknown_key


def test_an_event_type_intake_does_not_publish_is_unprocessable(network, database):
    _, engine = database
    feed = SubjectFeed()
    header, message = feed.consent(role=vocab.ORG_ROLE_SHELTER)
    renamed = dataclasses.replace(header, event_type="OverrideJustification")  # a case-file message, no event
    with Session(engine) as session:
        worker = worker_factory(ReferralWorker, session=session, routing=routing(network))
        with pytest.raises(UnprocessableEvent) as caught:
            worker.on_intake_event(consumed(network, renamed, message.SerializeToString()))
    assert caught.value.reason == "unknown_event_type"


def test_the_timer_expires_due_offers_in_its_session_with_the_workers_clock(network, database):
    _, engine = database
    clock = Clock()
    app = build_application(engine, network.layout.root, directory=network.directory, clock=clock)
    feed = SubjectFeed(clock=clock)
    consents = feed.provider_consents()
    apply_all(app, engine, [*consents, feed.submission(needs=PSYCHOSOCIAL)])
    store = referral_event_store(network.layout.root, network.directory)
    clock.advance(48 * HOUR_US)
    with unit_of_work(engine) as session:
        worker = worker_factory(ReferralWorker, session=session, events=store, routing=routing(network, clock))
        worker.expire_offers()
    with Session(engine) as session:
        rows = sorted(session.execute(sa.select(handoffs.c.provider_org, handoffs.c.state)).all())
    assert rows == [("psi-cus-01", "expired"), ("psi-lim-01", "offered")]


class ExpiryOnly:
    """The referral worker's timer and dependencies, without its Kafka consumer (no broker in this tier)."""

    name = "referral-expiry"
    session = ReferralWorker.session
    events = ReferralWorker.events
    routing = ReferralWorker.routing
    expire_offers = ReferralWorker.expire_offers


def test_the_timer_runs_in_a_real_container_at_the_configured_interval_and_commits(network, database,
                                                                                   container_factory):
    url, engine = database
    past = Clock(time.time_ns() // 1000 - 10_000_000)  # offers made 10 s ago with a 1 s deadline
    app = build_application(engine, network.layout.root, directory=network.directory, clock=past,
                            deadlines=parse_offer_deadlines("psychosocial=1s"))
    feed = SubjectFeed(clock=past)
    apply_all(app, engine, [*feed.provider_consents(), feed.submission(needs=PSYCHOSOCIAL)])
    container = container_factory(ExpiryOnly, {
        "DATABASE_URL": url, "NETWORK_DIR": str(network.layout.root), "EVENT_STORE_SERVICE": "referral",
        "OFFER_DEADLINES": "psychosocial=1s", "OFFER_EXPIRY_INTERVAL_SECONDS": 0.05})
    container.start()
    [timer] = [entrypoint for entrypoint in container.entrypoints if isinstance(entrypoint, ExpiryTimer)]
    assert timer.interval == 0.05

    def states() -> list[tuple[str, str]]:
        with Session(engine) as session:
            return sorted(session.execute(sa.select(handoffs.c.provider_org, handoffs.c.state)).all())

    deadline = time.monotonic() + 10
    while states() != [("psi-cus-01", "expired"), ("psi-lim-01", "expired")] and time.monotonic() < deadline:
        eventlet.sleep(0.05)  # the timer's greenthread runs meanwhile; psi-lim-01's offer expires 1 s later
    container.stop()
    assert states() == [("psi-cus-01", "expired"), ("psi-lim-01", "expired")]
    kinds = [e.event_type for e in referral_events(engine, network.layout.root, network.directory)]
    assert kinds == ["ReferralOpened", "HandoffOffered", "HandoffExpired", "HandoffOffered", "HandoffExpired",
                     "ReferralEscalated"]


def test_the_worker_refuses_to_sign_as_another_service(network, container_factory, database):
    url, _ = database
    container = container_factory(ExpiryOnly, {"DATABASE_URL": url, "NETWORK_DIR": str(network.layout.root),
                                               "EVENT_STORE_SERVICE": "intake"})
    provider = next(dep for dep in container.dependencies if isinstance(dep, RoutingProvider))
    with pytest.raises(RuntimeConfigError, match="must be 'referral'"):
        provider.setup()


@pytest.mark.parametrize("interval", ["0", "-1", "soon"])
def test_a_bad_expiry_interval_stops_the_worker_at_setup(network, container_factory, database, interval):
    url, _ = database
    container = container_factory(ExpiryOnly, {"DATABASE_URL": url, "NETWORK_DIR": str(network.layout.root),
                                               "EVENT_STORE_SERVICE": "referral",
                                               "OFFER_EXPIRY_INTERVAL_SECONDS": interval})
    [timer] = [entrypoint for entrypoint in container.entrypoints if isinstance(entrypoint, ExpiryTimer)]
    with pytest.raises(ValueError, match="OFFER_EXPIRY_INTERVAL_SECONDS"):
        timer.setup()
