"""Event-to-webhook latency of notify's HANDOFF_OFFERED notices, through the whole network.

    python -m bench.notify [--rate 10] [--seconds 20] [--warmup 3] [--backends postgres,sqlite] [--regions 1]

For each database backend (PostgreSQL first, unsuffixed; then SQLite, suffixed ``_sqlite``) it starts its
own :class:`deploy.local.network.LocalNetwork` (every service, edges and nameko workers, as real processes;
mTLS gRPC) on the local stack, as bench.referral does, with a :class:`deploy.local.inbox.PartnerInbox` on
127.0.0.1: the shelters' webhooks point at it (set in the signed directory before the processes start), and
it verifies every signature as a partner would. pol-mdd-01 submits adult referrals with one shelter need
through intake's gRPC edge (bench.referral's submitter), open loop at ``--rate`` per second for
``--seconds`` after a warm-up; the referral worker offers each to a shelter, and notify sends the shelter a
signed webhook.

Per notice: the inbox's wall-clock time of receipt minus the HandoffOffered event's ``occurred_at`` (the
notice's ``occurred_at_unix_micros``): the referral service's commit, its outbox relay, Kafka, notify's
handler and dispatcher, and the HTTP POST (the same machine's clock on both ends). Only the measured phase's
referrals count; a redelivery is not a second notice. Prints one table and writes bench/results/notify.json:
``notify_p50_ms``, ``notify_p99_ms``, ``notify_max_ms``, the notices measured and the rate they arrived at.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.referral import (
    BACKENDS,
    SHELTERS,
    Submitter,
    _database,
    _ids,
    add_backends_argument,
    offered_load,
    parsed_backends,
    per_backend,
    percentile,
)
from bench.report import report
from deploy.local.inbox import WEBHOOK, PartnerInbox, ReceivedNotice
from deploy.local.network import LocalNetwork
from services.core.generated.referralnet.notify.v1 import notify_pb2
from services.core.identity.records import NotifyEndpoints
from services.core.identity.webhook_secrets import load_webhook_secrets

NOTICE_WAIT_S = 180.0
POLL_S = 0.2


@dataclass(frozen=True)
class Plan:
    """What to run: the offered rate and how long, after a warm-up at the same rate."""

    rate: float = 10.0
    seconds: float = 20.0
    warmup_s: float = 3.0
    regions: int = 1


def offer_notices(inbox: PartnerInbox) -> dict[str, tuple[ReceivedNotice, notify_pb2.Notice]]:
    """The first verified HANDOFF_OFFERED webhook of each referral, by referral id."""
    found: dict[str, tuple[ReceivedNotice, notify_pb2.Notice]] = {}
    for received in inbox.unique():
        if received.channel != WEBHOOK:
            continue
        notice = received.notice()
        if notice.notice_type == notify_pb2.NOTICE_TYPE_HANDOFF_OFFERED:
            found.setdefault(notice.referral_id, (received, notice))
    return found


def wait_notified(inbox: PartnerInbox, referral_ids: list[str], phase: str,
                  timeout_s: float = NOTICE_WAIT_S) -> dict[str, tuple[ReceivedNotice, notify_pb2.Notice]]:
    """The offer notices once every referral has one; RuntimeError naming the missing ones at the deadline.

    Polls a copy of what arrived (never holding the inbox's lock while reading it, which would delay receipts).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        found = offer_notices(inbox)
        missing = [referral_id for referral_id in referral_ids if referral_id not in found]
        if not missing:
            return {referral_id: found[referral_id] for referral_id in referral_ids}
        if time.monotonic() > deadline:
            msg = (f"{phase}: {len(missing)} of {len(referral_ids)} referrals got no HANDOFF_OFFERED webhook "
                   f"within {timeout_s:.0f}s: {missing[:5]}")
            raise RuntimeError(msg)
        time.sleep(POLL_S)


def measure(network: LocalNetwork, inbox: PartnerInbox, plan: Plan) -> dict[str, float]:
    """The warm-up, then the measured phase, on a running network."""
    shelters = SHELTERS[:plan.regions]
    submitter = Submitter(network, [region for region, _ in shelters])
    wait_notified(inbox, _ids(offered_load(submitter, plan.rate, plan.warmup_s)), "warm-up")
    measured = wait_notified(inbox, _ids(offered_load(submitter, plan.rate, plan.seconds)), "measured phase")
    latencies = sorted((received.received_at - notice.occurred_at_unix_micros / 1e6) * 1000
                       for received, notice in measured.values())
    arrivals = sorted(received.received_at for received, _ in measured.values())
    span_s = arrivals[-1] - arrivals[0]
    return {
        "notify_p50_ms": round(statistics.median(latencies), 1),
        "notify_p99_ms": round(percentile(latencies, 0.99), 1),
        "notify_max_ms": round(latencies[-1], 1),
        "notify_notices": len(latencies),
        "notify_webhooks_per_s": round((len(arrivals) - 1) / span_s, 1) if span_s > 0 else 0.0,
    }


def run_backend(plan: Plan, bootstrap: str, folder: Path, backend: str, network_dir: Path) -> dict[str, float]:
    """One network on ``backend`` (postgres or sqlite) with the shelters' webhooks at an inbox, measured, stopped."""
    shelters = [org_id for _, org_id in SHELTERS[:plan.regions]]
    with PartnerInbox() as inbox, _database(folder, backend) as postgres_url:
        endpoints = {org_id: NotifyEndpoints(webhook_url=inbox.webhook_url(org_id)) for org_id in shelters}
        with LocalNetwork(folder / "network", bootstrap, postgres_url=postgres_url, network_dir=network_dir,
                          notify_endpoints=endpoints) as network:
            inbox.set_secrets(load_webhook_secrets(network.network_dir))
            return measure(network, inbox, plan)


def run(plan: Plan, backends: tuple[str, ...] = BACKENDS) -> dict[str, float]:
    """Start Kafka (unless named), then each backend's network in turn; the figures, PostgreSQL unsuffixed."""
    figures = per_backend("notify", backends, lambda *where: run_backend(plan, *where))
    figures |= {"notify_offered_rate_per_s": plan.rate, "notify_measured_seconds": plan.seconds,
                "notify_regions": plan.regions}
    return figures


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=10.0, help="offered referrals per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the measured phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds at the same rate before measuring")
    parser.add_argument("--regions", type=int, choices=(1, 2, 3), default=1,
                        help="departments (one shelter, one webhook each)")
    add_backends_argument(parser)
    args = parser.parse_args()
    plan = Plan(rate=args.rate, seconds=args.seconds, warmup_s=args.warmup, regions=args.regions)
    report("notify", run(plan, parsed_backends(parser, args.backends)))


if __name__ == "__main__":
    main()
