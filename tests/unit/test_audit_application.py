"""Audit's application layer on SQLite: writing the ledger from batches of source records, checkpoints and their
publication, the edge's queries and the compliance report.

What is real: a ``network init`` network (its service keys seal the events, the audit key signs checkpoints,
the routing key opens routing sections), the migrated database (helper tables included), the SQL tree, the
verifier. What is replaced: Kafka (records are handed over as the worker's entrypoint would) and the
checkpoint topic (a list, or one that fails).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.orm import Session

from services.audit.adapters import custody_store as store
from services.audit.adapters.custody_tables import CUSTODY_METADATA
from services.audit.adapters.database import migrate
from services.audit.adapters.tables import AUDIT_METADATA
from services.audit.adapters.tree_store import SqlTree
from services.audit.application.compliance_report import ComplianceReporter
from services.audit.application.ledger import DUPLICATE_EVENT_ID, LedgerTopics, LedgerWriter, merge_runs
from services.audit.application.queries import AuditQueries
from services.audit.application.records import NULL_VALUE, SourceRecord
from services.audit.bootstrap import (
    DEFAULT_BATCH_RECORDS,
    WorkerSettings,
    build_ledger_writer,
    build_queries,
    default_topics,
    worker_settings,
)
from services.audit.domain.checkpoint import Checkpoint, LeafRun, check_extends, verify_checkpoint
from services.audit.domain.compliance import DEAD_LETTERED, RELEASE_WITHOUT_CONSENT
from services.audit.domain.merkle import verify_consistency, verify_inclusion
from services.core.application import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.core.envelope import EventHeader, Verifier, new_event_id, parse_envelope
from services.core.generated.referralnet.audit.v1 import audit_pb2 as api
from services.core.identity.network import NetworkCreated, init_network
from services.core.messaging.topics import CHECKPOINT_TOPIC
from services.core.migrations import CORE_METADATA, current, drift
from services.core.runtime.config import RuntimeConfigError
from tests.unit.audit_ledger_support import (  # noqa: F401 -- fixtures
    INTAKE_TOPIC,
    REFERRAL_DLQ,
    REFERRAL_TOPIC,
    Envelopes,
    audit_engine_fixture,
    canonical_hashes,
    consent_story,
    dead_letter_record,
    flip_last_byte,
    records,
    replayed_root,
)
from tests.unit.referral_support import Clock, SubjectFeed, caller

TOPICS = LedgerTopics(frozenset({INTAKE_TOPIC, REFERRAL_TOPIC}), frozenset({REFERRAL_DLQ}))


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> NetworkCreated:
    return init_network(tmp_path_factory.mktemp("audit-application") / "network")


@pytest.fixture
def verifier(network: NetworkCreated) -> Iterator[Verifier]:
    made = Verifier(network.directory, workers=1)
    yield made
    made.close()


@pytest.fixture
def writer(engine: sa.Engine, network: NetworkCreated) -> LedgerWriter:
    return build_ledger_writer(engine, network.layout.root, directory=network.directory, topics=TOPICS,
                               clock=Clock())


@pytest.fixture
def envelopes(network: NetworkCreated) -> Envelopes:
    return Envelopes(network.layout.root)


class ListPublisher:
    """The checkpoint topic as a list; ``failures`` publications fail first."""

    def __init__(self, failures: int = 0) -> None:
        self.published: list[Checkpoint] = []
        self.failures = failures

    def publish(self, checkpoint: Checkpoint) -> None:
        if self.failures:
            self.failures -= 1
            raise TimeoutError("the broker did not acknowledge")
        self.published.append(checkpoint)


def leaf_inputs(engine: sa.Engine) -> list[bytes]:
    with Session(engine) as session:
        return [leaf.leaf_input for _, leaf in SqlTree().leaves(session, 0, 10_000)]


def story_batches(envelopes: Envelopes) -> tuple[list[SourceRecord], list[SourceRecord], str]:
    """The consent story as two batches: intake's partition then referral's; and the late release's id."""
    story = consent_story()
    intake_wires = [envelopes.seal(header, message).wire for header, message in story.intake]
    referral_wires = [envelopes.seal(header, message).wire for header, message in story.referral]
    return (records(INTAKE_TOPIC, 1, intake_wires[:3]) + records(REFERRAL_TOPIC, 0, referral_wires),
            records(INTAKE_TOPIC, 1, intake_wires[3:], first_offset=3), story.violating_release.event_id)


