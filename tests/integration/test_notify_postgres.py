"""The notify use cases on PostgreSQL, and workers racing on one event, one reminder and one batch of deliveries.

What is real: PostgreSQL (a schema of its own per test), the migrations, a ``network init`` network with
endpoints, the event store and envelopes, threads running at the same moment. What is replaced: the network
below the transports, Kafka and the gRPC edge, as in tests/unit/test_notify_application.py, whose World drives
the application here too; the clock is injected. On PostgreSQL a racing INSERT or UPDATE of the same row waits
for the other transaction and then finds the row taken, unlike SQLite where writers take turns: these tests
prove that two workers still add one delivery per endpoint and send each delivery once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from services.core.eventstore import unit_of_work
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.notify.v1 import notify_pb2
from services.core.identity.directory import Directory
from services.core.identity.network import NetworkCreated
from services.notify.adapters.database import migrate
from services.notify.application.dispatch import DispatchReport
from tests.integration.database_backends import fresh_engine
from tests.unit.notify_support import UNAVAILABLE, Sent, notify_events, notify_network, webhook_url
from tests.unit.referral_support import HOUR_US
from tests.unit.test_notify_application import World, make_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> tuple[NetworkCreated, Directory]:
    return notify_network(tmp_path_factory.mktemp("notify-pg") / "network")


@pytest.fixture
def world(request: pytest.FixtureRequest, network: tuple[NetworkCreated, Directory]) -> Iterator[World]:
    with fresh_engine(request, "postgresql") as engine:
        migrate(engine)
        yield make_world(engine, *network)


def race(*work: Callable[[], Any]) -> list[Any]:
    """Run each callable in its own thread, released together; their results (any exception re-raised)."""
    barrier = threading.Barrier(len(work))
    results: list[Any] = [None] * len(work)
    errors: list[BaseException] = []

    def run(index: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = job()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index, job)) for index, job in enumerate(work)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    if errors:
        raise errors[0]
    return results


def test_one_event_applied_by_two_workers_at_once_adds_its_deliveries_once(world):
    offered = world.referral().offered("alb-cus-01")

    def apply() -> int:
        with unit_of_work(world.engine) as session:
            added: int = world.app.apply_referral_event(session, *offered)
        return added

    assert sorted(race(apply, apply)) == [0, 2]
    assert len(world.rows()) == 2


def test_two_workers_reminding_at_once_make_one_reminder(world):
    _, offer = offered = world.referral().offered("alb-cus-01", window_us=2 * HOUR_US)
    world.apply(offered)
    due = offer.expires_at_unix_micros - HOUR_US // 2
    assert sorted(race(lambda: world.app.remind_due(due), lambda: world.app.remind_due(due))) == [0, 2]
    assert [row.notice_key for row in world.rows()[2:]] == [f"reminder:{offer.handoff_id}"] * 2


def test_two_dispatchers_at_once_share_the_due_deliveries_and_send_each_once(world):
    feed = world.referral(region=vocab.REGION_CUSCO)
    for _ in range(15):
        world.apply(feed.offered("alb-cus-01"))
    assert len(world.rows()) == 30
    both_sending = threading.Barrier(2)
    first_send: dict[int, bool] = {}

    def hold_first_send(_sent: Sent) -> None:  # each dispatcher's first send waits for the other's
        if first_send.setdefault(threading.get_ident(), True):
            first_send[threading.get_ident()] = False
            both_sending.wait(timeout=30)

    world.transports.on_send.append(hold_first_send)
    reports: list[DispatchReport] = race(lambda: world.app.dispatch_due(limit=15),
                                         lambda: world.app.dispatch_due(limit=15))
    world.transports.on_send.clear()
    world.app.dispatch_due()  # whatever a budget left

    assert all(report.sent > 0 for report in reports)  # both took part
    delivered = [delivery_id for report in reports for delivery_id in report.delivered]
    assert len(delivered) == len(set(delivered))
    sent_ids = [sent.delivery_id for sent in world.transports.sent]
    assert len(sent_ids) == len(set(sent_ids)) == 30
    assert {row.status for row in world.rows()} == {"delivered"}


def test_retries_and_escalation_behave_on_postgresql_as_on_sqlite(world):
    endpoint = webhook_url("alb-mdd-01")
    world.transports.answer(endpoint, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)
    _, offer = offered = world.referral().offered("alb-mdd-01")
    world.apply(offered, offered)
    for _ in range(3):
        world.app.dispatch_due()
        world.clock.advance(10_000_000)
    [failed] = world.log("alb-mdd-01").deliveries
    assert [attempt.outcome for attempt in failed.attempts] == ["http_503"] * 3
    [event] = notify_events(world.engine, world.network.layout.root, world.directory)
    assert (event.stream_id, event.message.reference) == (f"delivery-{failed.delivery_id}", offer.handoff_id)
    assert [d.notice_type for d in world.log("coo-cus-01").deliveries] == [notify_pb2.NOTICE_TYPE_DELIVERY_FAILED] * 2
