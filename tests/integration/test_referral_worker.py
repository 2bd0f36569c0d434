"""The referral worker as it runs: ``nameko run services.referral.worker`` against real Kafka.

What is real: Apache Kafka (the session's broker), a ``network init`` network, intake's events sealed and
signed as ``svc:intake`` by an EventStore and published by the OutboxRelay, the worker process with its
Kafka entrypoint, dedupe, dead-letter topic and expiry timer, and a migrated SQLite database it shares with
this test. What is replaced: nothing; only the topic and consumer group are the test's own
(``REFERRAL_WORKER_INTAKE_TOPIC``, ``REFERRAL_WORKER_GROUP``), so a referral network running in the same
session never sees these events, and the psychosocial deadline is 1 s so the timer has work to do.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.orm import Session

from services.core.database import create_engine
from services.core.envelope import EnvelopeSigner, Sealer
from services.core.events.streams import subject_stream
from services.core.eventstore import EventStore, unit_of_work
from services.core.eventstore.schema import events, outbox, processed_events
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.identity.keystore import load_org_signing_key
from services.core.identity.network import NetworkCreated, init_network
from services.core.keyvault.routing_keys import load_routing_keys
from services.core.messaging.relay import OutboxRelay
from services.core.messaging.topics import dead_letter_topic, ensure_topics
from services.core.migrations import upgrade
from services.core.runtime.dead_letter import header_map
from services.referral.adapters.database import migrate
from services.referral.adapters.tables import handoffs
from tests.integration.support.events import read_all
from tests.integration.support.nameko_process import ROOT, NamekoProcess, wait_until, write_config
from tests.unit.referral_support import SubjectFeed, intake_event_store, sealed_intake_event

pytestmark = pytest.mark.integration
SERVICE = "services.referral.worker"


class ReferralWorkerProcess(NamekoProcess):
    """``nameko run services.referral.worker`` (the support class runs the effects service)."""

    def start(self) -> ReferralWorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nameko", "run", "--config", str(self.config), SERVICE],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> NetworkCreated:
    return init_network(tmp_path_factory.mktemp("referral-worker-it") / "network")


@pytest.fixture
def topics(kafka_bootstrap: str) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:10]
    topic, group = f"referralnet.intake-test-{suffix}.events.v1", f"referral-worker-test-{suffix}"
    ensure_topics(kafka_bootstrap, [topic, dead_letter_topic(group)], partitions=3, replication_factor=1,
                  min_insync_replicas=1)
    return topic, group


@pytest.fixture
def worker(tmp_path: Path, network: NetworkCreated, kafka_bootstrap: str,
           topics: tuple[str, str]) -> Iterator[tuple[ReferralWorkerProcess, sa.Engine]]:
    url = f"sqlite+pysqlite:///{tmp_path / 'referral.db'}"
    migrate(url)
    config = write_config(tmp_path / "referral-worker.json", {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DATABASE_URL": url, "NETWORK_DIR": str(network.layout.root),
        "EVENT_STORE_SERVICE": "referral", "OFFER_DEADLINES": "psychosocial=1s",
        "OFFER_EXPIRY_INTERVAL_SECONDS": 0.2, "max_workers": 4})
    topic, group = topics
    process = ReferralWorkerProcess("referral-worker", config, {
        "REFERRAL_WORKER_INTAKE_TOPIC": topic, "REFERRAL_WORKER_GROUP": group}, tmp_path / "referral-worker.log")
    engine = create_engine(url)
    try:
        yield process.start(), engine
    finally:
        process.stop()
        engine.dispose()


class IntakeOutbox:
    """Intake's side for the test: an event store signed as ``svc:intake``, its outbox relayed to Kafka."""

    def __init__(self, folder: Path, network: NetworkCreated, bootstrap: str, topic: str,
                 store: EventStore | None = None) -> None:
        url = f"sqlite+pysqlite:///{folder / 'intake.db'}"
        upgrade(url)
        self.engine = create_engine(url)
        self.keys = load_routing_keys(network.layout.root)
        self.store = store or intake_event_store(network.layout.root, topic)
        self.relay = OutboxRelay(self.engine, bootstrap)

    def publish(self, subject_id: str, messages: list[Message], occurred_at: int) -> None:
        stream = subject_stream(subject_id)
        with unit_of_work(self.engine) as session:
            version = self.store.version(session, stream)
            self.store.append(session, stream, version,
                              [sealed_intake_event(message, self.keys, occurred_at) for message in messages])
        while self.relay.publish_pending():
            pass

    def close(self) -> None:
        self.relay.close(timeout_s=10)
        self.engine.dispose()


