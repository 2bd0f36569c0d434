"""The auditor's replay without Kafka: examining records, rebuilding the ledger from signed checkpoints'
runs, and feeding the compliance checks, over an in-memory log of synthetic sealed events.

What is real: Ed25519 and AES-GCM (every envelope is sealed and verified), the audit service's checkpoint
signing and its compliance checker, the RFC 9162 tree. Replaced: Kafka, by lists of records.
"""

from __future__ import annotations

import pytest

from services.audit.application.records import SourceRecord
from services.audit.domain.checkpoint import Checkpoint, LeafRun, encode_checkpoint, sign_checkpoint
from services.audit.domain.compliance import ComplianceChecker
from services.audit.domain.merkle import EMPTY_ROOT
from services.audit.replay.auditor import feed_checker, is_dead_letter_topic
from services.audit.replay.examine import Examined
from services.audit.replay.funnel import FunnelBuilder
from services.audit.replay.ledger import LedgerReplay, LedgerReplayer, replay_ledger
from services.audit.replay.log_reader import LogBounds, Position
from services.core.envelope.format import SIGNATURE_BYTES
from services.core.identity.records import service_owner, signing_key_id
from services.core.messaging.topics import CHECKPOINT_TOPIC
from services.core.runtime.dead_letter import DeadLetter, Origin, dead_letter_headers
from tests.unit.audit_replay_support import (
    INTAKE_TOPIC,
    REFERRAL_DLQ,
    REFERRAL_TOPIC,
    AuditWorld,
    Journey,
    Log,
    memory_root,
    run,
)

PROVIDER = "alb-cus-01"


@pytest.fixture(scope="module")
def world() -> AuditWorld:
    return AuditWorld()


def _publish(log: Log, *checkpoints: Checkpoint) -> None:
    for checkpoint in checkpoints:
        log.append(CHECKPOINT_TOPIC, 0, encode_checkpoint(checkpoint))


def _replay(world: AuditWorld, log: Log) -> tuple[LedgerReplay, dict[Position, Examined], list[Examined]]:
    """The replay, every record examined, and the leaves in the order the replay gave them."""
    examined = log.examined(world, [INTAKE_TOPIC, REFERRAL_TOPIC, REFERRAL_DLQ])
    leaves: list[Examined] = []
    replay = replay_ledger(log.records([CHECKPOINT_TOPIC]), examined.values(), log.bounds(), world.directory,
                           origin=world.origin, on_leaf=leaves.append)
    return replay, examined, leaves


def _clean_story(world: AuditWorld, log: Log) -> tuple[Journey, list[SourceRecord]]:
    """consent, submit (intake p0 0..1), offer, accept (referral p1 0..1), release (p0 2), complete (p1 2)."""
    story = Journey(world, log)
    consent_id, consented = story.consent()
    submitted = story.submit([consent_id])
    story.tick()
    handoff_id, offered = story.offer(PROVIDER, consent_id)
    story.tick(7)
    accepted = story.accept(handoff_id, PROVIDER)
    story.tick()
    released = story.release(PROVIDER, consent_id, handoff_id)
    story.tick(60)
    completed = story.complete(handoff_id, PROVIDER)
    return story, [consented, submitted, offered, accepted, released, completed]


def _leaf(world: AuditWorld, log: Log, record: SourceRecord) -> bytes:
    leaf = log.examined(world)[(record.topic, record.partition, record.offset)].leaf_input
    assert leaf is not None
    return leaf


