"""The notify worker as it runs: ``nameko run services.notify.worker`` against real Kafka, a real webhook receiver
and a real SMTP server.

What is real: Apache Kafka (the session's broker), a ``network init`` network whose organisations got endpoints
with ``network endpoints`` (signed directory, webhook secrets), referral's events sealed and signed as
``svc:referral`` by an EventStore and published by the OutboxRelay, the worker process (Kafka entrypoint,
dedupe, dead-letter topic, reminder and dispatch timers, the GreenPool of sends, requests and smtplib), a
migrated database it shares with this test (a SQLite file, then a PostgreSQL database), and PartnerInbox
(deploy/local/inbox.py): an HTTP server verifying each webhook's signature with the organisation's own copy of
its secret, and an aiosmtpd server, both on 127.0.0.1. "Down" is real too: the inbox stops listening
(connections refused) or the endpoint is a port nobody listens on; a crash is a real SIGKILL. What is replaced:
nothing; only the topics and consumer groups are the test's own (``NOTIFY_WORKER_*``), so a network running in
the same session never sees these events.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.orm import Session

from deploy.local.inbox import PartnerInbox
from deploy.local.process import free_ports
from services.core.database import create_engine
from services.core.envelope import EnvelopeSigner, Sealer
from services.core.eventstore import EventStore, NewEvent, unit_of_work
from services.core.eventstore.schema import events, outbox, processed_events
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.notify.v1 import notify_pb2
from services.core.identity.endpoints import set_notify_endpoints
from services.core.identity.keystore import load_service_signing_key
from services.core.identity.network import NetworkCreated, init_network
from services.core.identity.webhook_secrets import org_webhook_secret_path, read_webhook_secret
from services.core.keyvault.routing_keys import load_routing_keys
from services.core.messaging.relay import OutboxRelay
from services.core.messaging.topics import dead_letter_topic, ensure_topics
from services.core.migrations import upgrade
from services.core.runtime.dead_letter import header_map
from services.notify.adapters.database import migrate
from services.notify.adapters.tables import deliveries, delivery_attempts, notify_consents
from tests.integration.database_backends import BACKENDS
from tests.integration.support.events import read_all
from tests.integration.support.nameko_process import ROOT, NamekoProcess, wait_until, write_config
from tests.unit.notify_support import ReferralFeed, sealed_referral_event
from tests.unit.referral_support import Clock, SubjectFeed, intake_event_store, sealed_intake_event

pytestmark = pytest.mark.integration
SERVICE = "services.notify.worker"
UNREACHABLE = ("alb-cus-01",)  # its webhook is a port nobody listens on: every attempt is refused
FAST_GROUP_TIMEOUTS = {"session_timeout_ms": 6_000, "heartbeat_interval_ms": 1_000}
RETRY_FAST = {"NOTIFY_RETRY_BASE_SECONDS": 0.2, "NOTIFY_RETRY_CAP_SECONDS": 0.5,
              "NOTIFY_DISPATCH_INTERVAL_SECONDS": 0.2, "NOTIFY_SEND_TIMEOUT_SECONDS": 2}


class NotifyWorkerProcess(NamekoProcess):
    """``nameko run services.notify.worker``."""

    def start(self) -> NotifyWorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nameko", "run", "--config", str(self.config), SERVICE],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self) -> int:
        """SIGKILL the whole process group, as a crash would; the exit status."""
        os.killpg(self.pid, signal.SIGKILL)
        return self.wait_exit(30)


@dataclass
class Partners:
    """The network, and the inbox its partners' endpoints point at."""

    network: NetworkCreated
    inbox: PartnerInbox


@pytest.fixture(scope="module")
def partners(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Partners]:
    network = init_network(tmp_path_factory.mktemp("notify-worker-it") / "network")
    root = network.layout.root
    with PartnerInbox() as inbox:
        set_notify_endpoints(root, "alb-mdd-01", webhook_url=inbox.webhook_url("alb-mdd-01"),
                             email=inbox.email_address("alb-mdd-01"))
        set_notify_endpoints(root, "coo-lim-01", webhook_url=inbox.webhook_url("coo-lim-01"))
        [closed] = free_ports(1)
        set_notify_endpoints(root, "alb-cus-01", webhook_url=f"http://127.0.0.1:{closed}/hooks/alb-cus-01")
        inbox.set_secrets({org: read_webhook_secret(org_webhook_secret_path(root, org))  # the orgs' own copies
                           for org in ("alb-mdd-01", "coo-lim-01", *UNREACHABLE)})
        yield Partners(network, inbox)


