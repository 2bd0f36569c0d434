"""The local network with notify, before anything starts: its topics, its processes and their config, and the
organisations' notification endpoints set in the signed directory ahead of the services.

What is real: a ``network init`` network folder (CA, signed directory), ``set_notify_endpoints`` re-signing it,
the worker config files written to disk. Nothing is started: no Kafka, no database, no process (the
end-to-end tests run the network itself).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from deploy.local.network import (
    EDGE_DEFAULT_PORTS,
    EVENT_PRODUCERS,
    NETWORK_SERVICES,
    LocalNetwork,
    network_topic_names,
)
from services.core.identity.errors import UnknownOrganisationError
from services.core.identity.keystore import load_directory
from services.core.identity.network import init_network
from services.core.identity.records import NotifyEndpoints
from services.core.identity.webhook_secrets import load_webhook_secrets, org_webhook_secret_path
from services.core.messaging.topics import dead_letter_topic, events_topic
from services.notify.config import PORT, notify_settings

HOOK = "https://hooks.example.org/referralnet/alb-cus-01"


def test_notify_is_a_service_of_the_network_with_its_topics_and_port() -> None:
    assert "notify" in NETWORK_SERVICES and "notify" in EVENT_PRODUCERS
    assert EDGE_DEFAULT_PORTS["notify"] == PORT == 50054
    topics = network_topic_names()
    assert {events_topic("notify"), dead_letter_topic("notify-worker")} <= set(topics)
    assert len(topics) == len(set(topics)) == 3 + 1 + 4  # three events topics, the checkpoints, four DLQs


def test_notify_runs_an_edge_and_a_nameko_worker_with_its_settings(tmp_path: Path) -> None:
    network = LocalNetwork(tmp_path, "127.0.0.1:9", settings={
        "notify": {"NOTIFY_SMTP_HOST": "127.0.0.1", "NOTIFY_SMTP_PORT": 8025, "NOTIFY_DISPATCH_INTERVAL_SECONDS": 0.2}})
    network._prepare_databases()  # SQLite files: only their folder is made
    network._define_processes()

    assert "notify-edge" in network.process_names and "notify-worker" in network.process_names
    edge, worker = network._processes["notify-edge"], network._processes["notify-worker"]
    assert edge.argv[1:] == ["-m", "services.notify.edge"]
    assert worker.argv[1:4] == ["-m", "nameko", "run"] and worker.argv[-1] == "services.notify.worker"
    config = json.loads(Path(worker.argv[worker.argv.index("--config") + 1]).read_text())
    assert config["EVENT_STORE_SERVICE"] == "notify"
    assert config["DATABASE_URL"] == network.database_url("notify") == edge.env["DATABASE_URL"]
    assert (config["NOTIFY_SMTP_HOST"], config["NOTIFY_SMTP_PORT"]) == ("127.0.0.1", 8025)
    assert (edge.env["NOTIFY_SMTP_PORT"], edge.env["NOTIFY_DISPATCH_INTERVAL_SECONDS"]) == ("8025", "0.2")
    assert network.database_url("notify") != network.database_url("referral")


def test_notices_say_to_act_at_the_referral_edge_this_network_started(tmp_path: Path) -> None:
    network = LocalNetwork(tmp_path, "127.0.0.1:9")
    network._prepare_databases()
    network._define_processes()
    assert "NOTIFY_ACT_AT" not in network._processes["notify-worker"].env  # referral's port is not known yet

    network._ports["referral"] = 40123  # as read from referral's "edge referral listening on" line
    network._define_worker("notify")

    worker = network._processes["notify-worker"]
    config = json.loads(Path(worker.argv[worker.argv.index("--config") + 1]).read_text())
    expected = "127.0.0.1:40123 (referralnet.referral.v1.ReferralService)"
    assert config["NOTIFY_ACT_AT"] == worker.env["NOTIFY_ACT_AT"] == expected
    assert notify_settings(config, environ={}).act_at == expected  # one printable line, as notify requires


def test_an_act_at_in_notifys_settings_wins(tmp_path: Path) -> None:
    network = LocalNetwork(tmp_path, "127.0.0.1:9", settings={"notify": {"NOTIFY_ACT_AT": "referral.example.org:443"}})
    network._prepare_databases()
    network._define_processes()
    network._ports["referral"] = 40123
    network._define_worker("notify")

    assert network._processes["notify-worker"].env["NOTIFY_ACT_AT"] == "referral.example.org:443"


def test_endpoints_are_set_in_the_signed_directory_before_the_services_start(tmp_path: Path) -> None:
    folder = tmp_path / "network"
    init_network(folder)
    before = load_directory(folder).serial
    endpoints = {"alb-cus-01": NotifyEndpoints(webhook_url=HOOK, email="turno@alb-cus-01.example.org"),
                 "ong-lor-01": NotifyEndpoints(email="guardia@ong-lor-01.example.org")}
    network = LocalNetwork(tmp_path, "127.0.0.1:9", network_dir=folder, notify_endpoints=endpoints)

    network._apply_notify_endpoints()

    directory = load_directory(folder)  # verified against the folder's CA
    assert {org.org_id: org.notify for org in directory.organisations if org.notify} == endpoints
    assert directory.serial > before
    secrets = load_webhook_secrets(folder)
    assert set(secrets) == {"alb-cus-01"} and len(secrets["alb-cus-01"]) == 32
    assert not stat.S_IMODE(org_webhook_secret_path(folder, "alb-cus-01").stat().st_mode) & 0o077

    network._apply_notify_endpoints()  # a restart with the same endpoints: nothing changes

    assert load_directory(folder).serial == directory.serial
    assert load_webhook_secrets(folder) == secrets


def test_endpoints_for_an_organisation_not_in_the_directory_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "network"
    init_network(folder)
    network = LocalNetwork(tmp_path, "127.0.0.1:9", network_dir=folder,
                           notify_endpoints={"nobody-01": NotifyEndpoints(email="x@example.org")})

    with pytest.raises(UnknownOrganisationError, match="nobody-01"):
        network._apply_notify_endpoints()
