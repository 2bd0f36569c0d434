"""kill -9 under steady load: a randomly chosen edge or worker, at random moments, 50 times, each restarted.

While referrers submit referrals (retrying a cut call with the same idempotency key until it is answered OK)
and providers accept their offers, the test SIGKILLs a process drawn from the eight (four edges, four
workers) every 0.2-1.2 s and starts it again at once, without waiting for it to be ready (so the next kill may
strike a process still starting). Then every process must become ready again by itself, the load must finish,
and the end state must hold (tests/reliability/support.py, ``check_network_consistent``): every OK submission
in exactly one referral, every committed event in the ledger exactly once, every notice delivered once, the
auditor's replay clean.
"""

from __future__ import annotations

import collections
import random
import time
from pathlib import Path

import pytest

from deploy.local.inbox import PartnerInbox
from deploy.local.network import LocalNetwork
from tests.reliability.support import SUBMIT_DEADLINE_S, SteadyLoad, check_network_consistent

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

KILLS = 50
PER_REFERRER = 25


def test_kill9_random_edges_and_workers_under_load_loses_and_duplicates_nothing(
        reliability_network: LocalNetwork, reliability_inbox: PartnerInbox, rng: random.Random,
        tmp_path: Path, accepted_referrals: set[str]) -> None:
    network = reliability_network
    killed: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    with SteadyLoad(network, per_referrer=PER_REFERRER, pause_s=0.5, label="kill9") as load:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.2, 1.2))
            victim = rng.choice(network.process_names)
            network.kill(victim)
            network.restart(victim, wait=False)
            killed[victim] += 1
        network.wait_ready(timeout_s=120.0)  # every process recovers by itself once the faults stop
        chaos_s = time.monotonic() - started
        assert load.submissions_done(SUBMIT_DEADLINE_S), "the referrers did not get all their answers"
        result = load.stop()
    accepted_referrals.update(result.accepted.values())
    assert not result.errors, result.errors
    assert len(result.accepted) == PER_REFERRER * len(load.routes)
    consistency = check_network_consistent(network, reliability_inbox, accepted_referrals, tmp_path)
    print(f"{sum(killed.values())} kills in {chaos_s:.0f}s ({dict(sorted(killed.items()))}); "
          f"{len(result.accepted)} submissions OK ({result.replayed} answered by an idempotent replay), "
          f"{len(result.accepted_handoffs)} offers accepted, failed calls retried {dict(result.failed_calls)}; "
          f"{consistency}")