def test_the_audit_branch_creates_the_helper_tables_exactly_as_the_code_defines_them(engine):
    assert current(engine) == ("audit_0002",)
    assert drift(engine, (*CORE_METADATA, AUDIT_METADATA, CUSTODY_METADATA)) == []
    migrate(engine)
    assert current(engine) == ("audit_0002",)


def test_a_batch_becomes_leaves_in_batch_order_once_each_with_its_runs_pending(engine, writer, envelopes, verifier):
    first, second, _ = story_batches(envelopes)

    outcome = writer.ingest(first)
    again = writer.ingest(first)  # the same batch read again (a crash before the offsets were committed)
    writer.ingest(second)

    assert (outcome.appended, outcome.duplicates, outcome.rejected) == (4, 0, 0)
    assert (again.appended, again.duplicates, again.rejected) == (0, 4, 0)
    wires = [record.value or b"" for record in first + second]
    assert leaf_inputs(engine) == canonical_hashes(verifier, wires)
    with Session(engine) as session:
        runs = [run for _, run in store.load_pending_runs(session)]
        subject = first[0]
        indexed = store.subject_leaf_indexes(session, consent_story_subject(verifier, subject), 100)
    assert runs == [LeafRun(INTAKE_TOPIC, 1, 0, 2), LeafRun(REFERRAL_TOPIC, 0, 0, 0),
                    LeafRun(INTAKE_TOPIC, 1, 0, 2), LeafRun(REFERRAL_TOPIC, 0, 0, 0), LeafRun(INTAKE_TOPIC, 1, 3, 4)]
    assert indexed == [0, 1, 2, 3, 4, 5]


def consent_story_subject(verifier: Verifier, record: SourceRecord) -> str:
    assert record.value is not None
    return verifier.verify(record.value).header.stream_id.removeprefix("subject-")


def test_tampered_forged_and_unreadable_records_are_rejected_by_event_id_or_position_and_never_leaves(
        engine, writer, envelopes):
    feed = SubjectFeed()
    genuine, tampered, forged = feed.consent(org_id="alb-mdd-01"), feed.consent(), feed.consent()
    tampered_wire = flip_last_byte(envelopes.seal(*tampered).wire)
    forged_wire = envelopes.forged(*forged)
    batch = records(INTAKE_TOPIC, 0, [envelopes.seal(*genuine).wire, tampered_wire, forged_wire, None, b"garbage"])

    outcome = writer.ingest(batch)

    assert (outcome.appended, outcome.rejected) == (1, 4)
    with Session(engine) as session:
        found = [(r.source_offset, r.event_id, r.reason) for r in store.load_rejections(session)]
    assert found == [(1, tampered[0].event_id, "bad_signature"), (2, forged[0].event_id, "bad_signature"),
                     (3, None, NULL_VALUE), (4, None, "malformed")]
    writer.ingest(batch)  # read again: recorded once
    with Session(engine) as session:
        assert len(store.load_rejections(session)) == 4
        assert SqlTree().size(session) == 1