@dataclass
class Run:
    """This test's topics, database and worker processes."""

    tmp_path: Path
    partners: Partners
    bootstrap: str
    url: str
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    processes: list[NotifyWorkerProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.referral_topic = f"referralnet.referral-test-{self.suffix}.events.v1"
        self.intake_topic = f"referralnet.intake-test-{self.suffix}.events.v1"
        migrate(self.url)
        self.engine = create_engine(self.url)
        ensure_topics(self.bootstrap, [self.referral_topic, self.intake_topic], partitions=3, replication_factor=1,
                      min_insync_replicas=1)

    def worker(self, name: str, group: str | None = None, **settings: Any) -> NotifyWorkerProcess:
        group = group or f"notify-worker-test-{self.suffix}"
        ensure_topics(self.bootstrap, [dead_letter_topic(group)], partitions=1, replication_factor=1,
                      min_insync_replicas=1)
        inbox = self.partners.inbox
        config = write_config(self.tmp_path / f"{name}.json", {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "DATABASE_URL": self.url,
            "NETWORK_DIR": str(self.partners.network.layout.root), "EVENT_STORE_SERVICE": "notify",
            "KAFKA_CONSUMER_OPTIONS": FAST_GROUP_TIMEOUTS, "NOTIFY_SMTP_HOST": inbox.smtp_host,
            "NOTIFY_SMTP_PORT": inbox.smtp_port, "max_workers": 4, **settings})
        process = NotifyWorkerProcess(name, config, {
            "NOTIFY_WORKER_GROUP": group, "NOTIFY_WORKER_REFERRAL_TOPIC": self.referral_topic,
            "NOTIFY_WORKER_INTAKE_TOPIC": self.intake_topic}, self.tmp_path / f"{name}.log")
        self.processes.append(process)
        return process.start()

    def publish(self, referral_id: str, messages: list[Message], *, store: EventStore | None = None) -> list[str]:
        """Append ``messages`` to ``referral-<referral_id>`` as referral (or ``store``) and relay them to Kafka;
        their event ids."""
        root = self.partners.network.layout.root
        if store is None:
            signer = EnvelopeSigner("svc:referral", "svc:referral#sig-1", load_service_signing_key(root, "referral"))
            store = EventStore(Sealer(signer), "svc:referral", "referral", "svc:referral#sig-1", self.referral_topic)
        keys = load_routing_keys(root)
        new = [sealed_referral_event(message, keys, time.time_ns() // 1000) for message in messages]
        self._append(f"referral-{referral_id}", new, store)
        return [event.event_id for event in new]

    def _append(self, stream: str, new: list[NewEvent], store: EventStore) -> None:
        """Append to ``stream`` in a producer's own database and relay its outbox to Kafka."""
        folder = self.tmp_path / f"producer-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        url = f"sqlite+pysqlite:///{folder / 'producer.db'}"
        upgrade(url)
        engine = create_engine(url)
        relay = OutboxRelay(engine, self.bootstrap)
        try:
            with unit_of_work(engine) as session:
                store.append(session, stream, store.version(session, stream), new)
            while relay.publish_pending():
                pass
        finally:
            relay.close(timeout_s=10)
            engine.dispose()

    def publish_intake(self, subject_id: str, messages: list[Message], store: EventStore) -> None:
        """Append ``messages`` to ``subject-<subject_id>`` with intake's ``store`` and relay them to Kafka."""
        keys = load_routing_keys(self.partners.network.layout.root)
        self._append(f"subject-{subject_id}", [sealed_intake_event(m, keys, time.time_ns() // 1000)
                                               for m in messages], store)

    def consents(self) -> list[str]:
        with Session(self.engine) as session:
            return list(session.execute(sa.select(notify_consents.c.consent_id)).scalars())

    def rows(self, event_id: str) -> list[Any]:
        with Session(self.engine) as session:
            return list(session.execute(sa.select(deliveries).where(deliveries.c.event_id == event_id)
                                        .order_by(deliveries.c.channel)))

    def attempts(self, delivery_id: str) -> list[str]:
        with Session(self.engine) as session:
            return list(session.execute(
                sa.select(delivery_attempts.c.outcome).where(delivery_attempts.c.delivery_id == delivery_id)
                .order_by(delivery_attempts.c.attempt)).scalars())

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        self.engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The worker's database: a SQLite file, or a PostgreSQL database of its own (the URL goes to another process)."""
    if request.param == "sqlite":
        yield f"sqlite+pysqlite:///{tmp_path / 'notify.db'}"
        return
    server: str = request.getfixturevalue("postgres_url")
    name = "notify_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def run(tmp_path: Path, partners: Partners, kafka_bootstrap: str, database_url: str) -> Iterator[Run]:
    made = Run(tmp_path, partners, kafka_bootstrap, database_url)
    try:
        yield made
    finally:
        made.close()


def offer(provider: str, region: vocab.Region = vocab.REGION_MADRE_DE_DIOS) -> tuple[ReferralFeed, Any]:
    """A new referral's HandoffOffered to ``provider``, made now (2 h to answer)."""
    feed = ReferralFeed(clock=Clock(time.time_ns() // 1000), region=region)
    return feed, feed.offered(provider)[1]


def received(inbox: PartnerInbox, channel: str, delivery_id: str) -> list[Any]:
    return [notice for notice in inbox.notices() if notice.channel == channel and notice.delivery_id == delivery_id]


def test_an_offer_brings_one_signed_webhook_and_one_email_at_once_though_the_timer_waits_an_hour(run):
    inbox = run.partners.inbox
    worker = run.worker("notify-worker", NOTIFY_DISPATCH_INTERVAL_SECONDS=3600)  # only the wake-up dispatches
    feed, handoff = offer("alb-mdd-01")
    [event_id] = run.publish(feed.referral_id, [handoff])

    wait_until(lambda: len(run.rows(event_id)) == 2 and {r.status for r in run.rows(event_id)} == {"delivered"},
               60, "the offer's webhook and e-mail to be delivered", (worker,))
    webhook_row, email_row = run.rows(event_id)
    assert (webhook_row.channel, email_row.channel) == (notify_pb2.CHANNEL_WEBHOOK, notify_pb2.CHANNEL_EMAIL)
    [hook] = received(inbox, "webhook", webhook_row.delivery_id)
    assert hook.verified and hook.org_id == "alb-mdd-01"  # the inbox checked the HMAC with the org's own copy
    notice = hook.notice()
    assert (notice.notice_type, notice.reference, notice.event_id) == (
        notify_pb2.NOTICE_TYPE_HANDOFF_OFFERED, handoff.handoff_id, event_id)
    assert handoff.subject_id not in hook.body.decode()
    [mail] = received(inbox, "email", email_row.delivery_id)
    assert mail.email()["Message-ID"] == f"<{email_row.delivery_id}@notify.referralnet>"
    assert handoff.handoff_id in mail.text() and handoff.subject_id not in mail.text()
    assert worker.terminate() == 0


def test_a_receiver_down_for_a_while_gets_its_notice_exactly_once_when_it_comes_back(run):
    inbox = run.partners.inbox
    inbox.pause(webhook=True, email=False)
    try:
        worker = run.worker("notify-worker", NOTIFY_MAX_ATTEMPTS=100, **RETRY_FAST)
        feed, handoff = offer("alb-mdd-01")
        [event_id] = run.publish(feed.referral_id, [handoff])
        wait_until(lambda: len(run.rows(event_id)) == 2 and run.rows(event_id)[0].attempts >= 3, 60,
                   "three refused attempts at the webhook", (worker,))
    finally:
        inbox.resume()
    webhook_row = run.rows(event_id)[0]
    assert set(run.attempts(webhook_row.delivery_id)[:3]) == {"connection_refused"}
    wait_until(lambda: run.rows(event_id)[0].status == "delivered", 60, "the webhook once the receiver is back",
               (worker,))
    assert len(received(inbox, "webhook", webhook_row.delivery_id)) == 1
    assert [a.status for a in inbox.attempts() if a.delivery_id == webhook_row.delivery_id] == [200]
    assert run.attempts(webhook_row.delivery_id)[-1] == "delivered"
    assert run.rows(event_id)[1].status == "delivered"  # the e-mail went out meanwhile, once
    assert len(received(inbox, "email", run.rows(event_id)[1].delivery_id)) == 1
    assert worker.terminate() == 0


def test_a_worker_killed_mid_retry_and_restarted_still_delivers_exactly_once(run):
    inbox = run.partners.inbox
    inbox.pause(webhook=True, email=False)
    try:
        first = run.worker("notify-worker-1", NOTIFY_MAX_ATTEMPTS=100, **RETRY_FAST)
        feed, handoff = offer("alb-mdd-01")
        [event_id] = run.publish(feed.referral_id, [handoff])
        wait_until(lambda: len(run.rows(event_id)) == 2 and run.rows(event_id)[0].attempts >= 2, 60,
                   "two refused attempts at the webhook", (first,))
        assert first.kill() == -signal.SIGKILL
    finally:
        inbox.resume()
    # The restart reads the topic under a new consumer group: the offer is consumed and applied once more (its
    # dedupe claim is per consumer), and the unique (notice key, channel, endpoint) still allows one delivery.
    second = run.worker("notify-worker-2", group=f"notify-worker-restart-{run.suffix}", NOTIFY_MAX_ATTEMPTS=100,
                        **RETRY_FAST)
    with Session(run.engine) as session:
        def claims() -> int:
            return int(session.execute(sa.select(sa.func.count()).select_from(processed_events)
                                       .where(processed_events.c.event_id == event_id)).scalar_one())
        wait_until(lambda: claims() == 2 and run.rows(event_id)[0].status == "delivered", 60,
                   "the restarted worker to re-read the offer and deliver the webhook", (second,))
    rows = run.rows(event_id)
    assert len(rows) == 2 and {row.status for row in rows} == {"delivered"}
    assert len(received(inbox, "webhook", rows[0].delivery_id)) == 1
    assert len(received(inbox, "email", rows[1].delivery_id)) == 1
    webhooks = [n for n in inbox.notices() if n.channel == "webhook"]
    assert len([n for n in webhooks if n.notice().reference == handoff.handoff_id]) == 1
    assert second.terminate() == 0


def test_an_undeliverable_notice_fails_after_the_bound_is_signed_as_an_event_and_reaches_the_coordinator(run):
    inbox = run.partners.inbox
    worker = run.worker("notify-worker", NOTIFY_MAX_ATTEMPTS=2, **RETRY_FAST)
    feed, handoff = offer("alb-cus-01", vocab.REGION_CUSCO)
    [event_id] = run.publish(feed.referral_id, [handoff])

    wait_until(lambda: len(run.rows(event_id)) == 1 and run.rows(event_id)[0].status == "failed", 60,
               "the unreachable webhook to fail for good", (worker,))
    [failed] = run.rows(event_id)
    assert run.attempts(failed.delivery_id) == ["connection_refused", "connection_refused"]
    with Session(run.engine) as session:
        [(stream, event_type)] = session.execute(sa.select(events.c.stream_id, events.c.event_type)
                                                 .join(outbox, outbox.c.event_position == events.c.position))
    assert (stream, event_type) == (f"delivery-{failed.delivery_id}", "NoticeUndeliverable")

    def told(notices: list[Any]) -> bool:
        return any(n.org_id == "coo-lim-01" and n.notice().reference == handoff.handoff_id for n in notices)
    [escalation] = [n for n in inbox.wait_for(told, 60) if n.org_id == "coo-lim-01"
                    and n.notice().reference == handoff.handoff_id]
    assert escalation.verified and escalation.notice().notice_type == notify_pb2.NOTICE_TYPE_DELIVERY_FAILED
    assert worker.terminate() == 0


def test_each_topic_is_taken_only_from_its_own_service_and_anything_else_is_dead_lettered(run):
    worker = run.worker("notify-worker", **RETRY_FAST)
    root = run.partners.network.layout.root
    impostor = intake_event_store(root, run.referral_topic)  # intake's genuine key, on referral's topic
    forged_feed, forged = offer("alb-mdd-01")
    run.publish(forged_feed.referral_id, [forged], store=impostor)
    feed, genuine = offer("alb-mdd-01")
    [event_id] = run.publish(feed.referral_id, [genuine])
    subject = SubjectFeed()
    consent = subject.consent(org_id="alb-mdd-01")[1]
    intake_side = intake_event_store(root, run.intake_topic)
    run.publish_intake(subject.subject_id, [consent], intake_side)

    wait_until(lambda: len(run.rows(event_id)) == 2, 60, "the genuine offer's deliveries", (worker,))
    wait_until(lambda: run.consents() == [consent.consent_id], 60, "intake's consent", (worker,))
    [letter] = read_all(run.bootstrap, dead_letter_topic(f"notify-worker-test-{run.suffix}"), expected=1,
                        timeout_s=30)
    assert header_map(letter.headers)["reason"] == "unexpected_producer"
    with Session(run.engine) as session:
        assert session.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar_one() == 2
    assert worker.terminate() == 0
