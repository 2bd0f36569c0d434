"""The intake worker under ``nameko run`` keeps intake_handoffs from referral's events on real Kafka.

What is real: Apache Kafka, PostgreSQL (intake's database, migrated by its branch), a ``nameko run``
subprocess of services.intake.worker (eventlet-patched, as in production), referral's events appended to an
event store signed as ``svc:referral`` with the network folder's key and published by the outbox relay,
and intake's application on the same database. Forged and unknown events are produced straight to the
topic. The consumer group is this test's own (``INTAKE_WORKER_GROUP``) so a network running beside it in
the same Kafka is not disturbed. Every wait has a deadline; the worker is stopped in a ``finally``.
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

from services.core.application import FailedPrecondition
from services.core.envelope import EnvelopeSigner, EventHeader, Sealer, SectionKind, new_event_id, now_micros
from services.core.events.catalogues import REFERRAL_EVENTS
from services.core.eventstore import EventStore, NewEvent, unit_of_work
from services.core.generated.referralnet.consent.v1.consent_pb2 import DataCategory, Purpose
from services.core.generated.referralnet.intake.v1.intake_pb2 import ReleaseKeyRequest
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral_events
from services.core.identity.keystore import load_org_signing_key, load_service_signing_key
from services.core.identity.network import NetworkCreated
from services.core.identity.records import service_owner, signing_key_id
from services.core.keyvault.routing_keys import load_routing_keys
from services.core.messaging.relay import OutboxRelay
from services.core.messaging.topics import dead_letter_topic, ensure_topics, events_topic
from services.core.migrations import upgrade
from services.core.runtime.dead_letter import header_map
from services.intake.adapters.database import migrate
from services.intake.adapters.tables import handoffs
from services.intake.application.context import ReleaseWait
from tests.integration.database_backends import fresh_engine
from tests.integration.support.events import Event, produce, read_all
from tests.integration.support.nameko_process import ROOT, NamekoProcess, wait_until, write_config
from tests.processes import processes_mentioning
from tests.unit.intake_support import (  # noqa: F401 -- fixtures
    POLICE,
    SHELTER,
    Intake,
    handoff_event,
    intake_network_fixture,
    make_intake,
    submission,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TOPIC = events_topic("referral")
FAST_GROUP_TIMEOUTS = {"session_timeout_ms": 6_000, "heartbeat_interval_ms": 1_000}


class IntakeWorkerProcess(NamekoProcess):
    """``python -m nameko run services.intake.worker`` (the support class runs the effects service)."""

    def start(self) -> IntakeWorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nameko", "run", "--config", str(self.config), "services.intake.worker"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self


class ReferralSide:
    """Referral's events as referral's event store seals them (svc:referral's key), published by the relay."""

    def __init__(self, network: Path, url: str, bootstrap: str) -> None:
        upgrade(url)  # the core tables: referral's event store and outbox
        self.engine = sa.create_engine(url)
        owner = service_owner("referral")
        signer = EnvelopeSigner(owner, signing_key_id(owner), load_service_signing_key(network, "referral"))
        self.store = EventStore(Sealer(signer), owner, "referral", signing_key_id(owner), TOPIC)
        self.routing_key = load_routing_keys(network).current()
        self.relay = OutboxRelay(self.engine, bootstrap)

    def publish(self, stream_id: str, *messages: Message) -> list[str]:
        """Append ``messages`` to ``stream_id`` and relay them to Kafka; their event ids."""
        appended = []
        with unit_of_work(self.engine) as session:
            version = self.store.version(session, stream_id)
            new = []
            for message in messages:
                event_type, schema, payload = REFERRAL_EVENTS.encode(message)
                new.append(NewEvent(event_type, schema, {SectionKind.ROUTING: (self.routing_key, payload)}))
            appended = self.store.append(session, stream_id, version, new)
        while self.relay.publish_pending():
            pass
        return [event.event_id for event in appended]

    def close(self) -> None:
        self.relay.close()
        self.engine.dispose()


def forged(network: Path, producer: str, message: Message, event_type: str | None = None) -> Event:
    """A well-signed event on referral's topic from ``producer`` (an org, or ``svc:referral`` with a type
    nobody knows): what a provider claiming its own acceptance, or a newer referral, would send."""
    private_key = (load_service_signing_key(network, producer.removeprefix("svc:")) if producer.startswith("svc:")
                   else load_org_signing_key(network, producer))
    signer = EnvelopeSigner(producer, signing_key_id(producer), private_key)
    stream = f"referral-ref-{uuid.uuid4().hex[:8]}"
    header = EventHeader(event_id=new_event_id(), event_type=event_type or message.DESCRIPTOR.name, schema_version=1,
                         stream_id=stream, stream_sequence=1, occurred_at_unix_micros=now_micros(),
                         producer_org=producer, producer_service="referral", signing_key_id=signing_key_id(producer))
    routing_key = load_routing_keys(network).current()
    wire = Sealer(signer).seal(header, {SectionKind.ROUTING: (routing_key, message.SerializeToString())})
    return Event(header.event_id, stream, 1, wire, header.event_type)


def dead_letter_reasons(bootstrap: str, group: str) -> dict[str, str]:
    """Event id -> reason of every record on the group's dead-letter topic so far."""
    letters = read_all(bootstrap, dead_letter_topic(group), expected=2, timeout_s=5)
    return {dict(letter.headers)["event-id"].decode(): header_map(letter.headers)["reason"] for letter in letters}


@pytest.fixture
def setup(request: pytest.FixtureRequest, kafka_bootstrap: str, intake_network: NetworkCreated,
          tmp_path: Path) -> Iterator[tuple[Intake, ReferralSide, IntakeWorkerProcess, str]]:
    group = f"intake-worker-test-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, [TOPIC, dead_letter_topic(group)], partitions=3, replication_factor=1,
                  min_insync_replicas=1)
    network = intake_network.layout.root
    with fresh_engine(request, "postgresql") as engine:
        migrate(engine)
        with engine.connect() as connection:
            schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
        url = engine.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
        intake = make_intake(intake_network, engine, tmp_path / "kek.key")
        referral = ReferralSide(network, f"sqlite+pysqlite:///{tmp_path / 'referral.db'}", kafka_bootstrap)
        config = write_config(tmp_path / "intake-worker.json", {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DATABASE_URL": url, "NETWORK_DIR": str(network),
            "max_workers": 4, "KAFKA_CONSUMER_OPTIONS": FAST_GROUP_TIMEOUTS})
        worker = IntakeWorkerProcess("intake-worker", config, {"INTAKE_WORKER_GROUP": group},
                                     tmp_path / "intake-worker.log")
        try:
            yield intake, referral, worker.start(), group
        finally:
            worker.stop()
            referral.close()
            assert processes_mentioning(str(config)) == [], "the worker outlived its test"