def test_a_clean_chain_gives_the_signed_roots_and_leaves_the_newest_records_pending(world: AuditWorld) -> None:
    log = Log()
    _, (consented, submitted, offered, accepted, released, completed) = _clean_story(world, log)
    first_leaves = [_leaf(world, log, record) for record in (consented, submitted, offered, accepted)]
    first = world.sign(4, memory_root(first_leaves), None, [run(consented, submitted), run(offered, accepted)])
    all_leaves = [*first_leaves, _leaf(world, log, released)]
    second = world.sign(5, memory_root(all_leaves), first, [run(released, released)])
    _publish(log, first, second)

    replay, _examined, leaves = _replay(world, log)

    assert [check.problems for check in replay.checkpoints] == [[], []]
    assert [check.leaves for check in replay.checkpoints] == [4, 1]
    assert (replay.tree_size, replay.root) == (5, memory_root(all_leaves))
    assert [entry.leaf_input for entry in leaves] == all_leaves
    assert [entry.position for entry in replay.pending] == [(REFERRAL_TOPIC, 1, completed.offset)]
    assert (replay.duplicates, replay.rejected, replay.republished) == (0, 0, 0)


def test_the_leaf_order_is_the_checkpoints_not_the_log_order(world: AuditWorld) -> None:
    log = Log()
    _, (consented, submitted, offered, accepted, _, _) = _clean_story(world, log)
    order = [offered, accepted, consented, submitted]  # the worker happened to take referral's batch first
    leaves = [_leaf(world, log, record) for record in order]
    _publish(log, world.sign(4, memory_root(leaves), None, [run(offered, accepted), run(consented, submitted)]))

    replay, _, _ = _replay(world, log)

    assert replay.root == memory_root(leaves) != memory_root(sorted(leaves))
    assert not replay.problems


def test_duplicates_and_records_that_do_not_verify_are_not_leaves(world: AuditWorld) -> None:
    log = Log()
    story, (consented, submitted, offered, accepted, released, completed) = _clean_story(world, log)
    republished = log.append(REFERRAL_TOPIC, 1, offered.value, offered.headers)  # the relay sent it twice
    tampered_wire = bytearray(accepted.value or b"")
    tampered_wire[-3] ^= 0x01  # a bit of the signature
    tampered = log.append(REFERRAL_TOPIC, 1, bytes(tampered_wire))
    garbage = log.append(REFERRAL_TOPIC, 1, b"not an envelope at all")
    tombstone = log.append(REFERRAL_TOPIC, 1, None)
    unique = [_leaf(world, log, record) for record in (consented, submitted, offered, accepted, completed)]
    _publish(log, world.sign(5, memory_root(unique), None, [run(consented, submitted), run(offered, tombstone)]))

    replay, examined, _leaves = _replay(world, log)

    assert not replay.problems
    check = replay.checkpoints[0]
    assert (check.leaves, check.duplicates, check.rejected) == (5, 1, 3)
    assert replay.root == memory_root(unique)
    assert [entry.position for entry in replay.pending] == [(INTAKE_TOPIC, 0, released.offset)]
    later = [(REFERRAL_TOPIC, 1, record.offset) for record in (republished, tampered, garbage, tombstone)]
    assert not set(later) & {entry.position for entry in replay.pending}  # covered by the run
    problems = {examined[position].name: examined[position].problem for position in later[1:]}
    assert problems == {story.event_ids["HandoffAccepted"]: "bad_signature",
                        f"{REFERRAL_TOPIC}[1]@{garbage.offset}": "malformed",
                        f"{REFERRAL_TOPIC}[1]@{tombstone.offset}": "null_value"}


def test_an_organisation_posing_as_intake_verifies_but_its_event_is_not_decoded(world: AuditWorld) -> None:
    log = Log()
    story = Journey(world, log)
    _, consented = story.consent()
    forged_id, forged_wire = world.seal(
        consented_message(world, log, consented), producer="svc:intake", stream_id=f"subject-{story.subject_id}",
        sequence=2, at_us=story.now, signer="pol-mdd-01")  # an organisation's key, claiming intake's service
    forged = log.append(INTAKE_TOPIC, 0, forged_wire)

    entry = log.examined(world)[(INTAKE_TOPIC, 0, forged.offset)]

    assert entry.verified  # the signature is pol-mdd-01's own: it verifies, but it does not speak for intake
    assert (entry.event_id, entry.message, entry.undecodable) == (forged_id, None, "unexpected_producer")