def test_another_envelope_under_an_event_id_that_is_a_leaf_is_a_duplicate_event_id(engine, writer, envelopes):
    feed = SubjectFeed()
    header, message = feed.consent(org_id="alb-mdd-01")
    first = envelopes.seal(header, message).wire
    resealed = envelopes.seal(header, message).wire  # same header, fresh nonce: another envelope, same id

    writer.ingest(records(INTAKE_TOPIC, 0, [first]))
    outcome = writer.ingest(records(INTAKE_TOPIC, 0, [resealed, resealed], first_offset=1))

    assert (outcome.appended, outcome.duplicates, outcome.rejected) == (0, 2, 2)
    with Session(engine) as session:
        found = [(r.source_offset, r.event_id, r.reason) for r in store.load_rejections(session)]
    assert found == [(1, header.event_id, DUPLICATE_EVENT_ID), (2, header.event_id, DUPLICATE_EVENT_ID)]


def test_dead_letters_are_recorded_with_their_reason_and_origin_and_are_never_leaves(engine, writer, envelopes):
    feed = SubjectFeed()
    header, message = feed.consent(org_id="alb-mdd-01")
    wire = envelopes.seal(header, message).wire
    letters = [dead_letter_record(wire, reason="handler_failed", consumer="referral-worker",
                                  original=(INTAKE_TOPIC, 2, 41), offset=0),
               dead_letter_record(b"garbage", reason="malformed", consumer="referral-worker",
                                  original=(INTAKE_TOPIC, 2, 42), offset=1)]

    outcome = writer.ingest(letters)
    writer.ingest(letters)

    assert (outcome.appended, outcome.dead_letters, outcome.runs) == (0, 2, [])
    with Session(engine) as session:
        stored = store.load_dead_letters(session)
        assert SqlTree().size(session) == 0
        assert store.load_pending_runs(session) == []
    assert [(d.event_id, d.verified, d.subject_id, d.reason, d.consumer, d.original_topic, d.original_offset)
            for d in stored] == [
        (header.event_id, True, feed.subject_id, "handler_failed", "referral-worker", INTAKE_TOPIC, 41),
        (None, False, None, "malformed", "referral-worker", INTAKE_TOPIC, 42)]
    assert stored[0].occurred_at_us == header.occurred_at_unix_micros


def test_checkpoints_sign_the_tree_with_its_runs_link_up_and_are_published_in_order_even_after_a_failure(
        engine, writer, envelopes, network):
    first, second, _ = story_batches(envelopes)
    writer.ingest(first)
    assert writer.checkpoint(minimum_leaves=1000) is None  # not enough pending for an early one
    one = writer.checkpoint()
    writer.ingest(second)
    two = writer.checkpoint()
    assert writer.checkpoint() is None  # nothing pending
    assert one is not None and two is not None

    for made in (one, two):
        verify_checkpoint(made, network.directory)
    assert one.runs == (LeafRun(INTAKE_TOPIC, 1, 0, 2), LeafRun(REFERRAL_TOPIC, 0, 0, 0))
    assert two.runs == (LeafRun(INTAKE_TOPIC, 1, 3, 4),)
    check_extends(None, one, 4)
    check_extends(one, two, 2)
    assert two.root_hash == replayed_root(leaf_inputs(engine))
    assert one.origin == f"{network.directory.network_id}/audit/v1"
    with Session(engine) as session:
        assert store.load_pending_runs(session) == []

    failing = ListPublisher(failures=1)
    with pytest.raises(TimeoutError):
        writer.publish_pending(failing)
    assert [c.tree_size for c in writer.unpublished()] == [4, 6]
    assert writer.publish_pending(failing) == 2
    assert [c.tree_size for c in failing.published] == [4, 6]
    assert writer.unpublished() == [] and writer.publish_pending(failing) == 0


