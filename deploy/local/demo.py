"""``make demo``: the network on this machine, driven through its public gRPC APIs as partners would.

Starts Apache Kafka (or uses KAFKA_BOOTSTRAP_SERVERS), the partners' inbox (a webhook receiver and a mail
server on 127.0.0.1, deploy/local/inbox.py, where every provider's and coordinator's notices go), the intake,
referral, audit and notify services (an edge and a worker each) on SQLite files, or on PostgreSQL when
DATABASE_URL is set, runs the walk-through in :mod:`deploy.local.walkthrough` and stops every process it
started, whatever happens. Psychosocial offers
expire after 6 seconds here (48 hours in the default configuration), so the demo can show
an offer lapsing and moving on; audit checkpoints every second. At the end the auditor replays the log
from Kafka and the reports are kept in ``<state>/demo-audit/``.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

from deploy.local.inbox import PartnerInbox
from deploy.local.network import LocalNetwork, Setting
from deploy.local.postgres import external_database_url
from deploy.local.stack import running_kafka
from deploy.local.walkthrough import audit_the_log, inbox_endpoints, run_walkthrough
from services.core.identity.webhook_secrets import load_webhook_secrets

DEMO_SETTINGS: dict[str, dict[str, Setting]] = {
    "referral": {"OFFER_DEADLINES": "psychosocial=6s", "OFFER_EXPIRY_INTERVAL_SECONDS": 1},
    "audit": {"CHECKPOINT_SECONDS": 1},
}


def run_demo(state: Path) -> None:
    """Run the walk-through on a network of its own under ``state``; everything started is stopped."""
    state.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="demo-", dir=state)))
        print("starting Apache Kafka (KRaft) ...", flush=True)
        bootstrap = stack.enter_context(running_kafka(folder / "kafka"))
        inbox = PartnerInbox()
        stack.enter_context(inbox)
        postgres_url = external_database_url()
        print(f"starting intake, referral, audit and notify (edge + worker each; "
              f"{'PostgreSQL' if postgres_url else 'SQLite'} databases) ...", flush=True)
        notify: dict[str, Setting] = {"NOTIFY_SMTP_HOST": inbox.smtp_host, "NOTIFY_SMTP_PORT": inbox.smtp_port}
        settings = {**DEMO_SETTINGS, "notify": notify}
        network = stack.enter_context(LocalNetwork(folder / "network-run", bootstrap, postgres_url=postgres_url,
                                                   settings=settings, notify_endpoints=inbox_endpoints(inbox)))
        inbox.set_secrets(load_webhook_secrets(network.network_dir))
        print(f"network up after {time.monotonic() - started:.1f}s: intake {network.endpoint('intake')}, "
              f"referral {network.endpoint('referral')} (mTLS); partners' webhooks at "
              f"http://127.0.0.1:{inbox.webhook_port}/hooks/<org>, mail at {inbox.smtp_host}:{inbox.smtp_port}\n",
              flush=True)
        run_walkthrough(network, say=lambda line: print(line, flush=True), inbox=inbox)
        audit_the_log(network, bootstrap, state / "demo-audit", say=lambda line: print(line, flush=True))
        print("\nstopping every process the demo started ...", flush=True)
    print(f"demo finished in {time.monotonic() - started:.1f}s")