def consented_message(world: AuditWorld, log: Log, record: SourceRecord):
    entry = log.examined(world)[(record.topic, record.partition, record.offset)]
    assert entry.message is not None
    return entry.message


@pytest.mark.parametrize("fault", ["wrong_previous_hash", "wrong_root", "wrong_size", "first_claims_a_previous"])
def test_a_checkpoint_that_does_not_extend_the_previous_one_is_reported(world: AuditWorld, fault: str) -> None:
    log = Log()
    _, (consented, submitted, offered, accepted, released, _) = _clean_story(world, log)
    leaves = [_leaf(world, log, record) for record in (consented, submitted, offered, accepted, released)]
    first = world.sign(4, memory_root(leaves[:4]), None, [run(consented, submitted), run(offered, accepted)])
    previous, size, root = first, 5, memory_root(leaves)
    if fault == "wrong_previous_hash":
        previous = world.sign(4, memory_root(leaves[:4]), None, first.runs, at_us=first.issued_at_us + 1)
    elif fault == "wrong_root":
        root = memory_root(list(reversed(leaves)))
    elif fault == "wrong_size":
        size = 6
    elif fault == "first_claims_a_previous":
        first = world.sign(4, memory_root(leaves[:4]), world.sign(1, leaves[0], None, []), first.runs)
        previous = first
    second = world.sign(size, root, previous, [run(released, released)])
    _publish(log, first, second)

    replay, _, _ = _replay(world, log)

    broken = [check for check in replay.checkpoints if check.problems]
    assert len(broken) == 1, [check.problems for check in replay.checkpoints]
    [problem] = broken[0].problems if fault != "wrong_size" else broken[0].problems[:1]
    expected = {"wrong_previous_hash": "wrong_previous_hash", "wrong_root": "differs from the recomputed root",
                "wrong_size": "wrong_size", "first_claims_a_previous": "wrong_previous_size"}[fault]
    assert expected in problem
    assert broken[0].tree_size == (4 if fault == "first_claims_a_previous" else size)
    assert replay.root == memory_root(leaves)  # the tree is rebuilt from the runs whatever the checkpoint says


def test_checkpoints_that_do_not_verify_take_no_part_in_the_chain(world: AuditWorld) -> None:
    log = Log()
    _, (consented, submitted, offered, accepted, _, _) = _clean_story(world, log)
    leaves = [_leaf(world, log, record) for record in (consented, submitted, offered, accepted)]
    runs = [run(consented, submitted), run(offered, accepted)]
    good = world.sign(4, memory_root(leaves), None, runs)
    by_intake = world.sign(4, memory_root(leaves), None, runs, key_id=signing_key_id(service_owner("intake")))
    other_origin = world.sign(4, memory_root(leaves), None, runs, origin="another-network/audit/v1")
    flipped = Checkpoint(**{**good.__dict__, "signature": bytes(SIGNATURE_BYTES)})
    rewritten = sign_checkpoint(world.origin, 4, memory_root(list(reversed(leaves))), good.issued_at_us, None, runs,
                                signing_key_id(service_owner("audit")), AuditWorld().made.signing_keys[
                                    signing_key_id(service_owner("audit"))])  # a stolen-looking but foreign key
    _publish(log, by_intake, other_origin, flipped, rewritten, good)
    log.append(CHECKPOINT_TOPIC, 0, b"\xff\x00 garbage")

    replay, _, _ = _replay(world, log)

    assert [check.in_chain for check in replay.checkpoints] == [False, False, False, False, True, False]
    reasons = [check.problems[0] if check.problems else "" for check in replay.checkpoints]
    assert "wrong_signer" in reasons[0] and "wrong_origin" in reasons[1] and "bad_signature" in reasons[2]
    assert "bad_signature" in reasons[3] and reasons[4] == "" and "malformed" in reasons[5]
    assert (replay.tree_size, replay.root) == (4, memory_root(leaves))