def test_pending_runs_survive_a_new_writer_and_consecutive_runs_of_a_partition_merge(engine, network, envelopes):
    first, second, _ = story_batches(envelopes)
    build_ledger_writer(engine, network.layout.root, directory=network.directory, topics=TOPICS).ingest(first)
    restarted = build_ledger_writer(engine, network.layout.root, directory=network.directory, topics=TOPICS)
    restarted.ingest(second)

    made = restarted.checkpoint()

    assert made is not None and made.tree_size == 6
    assert made.runs == (LeafRun(INTAKE_TOPIC, 1, 0, 2), LeafRun(REFERRAL_TOPIC, 0, 0, 0),
                         LeafRun(INTAKE_TOPIC, 1, 3, 4))
    assert merge_runs([LeafRun("t", 0, 0, 4), LeafRun("t", 0, 5, 9), LeafRun("t", 1, 0, 0), LeafRun("t", 0, 10, 10),
                       LeafRun("t", 0, 3, 3)]) == [LeafRun("t", 0, 0, 9), LeafRun("t", 1, 0, 0),
                                                   LeafRun("t", 0, 10, 10), LeafRun("t", 0, 3, 3)]


@pytest.fixture
def queries(engine: sa.Engine, network: NetworkCreated) -> AuditQueries:
    return build_queries(engine, network.layout.root, directory=network.directory)


def test_an_auditor_gets_checkpoints_and_proofs_that_verify(engine, writer, envelopes, network, queries):
    first, second, late_release = story_batches(envelopes)
    writer.ingest(first)
    one = writer.checkpoint()
    writer.ingest(second)
    two = writer.checkpoint()
    assert one is not None and two is not None
    auditor = caller(network.directory, "aud-lim-01")

    newest = queries.get_checkpoint(auditor, api.GetCheckpointRequest()).checkpoint
    older = queries.get_checkpoint(auditor, api.GetCheckpointRequest(tree_size=4)).checkpoint
    proof = queries.inclusion_proof(auditor, api.GetInclusionProofRequest(event_id=late_release))
    early = queries.inclusion_proof(caller(network.directory, "coo-lim-01"),
                                    api.GetInclusionProofRequest(event_id=consent_story_id(first), tree_size=4))
    consistency = queries.consistency_proof(auditor, api.GetConsistencyProofRequest(first_tree_size=4))

    assert (newest.tree_size, newest.root_hash, older.tree_size) == (6, two.root_hash, 4)
    assert (proof.leaf_index, proof.tree_size, proof.root_hash) == (5, 6, two.root_hash)
    verify_inclusion(proof.leaf_input, proof.leaf_index, proof.tree_size, list(proof.audit_path), two.root_hash)
    verify_inclusion(early.leaf_input, early.leaf_index, 4, list(early.audit_path), one.root_hash)
    assert (consistency.first_root_hash, consistency.second_root_hash) == (one.root_hash, two.root_hash)
    verify_consistency(4, 6, list(consistency.proof), one.root_hash, two.root_hash)


def consent_story_id(batch: list[SourceRecord]) -> str:
    value = batch[0].value
    assert value is not None
    return EventHeader.decode(parse_envelope(value).header_bytes).event_id


