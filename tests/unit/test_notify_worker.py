"""The notify worker's parts: its Kafka handler, the producers it trusts, the wake-up after a commit, its timers.

What is real: a ``network init`` network with endpoints (routing key, signing keys, signed directory, webhook
secrets), envelopes sealed as ``svc:referral`` / ``svc:intake`` and verified as the Kafka entrypoint verifies
them, a migrated SQLite database, nameko's ServiceContainer with the real NotifierProvider, UnitOfWork and
timer entrypoints. What is replaced: Kafka (handlers get a ConsumedEvent directly;
tests/integration/test_notify_worker.py runs the worker with Kafka), the clock where a test says so, and in the
container tests the network transports (``network_transports`` returns a RecordingTransports).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import eventlet
import pytest
import sqlalchemy as sa
from google.protobuf.message import Message
from nameko.testing.services import worker_factory
from sqlalchemy.orm import Session

from services.core.database import create_engine
from services.core.envelope import EnvelopeSigner, EventHeader, Sealer, SectionKind, Verifier
from services.core.events import UnprocessableEvent
from services.core.events.catalogues import INTAKE_EVENTS, REFERRAL_EVENTS
from services.core.identity.directory import Directory
from services.core.identity.keystore import load_service_signing_key
from services.core.identity.network import NetworkCreated
from services.core.identity.webhook_secrets import load_webhook_secrets
from services.core.keyvault.routing_keys import load_routing_keys
from services.core.runtime import ConsumedEvent
from services.core.runtime.config import RuntimeConfigError
from services.notify import worker as notify_worker
from services.notify.adapters.database import migrate
from services.notify.adapters.tables import deliveries
from services.notify.bootstrap import notify_event_store
from services.notify.config import notify_settings
from services.notify.worker import (
    INTAKE_TOPIC,
    REFERRAL_TOPIC,
    DispatchTimer,
    Notifier,
    NotifierProvider,
    NotifyWorker,
    dispatch_timer,
)
from tests.unit.notify_support import RecordingTransports, ReferralFeed, notify_network, webhook_url
from tests.unit.referral_support import Clock, SubjectFeed


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> tuple[NetworkCreated, Directory]:
    return notify_network(tmp_path_factory.mktemp("notify-worker") / "network")


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[str, sa.Engine]]:
    url = f"sqlite+pysqlite:///{tmp_path / 'notify.db'}"
    migrate(url)
    engine = create_engine(url)
    yield url, engine
    engine.dispose()


def consumed(network: NetworkCreated, directory: Directory, header: EventHeader, message: Message, *,
             service: str, topic: str) -> ConsumedEvent:
    """An event as the Kafka entrypoint hands it over: sealed by ``service``, verified with the directory."""
    signer = EnvelopeSigner(f"svc:{service}", f"svc:{service}#sig-1",
                            load_service_signing_key(network.layout.root, service))
    catalogue = REFERRAL_EVENTS if message.DESCRIPTOR.name in REFERRAL_EVENTS else INTAKE_EVENTS
    payload = catalogue.encode(message)[2]
    wire = Sealer(signer).seal(header, {SectionKind.ROUTING: (load_routing_keys(network.layout.root).current(),
                                                              payload)})
    return ConsumedEvent(Verifier(directory, workers=1).verify(wire), topic=topic, partition=0, offset=0,
                         consumer="notify-worker")


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def notifier(network: NetworkCreated, directory: Directory, wake: Wakes, clock: Clock | None = None) -> Notifier:
    return Notifier(load_routing_keys(network.layout.root), directory, notify_settings({}, environ={}),
                    load_webhook_secrets(network.layout.root), RecordingTransports(), wake, clock or Clock())


def delivery_count(engine: sa.Engine) -> int:
    with Session(engine) as session:
        return int(session.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar_one())


def test_an_offer_is_opened_applied_and_wakes_the_dispatcher_only_once_committed(network, database):
    _, engine = database
    created, directory = network
    feed = ReferralFeed()
    offered = consumed(created, directory, *feed.offered("alb-cus-01"), service="referral", topic=REFERRAL_TOPIC)
    store = notify_event_store(created.layout.root, directory)
    wakes = Wakes()
    with Session(engine) as session:
        worker = worker_factory(NotifyWorker, session=session, events=store,
                                notifier=notifier(created, directory, wakes))
        worker.on_event(offered)
        assert wakes.count == 0  # not before the commit: the dispatcher would find nothing yet
        session.commit()
    assert wakes.count == 1 and delivery_count(engine) == 2

    with Session(engine) as session:  # a rolled-back transaction wakes nobody
        worker = worker_factory(NotifyWorker, session=session, events=store,
                                notifier=notifier(created, directory, wakes))
        worker.on_event(consumed(created, directory, *feed.offered("alb-mdd-01"), service="referral",
                                 topic=REFERRAL_TOPIC))
        session.rollback()
    with Session(engine) as session:  # an event that adds no delivery wakes nobody either
        worker = worker_factory(NotifyWorker, session=session, events=store,
                                notifier=notifier(created, directory, wakes))
        worker.on_event(consumed(created, directory, *SubjectFeed().consent(org_id="alb-cus-01"), service="intake",
                                 topic=INTAKE_TOPIC))
        session.commit()
    assert wakes.count == 1 and delivery_count(engine) == 2


def test_each_topic_is_accepted_only_from_its_own_service_and_stream(network, database):
    _, engine = database
    created, directory = network
    feed = ReferralFeed()
    cases = [
        (consumed(created, directory, *SubjectFeed().consent(org_id="alb-cus-01"), service="intake",
                  topic=REFERRAL_TOPIC), "unexpected_producer"),
        (consumed(created, directory, *feed.offered("alb-cus-01"), service="referral", topic=INTAKE_TOPIC),
         "unexpected_producer"),
    ]
    header, offer = ReferralFeed().offered("alb-cus-01")
    cases.append((consumed(created, directory, header, offer, service="referral", topic=REFERRAL_TOPIC), ""))
    wrong_stream = ReferralFeed()
    moved = wrong_stream.header(offer)  # another referral's stream carrying this referral's offer
    cases.append((consumed(created, directory, moved, offer, service="referral", topic=REFERRAL_TOPIC),
                  "stream_mismatch"))
    for event, reason in cases:
        with Session(engine) as session:
            worker = worker_factory(NotifyWorker, session=session, notifier=notifier(created, directory, Wakes()),
                                    events=notify_event_store(created.layout.root, directory))
            if not reason:
                worker.on_event(event)
                continue
            with pytest.raises(UnprocessableEvent) as caught:
                worker.on_event(event)
            assert caught.value.reason == reason


class DispatchProbe:
    """A service with just the dispatch timer and the notifier, counting its runs."""

    name = "dispatch-probe"
    notifier = NotifierProvider()
    runs: list[float] = []  # noqa: RUF012 -- shared on purpose: nameko makes a new instance per worker

    @dispatch_timer()  # type: ignore[untyped-decorator]  # nameko is untyped
    def dispatch(self) -> None:
        DispatchProbe.runs.append(time.monotonic())
        eventlet.sleep(0.2)


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        eventlet.sleep(0.02)
    return bool(condition())


def config(network: NetworkCreated, url: str, **extra: object) -> dict[str, object]:
    return {"DATABASE_URL": url, "NETWORK_DIR": str(network.layout.root), "EVENT_STORE_SERVICE": "notify", **extra}


def test_a_wake_runs_the_dispatcher_at_once_and_one_during_a_run_runs_it_again_after(network, database,
                                                                                    container_factory):
    url, _ = database
    created, _ = network
    DispatchProbe.runs.clear()
    container = container_factory(DispatchProbe, config(created, url, NOTIFY_DISPATCH_INTERVAL_SECONDS=3600))
    container.start()
    [timer] = [entrypoint for entrypoint in container.entrypoints if isinstance(entrypoint, DispatchTimer)]
    [provider] = [dependency for dependency in container.dependencies if isinstance(dependency, NotifierProvider)]
    assert timer.interval == 3600
    provider.notifier.wake()
    assert wait_for(lambda: len(DispatchProbe.runs) == 1)  # an hour's interval, yet it ran
    provider.notifier.wake()  # during that run (it sleeps 0.2 s)...
    provider.notifier.wake()  # ...twice: one more run is enough
    assert wait_for(lambda: len(DispatchProbe.runs) == 2)
    eventlet.sleep(0.5)
    assert len(DispatchProbe.runs) == 2
    container.stop()  # the woken wait ends at once: stop does not wait for the interval


def test_the_workers_timers_remind_of_a_due_offer_and_deliver_the_reminder(network, database, container_factory,
                                                                          monkeypatch):
    url, engine = database
    created, directory = network
    transports = RecordingTransports()
    monkeypatch.setattr(notify_worker, "network_transports", lambda _settings: transports)
    feed = ReferralFeed(clock=Clock(time.time_ns() // 1000 - 40_000_000))  # offered 40 s ago, 20 s left
    with Session(engine) as session:
        wakes = Wakes()
        worker = worker_factory(NotifyWorker, session=session, events=notify_event_store(created.layout.root,
                                                                                          directory),
                                notifier=notifier(created, directory, wakes, feed.clock))
        worker.on_event(consumed(created, directory, *feed.offered("alb-mdd-01", window_us=60_000_000),
                                 service="referral", topic=REFERRAL_TOPIC))
        session.commit()

    class RemindAndDispatch:
        name = "notify-timers"
        session = NotifyWorker.session
        events = NotifyWorker.events
        notifier = NotifyWorker.notifier
        remind = NotifyWorker.remind
        dispatch = NotifyWorker.dispatch

    container = container_factory(RemindAndDispatch, config(created, url, NOTIFY_DISPATCH_INTERVAL_SECONDS=0.1,
                                                            NOTIFY_REMINDER_BEFORE_SECONDS=3600))
    container.start()
    assert wait_for(lambda: len(transports.to(webhook_url("alb-mdd-01"))) == 2)  # the offer, then the reminder
    container.stop()
    with Session(engine) as session:
        rows = session.execute(sa.select(deliveries.c.notice_key, deliveries.c.status)
                               .order_by(deliveries.c.created_at_us)).all()
    assert [status for _, status in rows] == ["delivered", "delivered"]
    assert rows[1][0].startswith("reminder:hof-")


def test_the_worker_refuses_to_sign_as_another_service_or_to_start_with_a_bad_interval(network, database,
                                                                                       container_factory):
    url, _ = database
    created, _ = network
    container = container_factory(DispatchProbe, {**config(created, url), "EVENT_STORE_SERVICE": "referral"})
    [provider] = [dependency for dependency in container.dependencies if isinstance(dependency, NotifierProvider)]
    with pytest.raises(RuntimeConfigError, match="must be 'notify'"):
        provider.setup()
    container = container_factory(DispatchProbe, config(created, url, NOTIFY_DISPATCH_INTERVAL_SECONDS="soon"))
    [timer] = [entrypoint for entrypoint in container.entrypoints if isinstance(entrypoint, DispatchTimer)]
    with pytest.raises(ValueError, match="NOTIFY_DISPATCH_INTERVAL_SECONDS"):
        timer.setup()