def test_the_same_checkpoint_published_twice_counts_once(world: AuditWorld) -> None:
    log = Log()
    _, (consented, submitted, _, _, _, _) = _clean_story(world, log)
    leaves = [_leaf(world, log, record) for record in (consented, submitted)]
    checkpoint = world.sign(2, memory_root(leaves), None, [run(consented, submitted)])
    _publish(log, checkpoint, checkpoint)

    replay, _, _ = _replay(world, log)

    assert (len(replay.checkpoints), replay.republished, replay.tree_size) == (1, 1, 2)
    assert not replay.problems


def test_a_run_naming_records_the_log_does_not_hold_is_reported(world: AuditWorld) -> None:
    log = Log()
    _, (consented, submitted, _, _, released, _) = _clean_story(world, log)
    leaves = [_leaf(world, log, record) for record in (consented, submitted, released)]
    _publish(log, world.sign(3, memory_root(leaves), None, [LeafRun(INTAKE_TOPIC, 0, 0, 9)]))

    replay, _, _ = _replay(world, log)

    [problem] = replay.checkpoints[0].problems
    assert "names records this replay could not read (read offsets 0..2)" in problem


def test_no_checkpoint_means_an_empty_tree_and_every_source_record_pending(world: AuditWorld) -> None:
    log = Log()
    _clean_story(world, log)

    replay, _examined, _leaves = _replay(world, log)

    assert (replay.tree_size, replay.root, replay.checkpoints) == (0, EMPTY_ROOT, [])
    assert len(replay.pending) == 6


def _dead_letter(log: Log, original: SourceRecord, reason: str) -> SourceRecord:
    origin = Origin(original.topic, original.partition, original.offset, "intake-worker")
    headers = dead_letter_headers(DeadLetter(reason, "ids only"), origin, original.headers)
    return log.append(REFERRAL_DLQ, 0, original.value, headers)


def test_the_checker_gets_rejections_dead_letters_and_conflicting_duplicates_named_by_event_id(
        world: AuditWorld) -> None:
    log = Log()
    story, (consented, submitted, offered, accepted, released, completed) = _clean_story(world, log)
    bad = bytearray(completed.value or b"")
    bad[-1] ^= 0x80
    tampered = log.append(REFERRAL_TOPIC, 1, bytes(bad))
    _dead_letter(log, tampered, "bad_signature")
    records = (consented, submitted, offered, accepted, released)
    leaf_inputs = [_leaf(world, log, record) for record in records]
    _publish(log, world.sign(5, memory_root(leaf_inputs), None,
                             [run(consented, released), run(offered, accepted)]))
    # another envelope under the accepted event's id, re-signed by referral (a buggy or malicious producer)
    same_id, twin = world.seal(consented_message(world, log, accepted), producer="svc:referral",
                               stream_id=f"referral-{story.referral_id}", sequence=9, at_us=story.now,
                               event_id=story.event_ids["HandoffAccepted"])
    log.append(REFERRAL_TOPIC, 1, twin)
    replay, examined, leaves = _replay(world, log)
    checker = ComplianceChecker.for_directory(world.directory)
    funnel = FunnelBuilder()

    feed_checker(checker, leaves, replay.pending,
                 [entry for entry in examined.values() if not entry.verified or entry.dead_letter], funnel)
    result = checker.result()

    found = sorted((violation.check, violation.event_ids) for violation in result.violations)
    assert found == sorted([
        ("bad_signature", (story.event_ids["ServiceCompleted"],)),
        ("dead_lettered", (story.event_ids["ServiceCompleted"],)),
        ("duplicate_event_id", (same_id,)),
    ])
    assert result.events_checked == 6  # the five leaves and the pending completion... of which one is tampered
    assert sorted(disclosure.kind for disclosure in result.disclosures) == ["key_release", "offer"]
    figures = funnel.figures()
    assert [(row.label, row.offered, row.accepted, row.completed) for row in figures.by_service_type] == [
        ("shelter", 1, 1, 1)]
    assert figures.acceptance_seconds == [7 * 60.0]


