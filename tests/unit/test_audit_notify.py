"""The audit ledger reads notify's events and its worker's dead letters, and finds nothing wrong in them.

Notify publishes one event, NoticeUndeliverable (``referralnet.notify.events.v1``, producer ``svc:notify``,
stream ``delivery-<id>``, its routing section under the network routing key: docs/adr/0014). The ledger must
read that topic and ``referralnet.notify-worker.dlq.v1`` by default, decode the event with notify's
catalogue (only when ``svc:notify`` signed it), and its compliance checks, in the service and in the
auditor's replay, must count it without reporting it: it discloses nothing and names no subject.

What is real: the sealing and verifying (Ed25519, AES-GCM) with a directory's keys, the catalogues, the
ledger writer on SQLite, the compliance checker, the replay's examiner. Replaced: Kafka (lists of records).
Synthetic ids only.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from services.audit.adapters.source import (
    DEAD_LETTER_TOPICS,
    SOURCE_CATALOGUES,
    SOURCE_TOPICS,
    decode_source_event,
)
from services.audit.application.ledger import LedgerTopics
from services.audit.bootstrap import build_ledger_writer, build_queries, default_topics, worker_settings
from services.audit.domain.compliance import ComplianceChecker
from services.audit.replay.auditor import DEFAULT_DEAD_LETTER_TOPICS, DEFAULT_SOURCE_TOPICS, feed_checker
from services.audit.replay.ledger import replay_ledger
from services.core.envelope import EventHeader, new_event_id
from services.core.events import UnprocessableEvent
from services.core.events.catalogues import NOTIFY_EVENTS
from services.core.events.producers import UNEXPECTED_PRODUCER
from services.core.generated.referralnet.audit.v1 import audit_pb2 as api
from services.core.generated.referralnet.notify.v1 import events_pb2 as notify_events
from services.core.generated.referralnet.notify.v1 import notify_pb2
from services.core.identity.network import NetworkCreated, init_network
from services.core.identity.records import service_owner, signing_key_id
from services.core.messaging.topics import dead_letter_topic, events_topic
from services.core.runtime.dead_letter import DeadLetter, Origin, dead_letter_headers
from services.notify.adapters.events import delivery_stream
from tests.unit.audit_ledger_support import Envelopes, audit_engine_fixture, records  # noqa: F401 -- fixtures
from tests.unit.audit_replay_support import INTAKE_TOPIC, REFERRAL_TOPIC, START_US, AuditWorld, Journey, Log
from tests.unit.referral_support import Clock, caller

NOTIFY_TOPIC = events_topic("notify")
NOTIFY_DLQ = dead_letter_topic("notify-worker")
PROVIDER = "alb-cus-01"
NoticeMessage = notify_events.NoticeUndeliverable


def undeliverable(at_us: int = START_US, org_id: str = PROVIDER) -> NoticeMessage:
    """A NoticeUndeliverable as notify's worker appends it after the last failed attempt (ids only)."""
    return notify_events.NoticeUndeliverable(
        delivery_id=f"dlv-{new_event_id().replace('-', '')}", org_id=org_id,
        notice_type=notify_pb2.NOTICE_TYPE_HANDOFF_OFFERED, channel=notify_pb2.CHANNEL_WEBHOOK,
        event_id=new_event_id(), reference=f"hof-{new_event_id().replace('-', '')}", attempts=8,
        last_outcome="http_503", failed_at_unix_micros=at_us)


def notify_header(message: NoticeMessage, *, producer_org: str = service_owner("notify"),
                  at_us: int = START_US) -> EventHeader:
    """The header notify's event store gives the event (stream ``delivery-<id>``, sequence 1)."""
    return EventHeader(event_id=new_event_id(), event_type=message.DESCRIPTOR.name, schema_version=1,
                       stream_id=delivery_stream(message.delivery_id), stream_sequence=1,
                       occurred_at_unix_micros=at_us, producer_org=producer_org, producer_service="notify",
                       signing_key_id=signing_key_id(producer_org))


# -- defaults -------------------------------------------------------------------------------------------------

def test_the_ledger_reads_notifys_events_and_its_workers_dead_letters_by_default() -> None:
    assert NOTIFY_TOPIC in SOURCE_TOPICS and NOTIFY_DLQ in DEAD_LETTER_TOPICS
    assert default_topics() == LedgerTopics(
        frozenset({INTAKE_TOPIC, REFERRAL_TOPIC, NOTIFY_TOPIC}),
        frozenset({dead_letter_topic("intake-worker"), dead_letter_topic("referral-worker"), NOTIFY_DLQ}))
    assert worker_settings({}).topics == default_topics()
    assert set(DEFAULT_SOURCE_TOPICS) == set(default_topics().sources)
    assert set(DEFAULT_DEAD_LETTER_TOPICS) == set(default_topics().dead_letters)
    assert SOURCE_CATALOGUES["notify"] is NOTIFY_EVENTS


# -- decoding by producer -------------------------------------------------------------------------------------

