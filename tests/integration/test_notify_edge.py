"""The notify edge as it runs: ``python -m services.notify.edge`` over mTLS, with its outbox relay to Kafka.

What is real: a ``network init`` network whose organisations got endpoints with ``network endpoints``, the edge
process (migrating its SQLite database on start, serving NotifyService with health checking, relaying notify's
outbox to the session's Kafka broker), grpcio clients holding organisations' certificates, and the worker's use
cases writing into the same database as the worker process would, sending with the real transports (requests
to a port nobody listens on: refused; e-mail with no SMTP relay configured: refused for good). What is replaced:
nothing; referral's events are applied with ``apply_referral_event`` rather than through Kafka
(tests/integration/test_notify_worker.py covers that).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kafka import KafkaConsumer

from deploy.local.process import free_ports
from services.core.database import create_engine
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.notify.v1 import notify_pb2 as api
from services.core.generated.referralnet.notify.v1 import notify_pb2_grpc
from services.core.grpcedge.client import language_metadata, org_channel
from services.core.identity.endpoints import set_notify_endpoints
from services.core.identity.network import NetworkCreated, init_network
from services.core.messaging.topics import ensure_topics, events_topic
from services.notify.bootstrap import build_application, network_transports
from services.notify.config import notify_settings
from services.notify.servicer import SERVICE_NAME
from tests.integration.support.grpc_edge_process import EdgeProcess
from tests.unit.notify_support import ReferralFeed, apply_referral
from tests.unit.referral_support import Clock

pytestmark = pytest.mark.integration
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> NetworkCreated:
    created = init_network(tmp_path_factory.mktemp("notify-edge") / "network")
    [closed] = free_ports(1)
    set_notify_endpoints(created.layout.root, "alb-mdd-01", webhook_url=f"http://127.0.0.1:{closed}/hooks/alb-mdd-01",
                         email="alb-mdd-01@inbox.partner.invalid")
    set_notify_endpoints(created.layout.root, "coo-lim-01", email="coo-lim-01@inbox.partner.invalid")
    return created


@pytest.fixture
def edge(tmp_path: Path, network: NetworkCreated, kafka_bootstrap: str) -> Iterator[tuple[EdgeProcess, str, str]]:
    ensure_topics(kafka_bootstrap, [events_topic("notify")], partitions=3, replication_factor=1,
                  min_insync_replicas=1)
    url = f"sqlite+pysqlite:///{tmp_path / 'notify.db'}"
    process = EdgeProcess("services.notify.edge", {
        "NETWORK_DIR": str(network.layout.root), "DATABASE_URL": url, "GRPC_LISTEN": "127.0.0.1:0",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}, tmp_path / "edge.log", name="notify-edge").start()
    try:
        yield process, process.wait_ready(), url
    finally:
        process.stop()


def stub(network: NetworkCreated, org_id: str, address: str) -> Any:  # the generated stub is untyped
    return notify_pb2_grpc.NotifyServiceStub(org_channel(network.layout.root, org_id, address, server_name="notify"))


def published_keys(bootstrap: str, keys: set[bytes], timeout_s: float = 30.0) -> list[tuple[bytes, str]]:
    """(key, event type) of the records on notify's topic under ``keys``, waiting until each was seen."""
    consumer = KafkaConsumer(events_topic("notify"), bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None)
    found: list[tuple[bytes, str]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while {key for key, _ in found} != keys and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                found += [(record.key, dict(record.headers)["event-type"].decode()) for record in batch
                          if record.key in keys]
    finally:
        consumer.close()
    return found


def test_each_member_lists_only_its_own_deliveries_and_the_relay_publishes_the_undeliverable_ones(
        edge, network, kafka_bootstrap):
    process, address, url = edge
    engine = create_engine(url)  # migrated by the edge on start
    try:
        settings = notify_settings({"NOTIFY_MAX_ATTEMPTS": 1, "NOTIFY_SEND_TIMEOUT_SECONDS": 2}, environ={})
        worker_side = build_application(engine, network.layout.root, settings=settings,  # directory from disk
                                        transports=network_transports(settings))
        feed = ReferralFeed(clock=Clock(time.time_ns() // 1000), region=vocab.REGION_MADRE_DE_DIOS)
        header, offer = feed.offered("alb-mdd-01")
        apply_referral(worker_side, engine, [(header, offer)])
        report = worker_side.dispatch_due()
    finally:
        engine.dispose()
    assert len(report.failed) == 4  # the webhook (refused) and e-mail (no relay), then the coordinator's two e-mails

    provider = stub(network, "alb-mdd-01", address)
    listed = provider.ListDeliveries(api.ListDeliveriesRequest(), timeout=TIMEOUT).deliveries
    assert sorted((d.channel, d.status, d.event_id, d.reference) for d in listed) == [
        (api.CHANNEL_WEBHOOK, api.DELIVERY_STATUS_FAILED, header.event_id, offer.handoff_id),
        (api.CHANNEL_EMAIL, api.DELIVERY_STATUS_FAILED, header.event_id, offer.handoff_id)]
    assert {d.attempts[0].outcome for d in listed} == {"connection_refused", "smtp_not_configured"}
    first = provider.ListDeliveries(api.ListDeliveriesRequest(page_size=1), timeout=TIMEOUT)
    rest = provider.ListDeliveries(api.ListDeliveriesRequest(page_size=1, page_token=first.next_page_token),
                                   timeout=TIMEOUT)
    assert {first.deliveries[0].delivery_id, rest.deliveries[0].delivery_id} == {d.delivery_id for d in listed}

    coordinator = stub(network, "coo-lim-01", address).ListDeliveries(api.ListDeliveriesRequest(), timeout=TIMEOUT)
    assert [d.notice_type for d in coordinator.deliveries] == [api.NOTICE_TYPE_DELIVERY_FAILED] * 2
    assert {d.reference for d in coordinator.deliveries} == {offer.handoff_id}
    outsider = stub(network, "fis-lim-01", address)
    assert list(outsider.ListDeliveries(api.ListDeliveriesRequest(), timeout=TIMEOUT).deliveries) == []
    by_event = api.ListDeliveriesRequest(event_id=header.event_id)
    assert list(outsider.ListDeliveries(by_event, timeout=TIMEOUT).deliveries) == []

    with pytest.raises(grpc.RpcError) as invalid:
        provider.ListDeliveries(api.ListDeliveriesRequest(page_size=501), timeout=TIMEOUT,
                                metadata=language_metadata("en"))
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(invalid.value.details()).startswith("page_size: must be 1 to 500")

    channel = org_channel(network.layout.root, "fis-lim-01", address, server_name="notify")
    health: Any = health_pb2_grpc.HealthStub(channel)  # its type stub declares no methods
    answer = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=TIMEOUT)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING

    keys = {f"delivery-{d.delivery_id}".encode() for d in [*listed, *coordinator.deliveries]}
    published = published_keys(kafka_bootstrap, keys)
    assert sorted(published) == sorted((key, "NoticeUndeliverable") for key in keys)

    process.signal(signal.SIGTERM)
    assert process.wait_exit(30) == 0
    assert "edge notify stopped" in process.log()


def test_the_edge_refuses_to_start_without_a_database(tmp_path, network):
    process = EdgeProcess("services.notify.edge", {
        "NETWORK_DIR": str(network.layout.root), "GRPC_LISTEN": "127.0.0.1:0", "OUTBOX_RELAY": "off",
        "DATABASE_URL": ""}, tmp_path / "edge.log", name="notify-edge").start()
    try:
        assert process.wait_exit(30) == 2
    finally:
        process.stop()
    assert "edge notify cannot start: DATABASE_URL" in process.log()
    assert "Traceback" not in process.log()