def test_a_key_released_after_the_consent_was_revoked_is_a_violation_named_by_its_event(world: AuditWorld) -> None:
    log = Log()
    story = Journey(world, log)
    consent_id, _ = story.consent()
    story.submit([consent_id])
    handoff_id, _ = story.offer(PROVIDER, consent_id)
    story.accept(handoff_id, PROVIDER)
    story.tick()
    story.revoke(consent_id)
    story.tick()
    story.release(PROVIDER, consent_id, handoff_id)  # injected as a buggy producer would
    replay, _examined, leaves = _replay(world, log)
    checker = ComplianceChecker.for_directory(world.directory)

    feed_checker(checker, leaves, replay.pending, [])
    violations = checker.result().violations

    assert [(v.check, v.event_ids, v.subject_id) for v in violations] == [
        ("release_without_consent", (story.event_ids["KeyReleased"],), story.subject_id)]


def test_dead_letter_topics_are_recognised_by_name() -> None:
    assert is_dead_letter_topic(REFERRAL_DLQ) and is_dead_letter_topic("referralnet.rt-1a2b-worker.dlq.v1")
    assert not is_dead_letter_topic(INTAKE_TOPIC) and not is_dead_letter_topic(CHECKPOINT_TOPIC)


def test_log_bounds_hold_only_what_was_read() -> None:
    bounds = LogBounds({("t", 0): 3}, {("t", 0): 7})
    assert [bounds.holds("t", 0, offset) for offset in (2, 3, 6, 7)] == [False, True, True, False]
    assert not bounds.holds("t", 1, 3) and bounds.records == 4


def _batches_in(order: list[tuple[str, int]], examined: dict[Position, Examined], size: int) -> list[list[Examined]]:
    """Each partition's records in batches of ``size``, the partitions taking turns in ``order``."""
    per_partition = {key: [entry for entry in examined.values() if entry.position[:2] == key] for key in order}
    batches: list[list[Examined]] = []
    while any(per_partition.values()):
        for key in order:
            if per_partition[key]:
                batches.append(per_partition[key][:size])
                per_partition[key] = per_partition[key][size:]
    return batches


@pytest.mark.parametrize("order", [[(REFERRAL_TOPIC, 1), (INTAKE_TOPIC, 0)], [(INTAKE_TOPIC, 0), (REFERRAL_TOPIC, 1)]])
def test_records_arriving_one_batch_at_a_time_in_any_partition_order_give_the_same_ledger(
        world: AuditWorld, order: list[tuple[str, int]]) -> None:
    log = Log()
    _, (consented, submitted, offered, accepted, released, completed) = _clean_story(world, log)
    first_leaves = [_leaf(world, log, record) for record in (offered, accepted, consented, submitted)]
    first = world.sign(4, memory_root(first_leaves), None, [run(offered, accepted), run(consented, submitted)])
    all_leaves = [*first_leaves, _leaf(world, log, released)]
    _publish(log, first, world.sign(5, memory_root(all_leaves), first, [run(released, released)]))
    examined = log.examined(world, [INTAKE_TOPIC, REFERRAL_TOPIC])
    leaves: list[Examined] = []
    replayer = LedgerReplayer(log.records([CHECKPOINT_TOPIC]), log.bounds(), world.directory, origin=world.origin,
                              on_leaf=leaves.append)

    for batch in _batches_in(order, examined, 1):
        replayer.take(batch)
    replay = replayer.finish()

    assert [entry.leaf_input for entry in leaves] == all_leaves
    assert (replay.tree_size, replay.root, replay.problems) == (5, memory_root(all_leaves), [])
    assert [entry.position for entry in replay.pending] == [(REFERRAL_TOPIC, 1, completed.offset)]


