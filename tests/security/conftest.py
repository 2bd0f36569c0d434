"""Security-suite fixtures: a private referral network of its own, on a Kafka of its own, for the package.

What is real: everything. An Apache Kafka KRaft broker started for this package alone (``security_kafka``:
the session's broker carries the e2e network, whose topic names and consumer groups are the same as any
network's, and whose audit replay expects a clean ledger, so the records this suite forges never go there);
a freshly initialised development network (CA, organisation certificates, signed directory, routing key);
the edges and nameko workers of intake, referral, audit and notify as real processes
(:class:`deploy.local.network.LocalNetwork`) on SQLite files, so a test can read every byte each service
keeps; the partners' webhook receiver and mail server (``security_inbox``, 127.0.0.1), set as every provider's
and coordinator's endpoints in the signed directory before the processes start. Every process writes its
spans to its log (``OTEL_TRACES_EXPORTER=console``). Every call goes over gRPC with mTLS as the organisation
named by its client certificate. What is replaced: nothing.

The modules share the network; each one works on its own referrals and subjects. Records forged by
test_injection.py stay in this network's topics (and in the reports of its audit service): the other
modules never expect a clean ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy.local.kafka import KafkaCluster
from deploy.local.network import LocalNetwork
from services.core.generated.referralnet.intake.v1 import intake_pb2_grpc
from services.core.generated.referralnet.referral.v1 import referral_pb2_grpc
from tests.e2e.notify_support import RecordingInbox
from tests.e2e.support import Partner
from tests.stack_support import running_inbox, running_kafka, running_network


@pytest.fixture(scope="package")
def security_kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A one-node Kafka for this package alone (its logs are scanned too)."""
    with running_kafka(tmp_path_factory.mktemp("security-kafka"), 1, "the security suite's Kafka broker") as cluster:
        yield cluster


@pytest.fixture(scope="package")
def security_kafka(security_kafka_cluster: KafkaCluster) -> str:
    """Bootstrap servers of the package's own broker."""
    return security_kafka_cluster.bootstrap_servers


@pytest.fixture(scope="package")
def security_inbox() -> Iterator[RecordingInbox]:
    """The partners' webhook receiver and mail server (127.0.0.1) of the private network."""
    with running_inbox(RecordingInbox()) as inbox:
        yield inbox


@pytest.fixture(scope="package")
def security_network(tmp_path_factory: pytest.TempPathFactory, security_kafka: str,
                     security_inbox: RecordingInbox) -> Iterator[LocalNetwork]:
    """The private running network (edges and workers of every service, SQLite) for the package."""
    with running_network(tmp_path_factory.mktemp("security-network"), security_kafka, security_inbox,
                         "the security network", console_spans=True) as network:
        yield network


@pytest.fixture(scope="package")
def org(security_network: LocalNetwork) -> Callable[[str], Partner]:
    """``org("pol-mdd-01")``: that organisation's typed intake and referral stubs over its own mTLS channels."""
    def make(org_id: str) -> Partner:
        return Partner(org_id, intake_pb2_grpc.IntakeServiceStub(security_network.channel(org_id, "intake")),
                       referral_pb2_grpc.ReferralServiceStub(security_network.channel(org_id, "referral")))
    return make


@pytest.fixture(scope="package")
def security_network_dir(security_network: LocalNetwork) -> Path:
    """The private network's folder (CA, keys, directory, routing key)."""
    return security_network.network_dir