def test_a_notify_event_signed_by_notify_decodes_with_notifys_catalogue() -> None:
    message = undeliverable()
    _, _, payload = NOTIFY_EVENTS.encode(message)

    decoded = decode_source_event(notify_header(message), payload)

    assert isinstance(decoded, notify_events.NoticeUndeliverable) and decoded == message


def test_an_organisation_cannot_speak_for_notify() -> None:
    message = undeliverable()
    _, _, payload = NOTIFY_EVENTS.encode(message)

    with pytest.raises(UnprocessableEvent) as refused:
        decode_source_event(notify_header(message, producer_org="pol-mdd-01"), payload)

    assert refused.value.reason == UNEXPECTED_PRODUCER


# -- the compliance checks ------------------------------------------------------------------------------------

def test_notice_undeliverable_events_are_counted_and_never_violations_nor_disclosures() -> None:
    checker = ComplianceChecker()
    messages = [undeliverable(START_US + index) for index in range(3)]
    events = [(notify_header(message, at_us=START_US + index), message) for index, message in enumerate(messages)]
    for offset, (header, message) in enumerate(events):
        checker.observe(header, message, topic=NOTIFY_TOPIC, partition=0, offset=offset)
        checker.observe(header, message, topic=NOTIFY_TOPIC, partition=0, offset=offset)  # redelivered

    result = checker.result()

    assert result.clean and result.disclosures == []
    assert result.events_checked == 3
    assert checker.result(from_us=START_US + 1, to_us=START_US + 2).events_checked == 1


# -- the service's ledger and its compliance report -----------------------------------------------------------

@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> NetworkCreated:
    return init_network(tmp_path_factory.mktemp("audit-notify") / "network")


def test_the_ledger_appends_notify_events_as_leaves_and_its_report_finds_nothing_wrong(
        engine: sa.Engine, network: NetworkCreated) -> None:
    envelopes = Envelopes(network.layout.root)
    writer = build_ledger_writer(engine, network.layout.root, directory=network.directory, topics=default_topics(),
                                 clock=Clock())
    messages = [undeliverable(START_US + index) for index in range(2)]
    wires = [envelopes.seal(notify_header(message, at_us=START_US + index), message).wire
             for index, message in enumerate(messages)]

    outcome = writer.ingest(records(NOTIFY_TOPIC, 0, wires))
    assert writer.checkpoint() is not None
    auditor = caller(network.directory, "aud-lim-01")
    report = build_queries(engine, network.layout.root, directory=network.directory).compliance_report(
        auditor, api.ComplianceReportRequest())

    assert (outcome.appended, outcome.rejected, outcome.dead_letters) == (2, 0, 0)
    assert report.checkpoint.tree_size == 2 and report.events_checked == 2
    assert list(report.violations) == [] and list(report.disclosures) == []


# -- the auditor's replay -------------------------------------------------------------------------------------

def test_the_replay_decodes_notify_events_and_accounts_for_its_workers_dead_letters() -> None:
    world, log = AuditWorld(), Log()
    story = Journey(world, log)
    consent_id, _ = story.consent()
    story.submit([consent_id])
    _, offer = story.offer(PROVIDER, consent_id)
    message = undeliverable(story.now)
    stream = delivery_stream(message.delivery_id)
    _, wire = world.seal(message, producer="svc:notify", stream_id=stream, sequence=1, at_us=story.now)
    notice = log.append(NOTIFY_TOPIC, 0, wire)
    _, forged = world.seal(message, producer="svc:notify", stream_id=stream, sequence=1, at_us=story.now,
                           signer="pol-mdd-01")
    posing = log.append(NOTIFY_TOPIC, 0, forged)
    # notify's worker dead-lettered the offer (say its handler failed for good): audit must account for it
    log.append(NOTIFY_DLQ, 0, offer.value, dead_letter_headers(
        DeadLetter("handler_failed", "ids only"), Origin(REFERRAL_TOPIC, offer.partition, offer.offset,
                                                         "notify-worker"), offer.headers))
    examined = {entry.position: entry for entry in world.examiner((NOTIFY_DLQ,)).examine(log.records())}
    replay = replay_ledger([], examined.values(), log.bounds(), world.directory, origin=world.origin)
    checker = ComplianceChecker.for_directory(world.directory)

    feed_checker(checker, [], replay.pending,
                 [entry for entry in examined.values() if not entry.verified or entry.dead_letter])
    result = checker.result()

    read = examined[(NOTIFY_TOPIC, 0, notice.offset)]
    assert read.verified and read.undecodable is None and read.message == message
    posing_id = examined[(NOTIFY_TOPIC, 0, posing.offset)].event_id
    assert examined[(NOTIFY_TOPIC, 0, posing.offset)].undecodable == UNEXPECTED_PRODUCER
    assert sorted((violation.check, violation.event_ids) for violation in result.violations) == sorted([
        ("dead_lettered", (story.event_ids["HandoffOffered#1"],)), (UNEXPECTED_PRODUCER, (posing_id,))])
    assert [disclosure.kind for disclosure in result.disclosures] == ["offer"]  # covered by the consent
    assert result.events_checked == 5  # consent, submission, offer, the notice, the impostor's (unreadable)
