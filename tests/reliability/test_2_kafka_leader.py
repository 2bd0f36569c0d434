"""The partition leader of intake's events topic is killed (SIGKILL) under load, on a 3-broker cluster with
replication factor 3 and min.insync.replicas 2: nothing acknowledged is lost.

"Acknowledged" is both an OK answer to SubmitReferral (the outbox row is committed) and an outbox row marked
published (the relay's acks=all write): every one ends up consumed, as a referral of the referral service
and as leaves of the audit ledger (``check_network_consistent``). The killed node comes back after a
while under load; the cluster is whole again at the end.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from deploy.local.inbox import PartnerInbox
from deploy.local.kafka import KafkaCluster
from deploy.local.network import LocalNetwork
from services.core.messaging.topics import events_topic
from tests.reliability.support import SUBMIT_DEADLINE_S, SteadyLoad, check_network_consistent

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

PER_REFERRER = 15
DOWN_S = 10.0


def _leader(bootstrap: str, topic: str, partition: int) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="reliability-test", request_timeout_ms=15_000)
    try:
        [described] = admin.describe_topics([topic])
    finally:
        admin.close()
    partitions = {p["partition_index"]: p for p in described["partitions"]}
    assert len(partitions[partition]["replica_nodes"]) == 3, partitions[partition]
    return int(partitions[partition]["leader_id"])


def test_killing_the_partition_leader_under_load_loses_nothing_acknowledged(
        reliability_network: LocalNetwork, reliability_kafka: KafkaCluster, reliability_inbox: PartnerInbox,
        rng: random.Random, tmp_path: Path, accepted_referrals: set[str]) -> None:
    network, cluster = reliability_network, reliability_kafka
    topic = events_topic("intake")
    partition = rng.randrange(network.partitions)
    with SteadyLoad(network, per_referrer=PER_REFERRER, pause_s=0.3, label="leader") as load:
        time.sleep(rng.uniform(1.0, 4.0))
        leader = _leader(cluster.bootstrap_servers, topic, partition)
        cluster.kill_node(leader)
        time.sleep(DOWN_S)  # the load goes on with two of three replicas
        cluster.restart_node(leader)
        assert len(cluster.running_nodes()) == 3
        assert load.submissions_done(SUBMIT_DEADLINE_S), "the referrers did not get all their answers"
        result = load.stop()
    accepted_referrals.update(result.accepted.values())
    assert not result.errors, result.errors
    assert len(result.accepted) == PER_REFERRER * len(load.routes)
    assert all(network.is_running(name) for name in network.process_names)
    consistency = check_network_consistent(network, reliability_inbox, accepted_referrals, tmp_path)
    print(f"killed node {leader}, leader of {topic}[{partition}], for {DOWN_S:.0f}s under load; "
          f"{len(result.accepted)} submissions OK, failed calls retried {dict(result.failed_calls)}; {consistency}")

