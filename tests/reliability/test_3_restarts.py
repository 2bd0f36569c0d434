"""A whole-cluster broker restart and a database restart: the services recover by themselves.

First every Kafka node is killed at once and the three are started again; then the PostgreSQL server every
service's database lives on is stopped as a crash would stop it (``pg_ctl stop -m immediate``) and started
again. Nobody touches the edges or workers: after each restart a new submission (retried with its
idempotency key while the servers are away) must flow end to end, from SubmitReferral to the provider's offer
and its webhook at the partner's inbox, within ``RECOVERY_S``; no process may have exited; and the whole
network's end state must hold (``check_network_consistent``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from deploy.local.inbox import WEBHOOK, PartnerInbox
from deploy.local.kafka import KafkaCluster
from deploy.local.network import LocalNetwork
from deploy.local.postgres import PostgresServer
from tests.reliability.support import ROUTES, SteadyLoad, check_network_consistent, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

RECOVERY_S = 120.0
DOWN_S = 3.0


def _flows_end_to_end(network: LocalNetwork, inbox: PartnerInbox, label: str, accepted: set[str]) -> float:
    """Submit one referral per route (retrying until OK) and wait until each provider got its offer's webhook;
    the seconds it took."""
    started = time.monotonic()
    with SteadyLoad(network, per_referrer=1, pause_s=0.0, label=label) as load:
        assert load.submissions_done(RECOVERY_S), f"{label}: no OK answer to SubmitReferral within {RECOVERY_S:.0f}s"
        result = load.stop()
    accepted.update(result.accepted.values())
    assert not result.errors and len(result.accepted) == len(ROUTES), result.errors
    wanted = set(result.accepted.values())

    def offers_missing() -> str | None:
        notified = {notice.notice().referral_id for notice in inbox.unique() if notice.channel == WEBHOOK}
        missing = wanted - notified
        return None if not missing else f"no offer webhook yet for {sorted(missing)}"

    wait_until(offers_missing, max(1.0, RECOVERY_S - (time.monotonic() - started)),
               f"{label}: the submissions reach their providers' inboxes")
    return time.monotonic() - started




def test_broker_restart_and_database_restart_recover_without_manual_steps(
        reliability_network: LocalNetwork, reliability_kafka: KafkaCluster, reliability_postgres: PostgresServer,
        reliability_inbox: PartnerInbox, tmp_path: Path, accepted_referrals: set[str]) -> None:
    network, cluster = reliability_network, reliability_kafka
    restarts = {name: network.restarts(name) for name in network.process_names}
    baseline = _flows_end_to_end(network, reliability_inbox, "before", accepted_referrals)

    for node in cluster.nodes:
        cluster.kill_node(node.node_id)
    time.sleep(DOWN_S)
    cluster.restart_nodes([node.node_id for node in cluster.nodes])
    after_kafka = _flows_end_to_end(network, reliability_inbox, "after-kafka", accepted_referrals)

    reliability_postgres.restart("immediate")
    after_database = _flows_end_to_end(network, reliability_inbox, "after-db", accepted_referrals)

    gone = [name for name in network.process_names if not network.is_running(name)]
    assert not gone, f"processes exited instead of recovering: {gone}"
    assert {name: network.restarts(name) for name in network.process_names} == restarts  # nobody restarted them
    consistency = check_network_consistent(network, reliability_inbox, accepted_referrals, tmp_path)
    print(f"end to end: {baseline:.1f}s before, {after_kafka:.1f}s after the broker restart, "
          f"{after_database:.1f}s after the database restart; {consistency}")
