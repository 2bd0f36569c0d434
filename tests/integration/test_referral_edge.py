"""The referral edge as it runs: ``python -m services.referral.edge`` over mTLS, with its outbox relay to Kafka.

What is real: a ``network init`` network, the edge process (migrating its SQLite database on start, serving
ReferralService with health checking, relaying its outbox to the session's Kafka broker), grpcio clients
holding organisations' certificates, and the referral worker's use case writing intake's referral into the
same database, as the worker process would. What is replaced: nothing; intake's events are applied with
``apply_intake_event`` rather than through Kafka (tests/integration/test_referral_worker.py covers that).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kafka import KafkaConsumer

from services.core.database import create_engine
from services.core.generated.referralnet.referral.v1 import referral_pb2 as api
from services.core.generated.referralnet.referral.v1 import referral_pb2_grpc
from services.core.grpcedge.client import language_metadata, org_channel
from services.core.identity.network import NetworkCreated, init_network
from services.core.messaging.topics import ensure_topics, events_topic
from services.referral.bootstrap import build_application
from services.referral.servicer import SERVICE_NAME
from tests.integration.support.grpc_edge_process import EdgeProcess
from tests.unit.referral_support import SubjectFeed, apply_all

pytestmark = pytest.mark.integration
TIMEOUT = 10.0
HOUR_S = 3600


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> NetworkCreated:
    return init_network(tmp_path_factory.mktemp("referral-edge") / "network")


@pytest.fixture
def edge(tmp_path: Path, network: NetworkCreated, kafka_bootstrap: str) -> Iterator[tuple[EdgeProcess, str, str]]:
    ensure_topics(kafka_bootstrap, [events_topic("referral")], partitions=3, replication_factor=1,
                  min_insync_replicas=1)
    url = f"sqlite+pysqlite:///{tmp_path / 'referral.db'}"
    process = EdgeProcess("services.referral.edge", {
        "NETWORK_DIR": str(network.layout.root), "DATABASE_URL": url, "GRPC_LISTEN": "127.0.0.1:0",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "OFFER_DEADLINES": "shelter=1h"}, tmp_path / "edge.log",
        name="referral-edge").start()
    try:
        yield process, process.wait_ready(), url
    finally:
        process.stop()


def stub(network: NetworkCreated, org_id: str, address: str) -> Any:  # the generated stub is untyped
    return referral_pb2_grpc.ReferralServiceStub(org_channel(network.layout.root, org_id, address,
                                                             server_name="referral"))


def referral_records(bootstrap: str, referral_id: str, expected: int, timeout_s: float = 30.0) -> list[str]:
    """The event types published under the key ``referral-<referral_id>``, waiting for ``expected`` of them."""
    consumer = KafkaConsumer(events_topic("referral"), bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None)
    key, found = f"referral-{referral_id}".encode(), list[str]()
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                found += [dict(record.headers)["event-type"].decode() for record in batch if record.key == key]
    finally:
        consumer.close()
    return found


def test_partners_work_their_inbox_through_the_edge_and_its_relay_publishes_every_event(
        edge, network, kafka_bootstrap):
    process, address, url = edge
    engine = create_engine(url)  # migrated by the edge on start
    try:
        worker_side = build_application(engine, network.layout.root, directory=network.directory)
        feed = SubjectFeed()
        consents = feed.provider_consents()
        submission = feed.submission(consent_ids=[message.consent_id for _, message in consents])
        apply_all(worker_side, engine, [*consents, submission])
    finally:
        engine.dispose()
    referral_id = submission[1].referral_id

    shelter = stub(network, "alb-mdd-01", address)
    [offer] = shelter.ListHandoffs(api.ListHandoffsRequest(), timeout=TIMEOUT).handoffs
    assert (offer.referral_id, offer.state) == (referral_id, api.HANDOFF_STATE_OFFERED)
    shelter.DeclineHandoff(api.DeclineHandoffRequest(handoff_id=offer.handoff_id,
                                                     reason=api.DECLINE_REASON_NO_CAPACITY), timeout=TIMEOUT)
    cusco = stub(network, "alb-cus-01", address)
    [next_offer] = cusco.ListHandoffs(api.ListHandoffsRequest(), timeout=TIMEOUT).handoffs
    assert next_offer.offer_expires_at.seconds - next_offer.offered_at.seconds == HOUR_S  # the edge's deadlines
    accepted = cusco.AcceptHandoff(api.AcceptHandoffRequest(handoff_id=next_offer.handoff_id), timeout=TIMEOUT)
    assert accepted.handoff.state == api.HANDOFF_STATE_ACCEPTED

    outsider = stub(network, "fis-lim-01", address)
    request = api.GetReferralRequest(referral_id=referral_id)
    with pytest.raises(grpc.RpcError) as spanish:
        outsider.GetReferral(request, timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError) as english:
        outsider.GetReferral(request, timeout=TIMEOUT, metadata=language_metadata("en"))
    assert spanish.value.code() == english.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "coordinación" in str(spanish.value.details()) and "coordinators" in str(english.value.details())
    with pytest.raises(grpc.RpcError) as invalid:
        shelter.AcceptHandoff(api.AcceptHandoffRequest(handoff_id="DNI-SINT-0001"), timeout=TIMEOUT)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(invalid.value.details()).startswith("handoff_id: ")
    status = stub(network, "pol-mdd-01", address).GetReferral(request, timeout=TIMEOUT).referral
    assert [h.provider_org for h in status.needs[0].handoffs] == ["alb-mdd-01", "alb-cus-01"]

    channel = org_channel(network.layout.root, "alb-mdd-01", address, server_name="referral")
    health: Any = health_pb2_grpc.HealthStub(channel)  # its type stub declares no methods
    answer = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=TIMEOUT)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING

    published = referral_records(kafka_bootstrap, referral_id, expected=7)
    assert published == ["ReferralOpened", "HandoffOffered", "HandoffOffered", "HandoffOffered", "HandoffDeclined",
                         "HandoffOffered", "HandoffAccepted"]

    process.signal(signal.SIGTERM)
    assert process.wait_exit(30) == 0
    assert "edge referral stopped" in process.log()


def test_the_edge_refuses_to_start_with_malformed_offer_deadlines(tmp_path, network):
    process = EdgeProcess("services.referral.edge", {
        "NETWORK_DIR": str(network.layout.root), "DATABASE_URL": f"sqlite+pysqlite:///{tmp_path / 'r.db'}",
        "GRPC_LISTEN": "127.0.0.1:0", "OUTBOX_RELAY": "off", "OFFER_DEADLINES": "shelter=soon"},
        tmp_path / "edge.log", name="referral-edge").start()
    try:
        assert process.wait_exit(30) == 2
    finally:
        process.stop()
    assert "edge referral cannot start: OFFER_DEADLINES: 'shelter=soon'" in process.log()
    assert "Traceback" not in process.log()
    with sa.create_engine(f"sqlite+pysqlite:///{tmp_path / 'r.db'}").connect() as conn:
        assert sa.inspect(conn).get_table_names() == []  # it stopped before touching the database
