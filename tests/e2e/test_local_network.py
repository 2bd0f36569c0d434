"""The launcher itself (deploy/local/network.py): what issue 9's reliability suite and the demo rely on.

A network of its own (SQLite files, on a Kafka broker of its own: topics and consumer groups are the same
for every network, so two networks never share a cluster), so killing its processes disturbs no other test:
a worker killed outright misses nothing once restarted (an offer made while it was down shows after the
restart); a restarted edge comes back on the same endpoint and the same channels work; stop() leaves no
process of any session it started, and each process logged to its own file. A second network on the
session network's Kafka is refused before it starts anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from deploy.local.errors import StackError
from deploy.local.kafka import KafkaCluster
from deploy.local.network import LocalNetwork
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.consent.v1 import consent_pb2
from services.core.generated.referralnet.intake.v1 import intake_pb2, intake_pb2_grpc
from services.core.generated.referralnet.referral.v1 import referral_pb2_grpc
from tests.e2e.support import RPC_TIMEOUT_S, Partner, grant, inbox, referral_request, wait_for, wait_for_handoff

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def own_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    with KafkaCluster(tmp_path_factory.mktemp("own-kafka"), size=1) as cluster:
        network = LocalNetwork(tmp_path_factory.mktemp("own-network"), cluster.bootstrap_servers)
        network.start()
        try:
            yield network
        finally:
            network.stop()


def _partner(network: LocalNetwork, org_id: str) -> Partner:
    return Partner(org_id, intake_pb2_grpc.IntakeServiceStub(network.channel(org_id, "intake")),
                   referral_pb2_grpc.ReferralServiceStub(network.channel(org_id, "referral")))


def test_killed_worker_catches_up_after_restart_and_edges_keep_their_endpoint(own_network: LocalNetwork) -> None:
    police, shelter = _partner(own_network, "pol-cus-01"), _partner(own_network, "alb-cus-01")
    worker_pid = own_network.pid("referral-worker")
    own_network.kill("referral-worker")
    assert not own_network.is_running("referral-worker") and worker_pid is not None

    submitted = police.intake.SubmitReferral(referral_request(
        needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE)], region=vocab.REGION_CUSCO,
        consents=[grant(vocab.ORG_ROLE_SHELTER)], case_file_number=801), timeout=RPC_TIMEOUT_S)
    assert not [h for h in inbox(shelter) if h.referral_id == submitted.referral_id]  # nobody routes it yet

    own_network.restart("referral-worker")
    assert own_network.pid("referral-worker") not in (None, worker_pid)
    wait_for_handoff(shelter, submitted.referral_id, timeout_s=60)

    endpoint = own_network.endpoint("intake")
    own_network.restart("intake-edge")
    assert own_network.endpoint("intake") == endpoint
    consents = wait_for(lambda: _consents_or_none(police, submitted.subject_id), 30, "intake answering again")
    assert [c.consent_id for c in consents] == list(submitted.consent_ids)


def _consents_or_none(police: Partner, subject_id: str) -> list[consent_pb2.Consent] | None:
    try:
        return list(police.intake.GetSubjectConsent(intake_pb2.GetSubjectConsentRequest(subject_id=subject_id),
                                                    timeout=5).consents)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            return None
        raise


def test_stop_leaves_no_process_and_each_process_logged(own_network: LocalNetwork) -> None:
    pids = own_network.pids()
    assert len(pids) == 8  # an edge and a worker each for intake, referral, audit and notify
    own_network.stop()
    assert own_network.leftover_processes() == []
    assert not any(own_network.is_running(name) for name in own_network.process_names)
    for name in own_network.process_names:
        log = own_network.log_path(name)
        assert log == own_network.logs_dir / f"{name}.log" and log.stat().st_size > 0
    assert (own_network.base_dir / "endpoints.json").exists() and isinstance(own_network.network_dir, Path)


def test_a_second_network_on_the_same_kafka_is_refused(e2e_network: LocalNetwork, kafka_bootstrap: str,
                                                       tmp_path: Path) -> None:
    second = LocalNetwork(tmp_path / "second", kafka_bootstrap, other_network_wait_s=0)
    with pytest.raises(StackError, match="another referral network"):
        second.start()
    assert second.pids() == [] and second.leftover_processes() == []
    assert all(e2e_network.is_running(name) for name in e2e_network.process_names)
