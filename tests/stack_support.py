"""Starting what the suites run against, once: a local Kafka, the partners' inbox, the whole network.

The session fixtures (tests/conftest.py, tests/e2e) and the suites with servers of their own
(tests/security, tests/reliability) start the same things the same way: a server that cannot start fails
the run with its log tail (never a skip), and a network must leave no process behind when it stops.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from deploy.local.errors import StackError
from deploy.local.inbox import PartnerInbox
from deploy.local.kafka import KafkaCluster
from deploy.local.network import NETWORK_SERVICES, LocalNetwork, Setting
from deploy.local.walkthrough import inbox_endpoints
from services.core.identity.webhook_secrets import load_webhook_secrets

InboxT = TypeVar("InboxT", bound=PartnerInbox)


@contextmanager
def running_kafka(folder: Path, size: int, what: str) -> Iterator[KafkaCluster]:
    """A local KRaft cluster of ``size`` nodes in ``folder``, stopped afterwards; the run fails if it cannot start."""
    cluster = KafkaCluster(folder, size=size)
    try:
        cluster.start()
    except StackError as exc:
        pytest.fail(f"{what} did not start:\n{exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@contextmanager
def running_inbox(inbox: InboxT) -> Iterator[InboxT]:
    """``inbox`` started (webhook receiver and mail server on 127.0.0.1), stopped afterwards."""
    inbox.start()
    try:
        yield inbox
    finally:
        inbox.stop()


@contextmanager
def running_network(base: Path, kafka_bootstrap: str, inbox: PartnerInbox, what: str, *,
                    settings: Mapping[str, Mapping[str, Setting]] | None = None, console_spans: bool = False,
                    **network_options: Any) -> Iterator[LocalNetwork]:
    """Every service of the network in ``base``, its notices going to ``inbox`` (each provider's and
    coordinator's webhook and e-mail there; the inbox verifies with their secrets), stopped afterwards, with
    no process left behind. ``console_spans`` prints every process's spans to its log (scanned by tests)."""
    merged: dict[str, dict[str, Setting]] = {service: dict((settings or {}).get(service, {}))
                                             for service in NETWORK_SERVICES}
    for service in NETWORK_SERVICES if console_spans else ():
        merged[service]["OTEL_TRACES_EXPORTER"] = "console"
    merged["notify"] |= {"NOTIFY_SMTP_HOST": inbox.smtp_host, "NOTIFY_SMTP_PORT": inbox.smtp_port}
    network = LocalNetwork(base, kafka_bootstrap, settings=merged, notify_endpoints=inbox_endpoints(inbox),
                           **network_options)
    try:
        network.start()
    except StackError as exc:
        pytest.fail(f"{what} did not start:\n{exc}", pytrace=False)
    # the webhook secrets were written with the endpoints, before the processes started
    inbox.set_secrets(load_webhook_secrets(network.network_dir))
    try:
        yield network
    finally:
        network.stop()
    left = network.leftover_processes()
    assert not left, f"processes of {what} outlived it: {left}"