def handoff_state(intake: Intake, handoff_id: str) -> str | None:
    with intake.engine.connect() as connection:
        query = sa.select(handoffs.c.state).where(handoffs.c.handoff_id == handoff_id)
        return connection.execute(query).scalar_one_or_none()


def test_the_worker_applies_referrals_handoff_events_and_release_follows_them(setup, kafka_bootstrap):
    intake, referral, worker, group = setup
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    stream = f"referral-{answer.referral_id}"
    handoff_id = f"hof-{uuid.uuid4().hex}"

    def event(kind: str) -> Message:
        return handoff_event(kind, answer.subject_id, SHELTER, handoff_id=handoff_id, referral_id=answer.referral_id)

    referral.publish(stream, referral_events.ReferralOpened(referral_id=answer.referral_id,
                                                            subject_id=answer.subject_id),
                     event("HandoffOffered"), event("HandoffAccepted"))
    wait_until(lambda: handoff_state(intake, handoff_id) == "accepted", 90, "the acceptance applied", (worker,))
    released = intake.app.release_key(intake.caller(SHELTER), ReleaseKeyRequest(
        subject_id=answer.subject_id, purpose=Purpose.PURPOSE_SERVICE_DELIVERY,
        category=DataCategory.DATA_CATEGORY_CASE_FILE))
    assert released.handoff_id == handoff_id

    referral.publish(stream, event("ServiceStarted"), event("ServiceCompleted"))
    wait_until(lambda: handoff_state(intake, handoff_id) == "completed", 60, "the completion applied", (worker,))
    intake.app.context.release_wait = ReleaseWait(max_seconds=0.2)
    with pytest.raises(FailedPrecondition):
        intake.app.release_key(intake.caller(SHELTER), ReleaseKeyRequest(
            subject_id=answer.subject_id, purpose=Purpose.PURPOSE_SERVICE_DELIVERY,
            category=DataCategory.DATA_CATEGORY_CASE_FILE))

    # A provider signing its own "acceptance", and a type nobody knows, go to the dead-letter topic.
    network = intake.root
    self_accepted = forged(network, SHELTER, handoff_event("HandoffAccepted", answer.subject_id, SHELTER,
                                                           handoff_id="hof-forged"))
    unknown = forged(network, "svc:referral", referral_events.ReferralClosed(referral_id=answer.referral_id),
                     event_type="HandoffTeleported")
    produce(kafka_bootstrap, TOPIC, [self_accepted, unknown])

    found: dict[str, str] = {}

    def both_dead_lettered() -> bool:
        found.update(dead_letter_reasons(kafka_bootstrap, group))
        return {self_accepted.event_id, unknown.event_id} <= found.keys()

    # The topic is shared with the session's e2e network, whose events (signed by another network's keys)
    # this worker rightly dead-letters as bad_signature: look at the two records planted here.
    wait_until(both_dead_lettered, 60, "two dead letters", (worker,))
    assert found[self_accepted.event_id] == "unexpected_producer"
    assert found[unknown.event_id] == "unknown_event_type"
    assert handoff_state(intake, "hof-forged") is None
    assert handoff_state(intake, handoff_id) == "completed"
    assert worker.returncode() is None
    assert worker.terminate() == 0