def test_the_ledger_answers_only_auditors_and_coordinators_and_names_what_is_wrong(
        engine, writer, envelopes, network, queries):
    first, _, _ = story_batches(envelopes)
    shelter = caller(network.directory, "alb-mdd-01", "en")
    auditor = caller(network.directory, "aud-lim-01")
    with pytest.raises(FailedPrecondition):  # no checkpoint yet
        queries.consistency_proof(auditor, api.GetConsistencyProofRequest(first_tree_size=1))
    with pytest.raises(NotFound):
        queries.get_checkpoint(auditor, api.GetCheckpointRequest())
    writer.ingest(first)
    writer.checkpoint()
    writer.ingest(records(INTAKE_TOPIC, 1, [first[0].value], first_offset=9))  # a duplicate: no new leaf
    pending_feed = SubjectFeed()
    pending = pending_feed.consent(org_id="alb-mdd-01")
    writer.ingest(records(INTAKE_TOPIC, 3, [envelopes.seal(*pending).wire]))  # leaf 4, after the checkpoint

    asks: list[Callable[[], object]] = [
        lambda: queries.get_checkpoint(shelter, api.GetCheckpointRequest()),
        lambda: queries.inclusion_proof(shelter, api.GetInclusionProofRequest(event_id=new_event_id())),
        lambda: queries.replay_log(shelter, api.ReplayLogRequest()),
        lambda: queries.compliance_report(shelter, api.ComplianceReportRequest())]
    for ask in asks:
        with pytest.raises(PermissionDenied) as denied:
            ask()
        assert "auditors and coordinators" in denied.value.message("en")
    with pytest.raises(NotFound):
        queries.inclusion_proof(auditor, api.GetInclusionProofRequest(event_id=new_event_id()))
    with pytest.raises(FailedPrecondition):  # a leaf newer than the newest checkpoint
        queries.inclusion_proof(auditor, api.GetInclusionProofRequest(event_id=pending[0].event_id))
    assert queries.inclusion_proof(auditor, api.GetInclusionProofRequest(
        event_id=pending[0].event_id, tree_size=5)).leaf_index == 4
    with pytest.raises(InvalidArgument):
        queries.inclusion_proof(auditor, api.GetInclusionProofRequest(event_id="SINT-0001"))
    with pytest.raises(FailedPrecondition):
        queries.inclusion_proof(auditor, api.GetInclusionProofRequest(event_id=pending[0].event_id, tree_size=9))
    with pytest.raises(InvalidArgument):
        queries.consistency_proof(auditor, api.GetConsistencyProofRequest(first_tree_size=0))
    with pytest.raises(InvalidArgument):
        queries.replay_log(auditor, api.ReplayLogRequest(limit=10_001))
    with pytest.raises(NotFound):
        queries.get_checkpoint(auditor, api.GetCheckpointRequest(tree_size=3))


def test_out_of_range_sizes_indexes_and_instants_are_answered_not_failed(engine, writer, envelopes, network, queries):
    """What the security fuzzing found (tests/security/test_fuzz.py): sizes and indexes past a signed 64-bit
    integer, and timestamps outside google.protobuf.Timestamp's range, once made the edge answer INTERNAL."""
    first, _, _ = story_batches(envelopes)
    writer.ingest(first)
    writer.checkpoint()
    auditor = caller(network.directory, "aud-lim-01")
    for size in (2**63, 2**64 - 1):
        with pytest.raises(NotFound):
            queries.get_checkpoint(auditor, api.GetCheckpointRequest(tree_size=size))
        with pytest.raises(InvalidArgument):
            queries.replay_log(auditor, api.ReplayLogRequest(start_index=size))
    for bad in (Timestamp(nanos=-1), Timestamp(seconds=253402300800), Timestamp(seconds=-62135596801),
                Timestamp(seconds=1, nanos=1_000_000_000)):
        with pytest.raises(InvalidArgument):
            queries.compliance_report(auditor, api.ComplianceReportRequest(from_time=bad))
        with pytest.raises(InvalidArgument):
            queries.compliance_report(auditor, api.ComplianceReportRequest(to_time=bad))
    edges = api.ComplianceReportRequest(from_time=Timestamp(seconds=-62135596800),
                                        to_time=Timestamp(seconds=253402300799, nanos=999_999_999))
    assert queries.compliance_report(auditor, edges).events_checked == 4


def test_replay_log_streams_entries_in_leaf_order_from_an_index_within_the_limit(engine, writer, envelopes, network):
    first, second, _ = story_batches(envelopes)
    writer.ingest(first)
    writer.ingest(second)
    reporter = ComplianceReporter(engine, network.directory, Verifier(network.directory).verify_many,
                                  envelopes.keys)
    queries = AuditQueries(engine, reporter, page=2)
    auditor = caller(network.directory, "aud-lim-01")

    everything = list(queries.replay_log(auditor, api.ReplayLogRequest()))
    middle = list(queries.replay_log(auditor, api.ReplayLogRequest(start_index=1, limit=3)))
    beyond = list(queries.replay_log(auditor, api.ReplayLogRequest(start_index=6)))

    assert [entry.leaf_index for entry in everything] == [0, 1, 2, 3, 4, 5]
    assert [entry.envelope for entry in everything] == [record.value for record in first + second]
    assert [entry.leaf_index for entry in middle] == [1, 2, 3]
    assert (middle[2].topic, middle[2].partition, middle[2].offset, middle[2].producer_org) == (
        REFERRAL_TOPIC, 0, 0, "svc:referral")
    assert beyond == []


