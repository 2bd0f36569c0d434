"""The audit edge as it runs: ``python -m services.audit.edge`` over mTLS, beside the audit worker on real Kafka.

What is real: a ``network init`` network, Apache Kafka (the session's broker, on topics of the test's own),
intake's and referral's events sealed and signed as ``svc:intake`` / ``svc:referral`` by EventStores and
relayed by the OutboxRelay, the audit worker process (``nameko run services.audit.worker``) writing the
ledger, the edge process reading it from the same SQLite database, and grpcio clients holding an
auditor's and a shelter's certificates. What is replaced: nothing.

The compliance scenario is the one issue 6 asks for: a key released after its consent was revoked,
injected as a buggy producer would (sealed and signed properly as ``svc:intake``), is reported by
ComplianceReport as ``release_without_consent`` naming that event. Every proof the edge gives is checked
with the ledger's own verification functions against the signed checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.audit.domain.checkpoint import from_proto, verify_checkpoint
from services.audit.domain.compliance import RELEASE_WITHOUT_CONSENT
from services.audit.domain.merkle import ProofError, verify_consistency, verify_inclusion
from services.audit.servicer import SERVICE_NAME
from services.core.database import create_engine
from services.core.envelope import Verifier
from services.core.generated.referralnet.audit.v1 import audit_pb2 as api
from services.core.generated.referralnet.audit.v1 import audit_pb2_grpc
from services.core.grpcedge.client import language_metadata, org_channel
from services.core.identity.network import NetworkCreated, init_network
from tests.integration.support.grpc_edge_process import EdgeProcess
from tests.integration.support.nameko_process import wait_until
from tests.integration.test_audit_worker import (
    AuditTopics,
    SourceServices,
    WorkerProcess,
    make_topics,
    newest_checkpoint_size,
    worker_config,
)
from tests.unit.audit_ledger_support import consent_story

pytestmark = pytest.mark.integration
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> NetworkCreated:
    return init_network(tmp_path_factory.mktemp("audit-edge-it") / "network")


@pytest.fixture
def topics(kafka_bootstrap: str) -> AuditTopics:
    return make_topics(kafka_bootstrap)


@pytest.fixture
def audit(tmp_path: Path, network: NetworkCreated, kafka_bootstrap: str,
          topics: AuditTopics) -> Iterator[tuple[WorkerProcess, EdgeProcess, str]]:
    url = f"sqlite+pysqlite:///{tmp_path / 'audit.db'}"
    config = worker_config(tmp_path / "audit-worker.json", network, kafka_bootstrap, topics, url,
                           CHECKPOINT_SECONDS=0.3)
    worker = WorkerProcess("audit-worker", config, {}, tmp_path / "worker.log").start()
    edge = EdgeProcess("services.audit.edge", {"NETWORK_DIR": str(network.layout.root), "DATABASE_URL": url,
                                               "GRPC_LISTEN": "127.0.0.1:0"}, tmp_path / "edge.log",
                       name="audit-edge").start()
    try:
        yield worker, edge, edge.wait_ready()
    finally:
        edge.stop()
        worker.stop()


def stub(network: NetworkCreated, org_id: str, address: str) -> Any:  # the generated stub is untyped
    return audit_pb2_grpc.AuditServiceStub(org_channel(network.layout.root, org_id, address, server_name="audit"))


def test_an_auditor_proves_the_ledger_and_finds_the_release_made_after_the_revocation(
        tmp_path, network, kafka_bootstrap, topics, audit):
    worker, _, address = audit
    story = consent_story()
    sources = SourceServices(tmp_path, network, kafka_bootstrap, topics)
    try:
        subject_id, at = story.subject.subject_id, story.subject.clock()
        before = sources.intake_events(subject_id, [message for _, message in story.intake[:3]], at)
        referral_id = story.referral[0][0].stream_id.removeprefix("referral-")
        sources.referral_events(referral_id, [message for _, message in story.referral], at)
        wait_until(lambda: newest_checkpoint_size(kafka_bootstrap, topics.checkpoints) == 4, 60,
                   "the first checkpoint", (worker,))
        after = sources.intake_events(subject_id, [message for _, message in story.intake[3:]], at)
        wait_until(lambda: newest_checkpoint_size(kafka_bootstrap, topics.checkpoints) == 6, 60,
                   "the second checkpoint", (worker,))
    finally:
        sources.close()
    late_release = after[-1]
    auditor = stub(network, "aud-lim-01", address)

    newest = from_proto(auditor.GetCheckpoint(api.GetCheckpointRequest(), timeout=TIMEOUT).checkpoint)
    first = from_proto(auditor.GetCheckpoint(api.GetCheckpointRequest(tree_size=4), timeout=TIMEOUT).checkpoint)
    for checkpoint in (newest, first):
        verify_checkpoint(checkpoint, network.directory)
    assert (newest.tree_size, newest.previous_tree_size, first.tree_size) == (6, 4, 4)

    proof = auditor.GetInclusionProof(api.GetInclusionProofRequest(event_id=late_release), timeout=TIMEOUT)
    verify_inclusion(proof.leaf_input, proof.leaf_index, proof.tree_size, list(proof.audit_path), newest.root_hash)
    early = auditor.GetInclusionProof(api.GetInclusionProofRequest(event_id=before[0], tree_size=4), timeout=TIMEOUT)
    verify_inclusion(early.leaf_input, early.leaf_index, 4, list(early.audit_path), first.root_hash)
    with pytest.raises(ProofError):  # the path proves this leaf, not another
        verify_inclusion(early.leaf_input, proof.leaf_index, proof.tree_size, list(proof.audit_path),
                         newest.root_hash)
    consistency = auditor.GetConsistencyProof(api.GetConsistencyProofRequest(first_tree_size=4), timeout=TIMEOUT)
    verify_consistency(4, 6, list(consistency.proof), first.root_hash, newest.root_hash)

    entries = list(auditor.ReplayLog(api.ReplayLogRequest(), timeout=TIMEOUT))
    verifier = Verifier(network.directory, workers=1)
    assert [entry.leaf_index for entry in entries] == list(range(6))
    assert all(verifier.verify(entry.envelope).canonical_hash() == entry.leaf_input for entry in entries)
    assert {entry.event_id for entry in entries} >= {*before, *after}
    assert entries[int(proof.leaf_index)].event_id == late_release

    report = auditor.ComplianceReport(api.ComplianceReportRequest(), timeout=TIMEOUT)
    own = auditor.ComplianceReport(api.ComplianceReportRequest(subject_id=subject_id), timeout=TIMEOUT)
    assert [(v.check, list(v.event_ids), v.subject_id) for v in report.violations] == [
        (RELEASE_WITHOUT_CONSENT, [late_release], subject_id)]
    assert "was revoked at" in report.violations[0].detail
    assert (report.events_checked, report.checkpoint.tree_size) == (6, 6)
    assert [d.kind for d in report.disclosures] == ["offer", "key_release", "key_release"]
    assert list(own.violations) == list(report.violations) and own.events_checked == 6

    coordinator = stub(network, "coo-lim-01", address)
    assert coordinator.GetCheckpoint(api.GetCheckpointRequest(), timeout=TIMEOUT).checkpoint.tree_size == 6
    with pytest.raises(grpc.RpcError) as unknown:
        auditor.GetInclusionProof(api.GetInclusionProofRequest(event_id="0190a000-0000-7000-8000-000000000000"),
                                  timeout=TIMEOUT)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_shelter_is_refused_every_audit_call_in_its_language(tmp_path, network, audit):
    _, edge, address = audit
    shelter = stub(network, "alb-mdd-01", address)

    with pytest.raises(grpc.RpcError) as spanish:
        shelter.GetCheckpoint(api.GetCheckpointRequest(), timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError) as english:
        shelter.ComplianceReport(api.ComplianceReportRequest(), timeout=TIMEOUT, metadata=language_metadata("en"))
    with pytest.raises(grpc.RpcError) as streamed:
        list(shelter.ReplayLog(api.ReplayLogRequest(), timeout=TIMEOUT))

    assert {error.value.code() for error in (spanish, english, streamed)} == {grpc.StatusCode.PERMISSION_DENIED}
    assert "auditoría" in str(spanish.value.details()) and "auditors" in str(english.value.details())
    channel = org_channel(network.layout.root, "alb-mdd-01", address, server_name="audit")
    health: Any = health_pb2_grpc.HealthStub(channel)
    answer = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=TIMEOUT)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    assert "edge audit listening on" in edge.log()


def test_the_edge_migrates_an_empty_database_and_says_there_is_no_checkpoint_yet(tmp_path, network):
    url = f"sqlite+pysqlite:///{tmp_path / 'fresh.db'}"
    edge = EdgeProcess("services.audit.edge", {"NETWORK_DIR": str(network.layout.root), "DATABASE_URL": url,
                                               "GRPC_LISTEN": "127.0.0.1:0"}, tmp_path / "edge.log",
                       name="audit-edge").start()
    try:
        address = edge.wait_ready()
        with pytest.raises(grpc.RpcError) as none_yet:
            stub(network, "aud-lim-01", address).GetCheckpoint(api.GetCheckpointRequest(), timeout=TIMEOUT,
                                                                metadata=language_metadata("en"))
        assert none_yet.value.code() == grpc.StatusCode.NOT_FOUND
        assert "no signed checkpoint yet" in str(none_yet.value.details())
    finally:
        edge.stop()
    engine = create_engine(url)
    try:
        assert {"audit_leaves", "audit_pending_runs", "audit_rejections"} <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