def test_a_partition_far_ahead_of_the_walk_is_held_until_the_walk_catches_up(world: AuditWorld) -> None:
    log = Log()
    _, (consented, submitted, offered, accepted, _, _) = _clean_story(world, log)
    leaves = [_leaf(world, log, record) for record in (consented, submitted, offered, accepted)]
    _publish(log, world.sign(4, memory_root(leaves), None, [run(consented, submitted), run(offered, accepted)]))
    examined = log.examined(world, [INTAKE_TOPIC, REFERRAL_TOPIC])
    replayer = LedgerReplayer(log.records([CHECKPOINT_TOPIC]), log.bounds(), world.directory, origin=world.origin,
                              buffer_limit=2)
    intake = [entry for entry in examined.values() if entry.position[:2] == (INTAKE_TOPIC, 0)]
    referral = [entry for entry in examined.values() if entry.position[:2] == (REFERRAL_TOPIC, 1)]

    replayer.take(referral)  # the walk starts on intake's run: referral's records wait in their buffer
    held_while_waiting = replayer.held()
    replayer.take(intake[:1])
    still_waiting = replayer.held()
    replayer.take(intake[1:])

    assert held_while_waiting == still_waiting == {(REFERRAL_TOPIC, 1)}
    assert replayer.held() == set()  # the walk went through referral's buffer and waits for nothing
    assert replayer.finish().root == memory_root(leaves)


def test_a_walk_waiting_for_records_never_read_finishes_when_the_read_ends(world: AuditWorld) -> None:
    log = Log()
    _, (consented, submitted, _, _, _, _) = _clean_story(world, log)
    leaves = [_leaf(world, log, record) for record in (consented, submitted)]
    _publish(log, world.sign(2, memory_root(leaves), None, [run(consented, submitted)]))
    replayer = LedgerReplayer(log.records([CHECKPOINT_TOPIC]), log.bounds(), world.directory, origin=world.origin)

    replayer.take([log.examined(world)[(INTAKE_TOPIC, 0, consented.offset)]])  # the submission's offset: a marker

    replay = replayer.finish()
    assert (replay.tree_size, replay.checkpoints[0].leaves) == (1, 1)
    assert [problem.split(":")[0] for problem in replay.checkpoints[0].problems] == [
        "does not extend the previous checkpoint", "its runs give 1 leaves in all, not its tree size 2"]


def test_overlapping_runs_keep_a_record_only_until_the_last_run_naming_it_was_walked(world: AuditWorld) -> None:
    log = Log()
    _, (consented, submitted, offered, accepted, _, _) = _clean_story(world, log)
    leaves = [_leaf(world, log, record) for record in (consented, submitted, offered, accepted)]
    runs = [run(consented, consented), run(consented, submitted), run(offered, accepted)]  # a worker re-read a batch
    _publish(log, world.sign(4, memory_root(leaves), None, runs))
    examined = log.examined(world, [INTAKE_TOPIC, REFERRAL_TOPIC])
    replayer = LedgerReplayer(log.records([CHECKPOINT_TOPIC]), log.bounds(), world.directory, origin=world.origin,
                              buffer_limit=1)

    replayer.take([entry for entry in examined.values() if entry.position[:2] == (INTAKE_TOPIC, 0)])
    replayer.take([examined[(REFERRAL_TOPIC, 1, offered.offset)]])  # the walk now waits for the acceptance

    assert replayer.held() == set()  # intake's records were all walked by the last run naming them: none is kept
    replayer.take([examined[(REFERRAL_TOPIC, 1, accepted.offset)]])
    replay = replayer.finish()
    assert (replay.root, replay.duplicates, replay.problems) == (memory_root(leaves), 1, [])
