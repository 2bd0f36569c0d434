"""End-to-end fixtures: the whole referral network, running, for the session.

What is real: everything. Apache Kafka from the ``kafka_bootstrap`` fixture (a local KRaft broker, or the
cluster named by KAFKA_BOOTSTRAP_SERVERS); PostgreSQL from ``postgres_url`` (one database per service,
created by the launcher; ``E2E_DATABASE=sqlite`` runs on SQLite files instead); a freshly initialised
development network (CA, organisation certificates, signed directory, routing key); the edges and nameko
workers of intake, referral, audit and notify as real processes started by
:class:`deploy.local.network.LocalNetwork`; every call goes over gRPC with mTLS as the organisation named by
its client certificate. The partners' side of notify is real too: every provider and coordinator has a
webhook and an e-mail address at one ``partner_inbox`` (an HTTP receiver verifying signatures and an SMTP
server, both on 127.0.0.1), set in the signed directory before the processes start. Every process writes
its spans to its log (``OTEL_TRACES_EXPORTER=console``), so a test can search them. What is replaced:
nothing. Only configuration is shortened so the expiry test is quick: the psychosocial offer deadline is
``PSYCHOSOCIAL_DEADLINE_S`` seconds and the referral worker looks for expired offers every second.

Tests share the session's network, so each one works on its own referrals and subjects and never assumes
an empty inbox; no test changes what another relies on (see each test module).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy.local.network import LocalNetwork, Setting
from services.core.generated.referralnet.intake.v1 import intake_pb2_grpc
from services.core.generated.referralnet.referral.v1 import referral_pb2_grpc
from services.core.identity.directory import Directory
from services.core.identity.keystore import load_directory
from tests.e2e.notify_support import RecordingInbox
from tests.e2e.support import Partner
from tests.stack_support import running_inbox, running_network

PSYCHOSOCIAL_DEADLINE_S = 5
EXPIRY_INTERVAL_S = 1


@pytest.fixture(scope="session")
def partner_inbox() -> Iterator[RecordingInbox]:
    """The partners' webhook receiver and mail server (127.0.0.1) for the whole e2e session."""
    with running_inbox(RecordingInbox()) as inbox:
        yield inbox


@pytest.fixture(scope="session")
def e2e_network(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, partner_inbox: RecordingInbox,
                request: pytest.FixtureRequest) -> Iterator[LocalNetwork]:
    """The running network (edges and workers of every service) for the whole e2e session."""
    database = os.environ.get("E2E_DATABASE", "postgres")
    if database not in {"postgres", "sqlite"}:
        pytest.fail(f"E2E_DATABASE must be postgres or sqlite, not {database!r}", pytrace=False)
    postgres_url = request.getfixturevalue("postgres_url") if database == "postgres" else None
    base = tmp_path_factory.mktemp("e2e-network")
    referral: dict[str, Setting] = {"OFFER_DEADLINES": f"psychosocial={PSYCHOSOCIAL_DEADLINE_S}s",
                "OFFER_EXPIRY_INTERVAL_SECONDS": EXPIRY_INTERVAL_S}
    with running_network(base, kafka_bootstrap, partner_inbox, "the e2e network", settings={"referral": referral},
                         console_spans=True, postgres_url=postgres_url) as network:
        yield network


@pytest.fixture(scope="session")
def partner(e2e_network: LocalNetwork) -> Callable[[str], Partner]:
    """``partner("pol-mdd-01")``: that organisation's typed stubs over its own mTLS channels."""
    def make(org_id: str) -> Partner:
        return Partner(org_id, intake_pb2_grpc.IntakeServiceStub(e2e_network.channel(org_id, "intake")),
                       referral_pb2_grpc.ReferralServiceStub(e2e_network.channel(org_id, "referral")))
    return make


@pytest.fixture(scope="session")
def directory(e2e_network: LocalNetwork) -> Directory:
    """The network's CA-verified directory (who is who, who serves whom)."""
    return load_directory(e2e_network.network_dir)


@pytest.fixture(scope="session")
def network_dir(e2e_network: LocalNetwork) -> Path:
    """The network folder (what each organisation holds its own keys in)."""
    return e2e_network.network_dir