def handoff_states(engine: sa.Engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        return sorted(session.execute(sa.select(handoffs.c.provider_org, handoffs.c.state)).all())


def outbox_types(engine: sa.Engine) -> list[str]:
    query = sa.select(events.c.event_type).join(outbox, outbox.c.event_position == events.c.position).order_by(
        outbox.c.id)
    with Session(engine) as session:
        return list(session.execute(query).scalars())


def test_intake_events_on_kafka_become_offers_and_the_timer_expires_the_psychosocial_one(
        tmp_path, network, kafka_bootstrap, topics, worker):
    process, engine = worker
    topic, group = topics
    intake = IntakeOutbox(tmp_path, network, kafka_bootstrap, topic)
    feed = SubjectFeed()
    consents = [message for _, message in feed.provider_consents()]
    _, submission = feed.submission(consent_ids=[consent.consent_id for consent in consents])
    try:
        intake.publish(feed.subject_id, [*consents, submission], feed.clock())
    finally:
        intake.close()

    wait_until(lambda: ("leg-aqp-01", "offered") in handoff_states(engine), 60, "the offers", (process,))
    wait_until(lambda: ("psi-lim-01", "expired") in handoff_states(engine), 30,
               "both psychosocial offers to expire (1 s deadline, 0.2 s timer)", (process,))
    assert handoff_states(engine) == [("alb-mdd-01", "offered"), ("leg-aqp-01", "offered"),
                                      ("psi-cus-01", "expired"), ("psi-lim-01", "expired")]
    assert outbox_types(engine) == ["ReferralOpened", "HandoffOffered", "HandoffOffered", "HandoffOffered",
                                    "HandoffExpired", "HandoffOffered", "HandoffExpired", "ReferralEscalated"]
    with Session(engine) as session:
        claimed = session.execute(sa.select(sa.func.count()).select_from(processed_events)
                                  .where(processed_events.c.consumer == group)).scalar_one()
    assert claimed == len(consents) + 1  # each intake event applied once, its dedupe row in the same commit
    assert process.terminate() == 0


def test_an_event_not_produced_by_intake_goes_to_the_dead_letter_topic_and_the_next_one_is_applied(
        tmp_path, network, kafka_bootstrap, topics, worker):
    process, engine = worker
    topic, group = topics
    impostor_signer = EnvelopeSigner("pol-mdd-01", "pol-mdd-01#sig-1", load_org_signing_key(network.layout.root,
                                                                                             "pol-mdd-01"))
    impostor = EventStore(Sealer(impostor_signer), "pol-mdd-01", "intake", "pol-mdd-01#sig-1", topic)
    forged, genuine = SubjectFeed(), SubjectFeed()
    forged_submission = forged.submission(needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE)])[1]
    (tmp_path / "impostor").mkdir()
    fake = IntakeOutbox(tmp_path / "impostor", network, kafka_bootstrap, topic, store=impostor)
    real = IntakeOutbox(tmp_path, network, kafka_bootstrap, topic)
    consent = genuine.consent(role=vocab.ORG_ROLE_SHELTER)[1]
    real_submission = genuine.submission(needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE)])[1]
    try:
        fake.publish(forged.subject_id, [forged_submission], forged.clock())
        real.publish(genuine.subject_id, [consent, real_submission], genuine.clock())
    finally:
        fake.close()
        real.close()

    wait_until(lambda: handoff_states(engine) == [("alb-mdd-01", "offered")], 60, "the genuine offer", (process,))
    [letter] = read_all(kafka_bootstrap, dead_letter_topic(group), expected=1, timeout_s=30)
    assert header_map(letter.headers)["reason"] == "unexpected_producer"
    with Session(engine) as session:
        referrals = session.execute(sa.select(sa.func.count()).select_from(handoffs)).scalar_one()
    assert referrals == 1
    assert process.terminate() == 0