def test_the_compliance_report_replays_the_checkpointed_leaves_with_rejections_and_dead_letters(
        engine, writer, envelopes, network, queries):
    first, second, late_release = story_batches(envelopes)
    writer.ingest(first)
    writer.ingest(second)
    forged_feed = SubjectFeed()
    forged = forged_feed.consent()
    writer.ingest(records(INTAKE_TOPIC, 2, [envelopes.forged(*forged)]))
    writer.ingest([dead_letter_record(first[0].value or b"", reason="handler_failed", consumer="referral-worker",
                                      original=(INTAKE_TOPIC, 1, 0), offset=0)])
    auditor = caller(network.directory, "aud-lim-01")
    before = queries.compliance_report(auditor, api.ComplianceReportRequest())
    made = writer.checkpoint()
    assert made is not None

    report = queries.compliance_report(auditor, api.ComplianceReportRequest())
    subject_id = consent_story_subject(Verifier(network.directory, workers=1), first[0])
    own = queries.compliance_report(auditor, api.ComplianceReportRequest(subject_id=subject_id))
    other = queries.compliance_report(auditor, api.ComplianceReportRequest(subject_id=forged_feed.subject_id))

    assert before.events_checked == 6 and not before.HasField("checkpoint")  # no checkpoint yet: every leaf
    assert report.checkpoint.tree_size == 6 and report.events_checked == 6
    assert sorted((v.check, tuple(v.event_ids)) for v in report.violations) == sorted([
        (RELEASE_WITHOUT_CONSENT, (late_release,)), ("bad_signature", (forged[0].event_id,)),
        (DEAD_LETTERED, (consent_story_id(first),))])
    assert [d.kind for d in report.disclosures] == ["offer", "key_release", "key_release"]
    assert sorted(v.check for v in own.violations) == [DEAD_LETTERED, RELEASE_WITHOUT_CONSENT]
    assert own.events_checked == 6 and other.events_checked == 0 and list(other.violations) == []


def test_worker_settings_come_from_the_config_with_defaults_and_named_errors():
    defaults = worker_settings({})
    assert defaults.topics == default_topics()
    assert (defaults.group_id, defaults.checkpoint_topic, defaults.checkpoint_every, defaults.checkpoint_seconds,
            defaults.batch_records) == ("audit-worker", CHECKPOINT_TOPIC, 1000, 5.0, DEFAULT_BATCH_RECORDS)
    custom = worker_settings({"AUDIT_SOURCE_TOPICS": "a.events, b.events", "AUDIT_DEAD_LETTER_TOPICS": ["a.dlq"],
                              "AUDIT_WORKER_GROUP": "audit-test", "CHECKPOINT_EVERY": 10, "CHECKPOINT_SECONDS": "0.5",
                              "AUDIT_VERIFY_THREADS": 0})
    assert custom == WorkerSettings(LedgerTopics(frozenset({"a.events", "b.events"}), frozenset({"a.dlq"})),
                                    group_id="audit-test", checkpoint_every=10, checkpoint_seconds=0.5,
                                    verify_threads=0)
    assert custom.topics.all == ("a.dlq", "a.events", "b.events")
    for bad in ({"CHECKPOINT_EVERY": "often"}, {"CHECKPOINT_EVERY": 1.5}, {"CHECKPOINT_SECONDS": 0},
                {"AUDIT_SOURCE_TOPICS": " , "}, {"AUDIT_SOURCE_TOPICS": "x", "AUDIT_DEAD_LETTER_TOPICS": "x"}):
        with pytest.raises(RuntimeConfigError) as wrong:
            worker_settings(bad)
        assert next(iter(bad)) in str(wrong.value)
