"""``python -m services.intake.edge`` as a process: it migrates, makes its KEK, serves IntakeService over mTLS,
relays its outbox to Kafka right after each commit, and stops cleanly on SIGTERM.

What is real: a ``network init`` network, the edge process (production code end to end), TLS, grpcio
clients as partner organisations, a SQLite database the edge migrates itself, Apache Kafka. Nothing is
replaced. Every call has a deadline and every wait is bounded.
"""

from __future__ import annotations

import signal
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from kafka import KafkaConsumer

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import Urgency
from services.core.generated.referralnet.consent.v1.consent_pb2 import DataCategory, Purpose
from services.core.generated.referralnet.intake.v1 import intake_pb2, intake_pb2_grpc
from services.core.grpcedge.client import language_metadata, org_channel
from services.core.identity.network import NetworkCreated
from services.core.messaging.topics import ensure_topics, events_topic
from services.core.migrations import current
from tests.integration.support.grpc_edge_process import EdgeProcess
from tests.unit.intake_support import (  # noqa: F401 -- fixtures
    OTHER_POLICE,
    OTHER_SHELTER,
    POLICE,
    intake_network_fixture,
    submission,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TIMEOUT = 10.0


@pytest.fixture
def edge(intake_network: NetworkCreated, kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[EdgeProcess, str]]:
    ensure_topics(kafka_bootstrap, [events_topic("intake")], partitions=3, replication_factor=1,
                  min_insync_replicas=1)
    process = EdgeProcess("services.intake.edge", {
        "NETWORK_DIR": str(intake_network.layout.root), "GRPC_LISTEN": "127.0.0.1:0",
        "DATABASE_URL": f"sqlite+pysqlite:///{tmp_path / 'intake.db'}",
        "KEYVAULT_KEK_PATH": str(tmp_path / "keys" / "kek.key"), "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
    }, tmp_path / "edge.log", name="intake-edge").start()
    try:
        yield process, process.wait_ready(timeout_s=60)
    finally:
        process.stop()


def stub(network: NetworkCreated, org_id: str, address: str) -> intake_pb2_grpc.IntakeServiceStub:
    channel = org_channel(network.layout.root, org_id, address, server_name="intake")
    return intake_pb2_grpc.IntakeServiceStub(channel)


def records_of_stream(bootstrap: str, stream_id: str, expected: int, timeout_s: float = 30.0) -> list[Any]:
    """The records keyed ``stream_id`` on intake's topic, read from the start until ``expected`` of them."""
    consumer = KafkaConsumer(events_topic("intake"), bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None)
    found: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < expected and time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=500).values()
            found += [record for batch in batches for record in batch if record.key == stream_id.encode()]
    finally:
        consumer.close()
    return found


def rpc_error(call: Callable[[], object]) -> grpc.Call:
    """The error a call fails with (grpc's errors are also Calls: code() and details())."""
    with pytest.raises(grpc.RpcError) as raised:
        call()
    error = raised.value
    assert isinstance(error, grpc.Call)
    return error


def test_the_edge_serves_intake_relays_its_events_and_stops_on_sigterm(edge, intake_network, kafka_bootstrap,
                                                                      tmp_path):
    process, address = edge
    police = stub(intake_network, POLICE, address)

    submitted = police.SubmitReferral(submission(), timeout=TIMEOUT)
    assert submitted.subject_id.startswith("sub-") and not submitted.replayed
    assert police.SubmitReferral(submission(), timeout=TIMEOUT).replayed

    invalid = submission("idem-key-0000000002")
    invalid.needs[0].urgency = Urgency.URGENCY_UNSPECIFIED
    error = rpc_error(lambda: police.SubmitReferral(invalid, timeout=TIMEOUT, metadata=language_metadata("en")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("needs[0].urgency: ")

    stranger = stub(intake_network, OTHER_POLICE, address)
    denied = rpc_error(lambda: stranger.GetSubjectConsent(intake_pb2.GetSubjectConsentRequest(
        subject_id=submitted.subject_id), timeout=TIMEOUT))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    assert denied.details() == "su organización no tiene permiso para esta operación"

    # A provider never offered this subject: the edge waits at most until shortly before the call's deadline.
    shelter = stub(intake_network, OTHER_SHELTER, address)
    started = time.monotonic()
    refused = rpc_error(lambda: shelter.ReleaseKey(intake_pb2.ReleaseKeyRequest(
        subject_id=submitted.subject_id, purpose=Purpose.PURPOSE_SERVICE_DELIVERY,
        category=DataCategory.DATA_CATEGORY_CASE_FILE), timeout=1.5))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert 1.0 < time.monotonic() - started < 1.5

    relayed = records_of_stream(kafka_bootstrap, f"subject-{submitted.subject_id}", expected=2)
    assert [dict(r.headers)["event-type"] for r in relayed] == [b"ConsentRecorded", b"ReferralSubmitted"]

    kek = tmp_path / "keys" / "kek.key"
    assert stat.S_IMODE(kek.stat().st_mode) == 0o600 and kek.stat().st_size == 32
    engine = sa.create_engine(f"sqlite+pysqlite:///{tmp_path / 'intake.db'}")
    assert current(engine) == ("intake_0002",)
    engine.dispose()

    process.signal(signal.SIGTERM)
    assert process.wait_exit(30) == 0
    assert "edge intake stopped" in process.log()
    for secret in (b"Persona Sint", b"SINT-0001"):
        assert secret not in process.log().encode()
