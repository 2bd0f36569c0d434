"""The ledger's compliance checks (services/audit/domain/compliance.py): pure, on events built as intake and
referral build them (headers + decoded routing payloads), with synthetic subjects and seed organisations.

Each check is shown both ways: the scenario that must pass clean, and the one that must be reported, named
by the event that shows it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import pytest
from google.protobuf.message import Message

from services.audit.domain.compliance import (
    BAD_SIGNATURE,
    CHECKPOINT_INCONSISTENT,
    DEAD_LETTERED,
    KEY_RELEASE,
    MINOR_WITHOUT_CONSENT,
    OFFER,
    OFFER_WITHOUT_CONSENT,
    RELEASE_AFTER_ERASURE,
    RELEASE_WITHOUT_CONSENT,
    SEQUENCE_DUPLICATE,
    SEQUENCE_GAP,
    ComplianceChecker,
    ComplianceResult,
    Violation,
)
from services.core.envelope import EventHeader, new_event_id
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.consent.v1 import consent_pb2 as consent
from services.core.generated.referralnet.intake.v1 import events_pb2 as intake
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral
from tests.unit.identity_factories import make_directory
from tests.unit.referral_support import HOUR_US, SubjectFeed

SHELTER, LEGAL = "alb-mdd-01", "leg-lim-01"
ROLES = {SHELTER: vocab.ORG_ROLE_SHELTER, LEGAL: vocab.ORG_ROLE_LEGAL, "alb-cus-01": vocab.ORG_ROLE_SHELTER}
TOPIC = "referralnet.intake.events.v1"


class ReferralFeed:
    """One referral's events as the referral service produces them (stream ``referral-<id>``)."""

    def __init__(self, feed: SubjectFeed, referral_id: str = "ref-0000000000000000000000000000aaaa") -> None:
        self.feed, self.referral_id = feed, referral_id
        self._sequence = itertools.count(1)

    def header(self, message: Message, *, sequence: int | None = None) -> EventHeader:
        return EventHeader(event_id=new_event_id(), event_type=message.DESCRIPTOR.name, schema_version=1,
                           stream_id=f"referral-{self.referral_id}",
                           stream_sequence=sequence if sequence is not None else next(self._sequence),
                           occurred_at_unix_micros=self.feed.clock(), producer_org="svc:referral",
                           producer_service="referral", signing_key_id="svc:referral#sig-1")

    def offer(self, provider: str, consent_id: str = "", *, minor: bool = False) -> tuple[EventHeader, Message]:
        message = referral.HandoffOffered(
            handoff_id=f"hof-{new_event_id().replace('-', '')}", referral_id=self.referral_id,
            subject_id=self.feed.subject_id, need_index=0, service_type=vocab.SERVICE_TYPE_SHELTER,
            urgency=vocab.URGENCY_IMMEDIATE, region=vocab.REGION_MADRE_DE_DIOS, minor=minor, provider_org=provider,
            offered_at_unix_micros=self.feed.clock(), expires_at_unix_micros=self.feed.clock() + HOUR_US,
            consent_id=consent_id, attempt=1)
        return self.header(message), message


def observe_all(checker: ComplianceChecker, events: Iterable[tuple[EventHeader, Message | None]]) -> None:
    for offset, (header, message) in enumerate(events):
        checker.observe(header, message, topic=TOPIC, partition=0, offset=offset)


def checks(result: ComplianceResult) -> list[str]:
    return [violation.check for violation in result.violations]


def release(feed: SubjectFeed, org_id: str, consent_id: str, *,
            category: consent.DataCategory = consent.DATA_CATEGORY_CASE_FILE) -> tuple[EventHeader, Message]:
    header, message = feed.key_released(org_id)
    message.consent_id = consent_id
    message.category = category
    return header, message


def test_a_clean_referral_offer_and_release_report_no_violation_and_list_both_disclosures():
    feed = SubjectFeed()
    given = feed.consent(role=vocab.ORG_ROLE_SHELTER)
    submitted = feed.submission(consent_ids=[given[1].consent_id])
    referral_feed = ReferralFeed(feed, submitted[1].referral_id)
    feed.clock.advance(60_000_000)
    offered = referral_feed.offer(SHELTER, given[1].consent_id)
    feed.clock.advance(60_000_000)
    released = release(feed, SHELTER, given[1].consent_id)
    checker = ComplianceChecker(ROLES)
    observe_all(checker, [given, submitted, offered, released])

    result = checker.result()

    assert result.violations == [] and result.clean
    assert result.events_checked == 4
    assert [(d.kind, d.recipient_org, d.purpose, d.category, d.consent_id, d.event_id) for d in result.disclosures] == [
        (OFFER, SHELTER, "service_delivery", "routing", given[1].consent_id, offered[0].event_id),
        (KEY_RELEASE, SHELTER, "service_delivery", "case_file", given[1].consent_id, released[0].event_id)]
    assert {d.subject_id for d in result.disclosures} == {feed.subject_id}


def test_a_key_released_after_the_consent_was_revoked_is_a_release_without_consent_named_by_its_event():
    feed = SubjectFeed()
    given = feed.consent(role=vocab.ORG_ROLE_SHELTER)
    feed.clock.advance(HOUR_US)
    revoked = feed.revoke(given[1].consent_id)
    feed.clock.advance(1)
    released = release(feed, SHELTER, given[1].consent_id)
    checker = ComplianceChecker(ROLES)
    observe_all(checker, [given, revoked, released])

    [violation] = checker.result().violations

    assert violation.check == RELEASE_WITHOUT_CONSENT
    assert violation.event_ids == (released[0].event_id,)
    assert violation.subject_id == feed.subject_id
    assert f"{given[1].consent_id}, was revoked at" in violation.detail


def erasure(feed: SubjectFeed, by: str = "pol-mdd-01") -> tuple[EventHeader, Message]:
    message = intake.SubjectErased(subject_id=feed.subject_id, erased_by_org=by, erased_at_unix_micros=feed.clock())
    return feed.header(message), message


def test_an_erased_subject_is_checked_clean_and_its_releases_before_the_erasure_stay_disclosures():
    feed = SubjectFeed()
    given = feed.consent(role=vocab.ORG_ROLE_SHELTER)
    submitted = feed.submission(consent_ids=[given[1].consent_id])
    feed.clock.advance(HOUR_US)
    released = release(feed, SHELTER, given[1].consent_id)
    feed.clock.advance(HOUR_US)
    erased = erasure(feed)
    checker = ComplianceChecker(ROLES)
    observe_all(checker, [erased, released, submitted, given])  # read in any order: positions decide

    result = checker.result()

    assert result.clean and result.events_checked == 4
    assert [d.event_id for d in result.disclosures] == [released[0].event_id]


def test_a_key_released_after_the_subjects_erasure_is_a_violation_whatever_its_instant_says():
    feed = SubjectFeed()
    given = feed.consent(role=vocab.ORG_ROLE_SHELTER)
    feed.clock.advance(HOUR_US)
    erased = erasure(feed)
    feed.clock.advance(-1)  # a clock that went back a little: the stream's order still shows it
    released = release(feed, SHELTER, given[1].consent_id)
    again = erasure(feed, by="coo-lim-01")
    checker = ComplianceChecker(ROLES)
    observe_all(checker, [given, erased, released, again])

    [violation] = checker.result().violations

    assert violation.check == RELEASE_AFTER_ERASURE
    assert violation.event_ids == (erased[0].event_id, released[0].event_id)
    assert violation.subject_id == feed.subject_id
    assert checks(checker.result(subject_id=feed.subject_id)) == [RELEASE_AFTER_ERASURE]
    assert checker.result(subject_id="sub-someone-else").clean


def test_coverage_is_decided_by_the_instants_not_by_the_order_the_topics_were_read_in():
    feed = SubjectFeed()
    given = feed.consent(org_id=SHELTER)
    feed.clock.advance(HOUR_US)
    released = release(feed, SHELTER, given[1].consent_id)  # before the revocation: covered
    feed.clock.advance(HOUR_US)
    revoked = feed.revoke(given[1].consent_id)
    in_order, reversed_order = ComplianceChecker(ROLES), ComplianceChecker(ROLES)
    observe_all(in_order, [given, released, revoked])
    observe_all(reversed_order, [released, revoked, given])

    assert in_order.result().violations == reversed_order.result().violations == []


def test_an_offer_to_a_provider_no_consent_names_is_an_offer_without_consent():
    feed = SubjectFeed()
    given = feed.consent(role=vocab.ORG_ROLE_LEGAL)  # names legal aid, not shelters
    referral_feed = ReferralFeed(feed)
    covered = referral_feed.offer(LEGAL, given[1].consent_id)
    uncovered = referral_feed.offer(SHELTER, given[1].consent_id)
    checker = ComplianceChecker(ROLES)
    observe_all(checker, [given, covered, uncovered])

    [violation] = checker.result().violations

    assert (violation.check, violation.event_ids) == (OFFER_WITHOUT_CONSENT, (uncovered[0].event_id,))
    assert f"does not name {SHELTER} or its role" in violation.detail


def test_an_offer_naming_no_recorded_consent_is_reported_and_a_role_needs_the_directory_to_cover():
    feed = SubjectFeed()
    given = feed.consent(role=vocab.ORG_ROLE_SHELTER)
    offered = ReferralFeed(feed).offer(SHELTER, "con-never-recorded")
    unknown_roles = ComplianceChecker()  # no roles known: a consent naming a role covers nobody
    with_directory = ComplianceChecker.for_directory(make_directory().directory)
    observe_all(unknown_roles, [given, offered])
    observe_all(with_directory, [given, offered])

    [violation] = unknown_roles.result().violations
    assert violation.check == OFFER_WITHOUT_CONSENT
    assert "con-never-recorded, was never recorded" in violation.detail
    assert with_directory.result().violations == []  # another consent of the subject covered it


def test_a_consent_covers_up_to_but_not_at_its_expiry_instant():
    feed = SubjectFeed()
    expiry = feed.clock() + HOUR_US
    given = feed.consent(org_id=SHELTER, expires_at=expiry)
    feed.clock.now = expiry - 1
    just_before = release(feed, SHELTER, given[1].consent_id)
    feed.clock.now = expiry
    at_expiry = release(feed, SHELTER, given[1].consent_id)
    checker = ComplianceChecker(ROLES)
    observe_all(checker, [given, just_before, at_expiry])

    [violation] = checker.result().violations

    assert (violation.check, violation.event_ids) == (RELEASE_WITHOUT_CONSENT, (at_expiry[0].event_id,))
    assert "expired at" in violation.detail


def test_a_release_of_a_category_or_purpose_the_consent_does_not_allow_is_reported():
    feed = SubjectFeed()
    given = feed.consent(org_id=SHELTER, categories=(consent.DATA_CATEGORY_ROUTING,))
    released = release(feed, SHELTER, given[1].consent_id, category=consent.DATA_CATEGORY_CASE_FILE)
    checker = ComplianceChecker(ROLES)
    observe_all(checker, [given, released])

    [violation] = checker.result().violations

    assert violation.check == RELEASE_WITHOUT_CONSENT
    assert "does not allow the category case_file" in violation.detail


def test_a_coordinator_override_counts_for_a_minor_and_the_subjects_own_consent_does_not():
    overridden, self_consented = SubjectFeed(), SubjectFeed()
    override = overridden.consent(role=vocab.ORG_ROLE_SHELTER, override=True,
                                  given_by=consent.CONSENT_GIVER_COORDINATOR_OVERRIDE)
    minor_referral = overridden.submission(minor=True)
    own = self_consented.consent(role=vocab.ORG_ROLE_SHELTER, given_by=consent.CONSENT_GIVER_SUBJECT)
    bad_referral = self_consented.submission(minor=True, consent_ids=[own[1].consent_id])
    offered = ReferralFeed(overridden).offer(SHELTER, override[1].consent_id, minor=True)
    checker = ComplianceChecker(ROLES)
    observe_all(checker, [override, minor_referral, offered, own, bad_referral])

    result = checker.result()

    assert [(v.check, v.event_ids, v.subject_id) for v in result.violations] == [
        (MINOR_WITHOUT_CONSENT, (bad_referral[0].event_id,), self_consented.subject_id)]
    assert checker.result(subject_id=overridden.subject_id).violations == []
    assert [d.consent_id for d in checker.result(subject_id=overridden.subject_id).disclosures] == [
        override[1].consent_id]


def test_a_gap_and_a_duplicate_in_a_stream_are_reported_and_a_redelivered_event_is_not():
    feed = SubjectFeed()
    referral_feed = ReferralFeed(feed)
    one = referral_feed.offer(LEGAL)
    two = referral_feed.offer(LEGAL)
    other_two = (referral_feed.header(two[1], sequence=2), two[1])  # another event id at sequence 2
    four = (referral_feed.header(two[1], sequence=4), two[1])
    checker = ComplianceChecker()
    observe_all(checker, [(one[0], None), (two[0], None), (two[0], None), (other_two[0], None), (four[0], None)])

    result = checker.result()

    by_check = {v.check: v for v in result.violations}
    assert sorted(by_check) == [SEQUENCE_DUPLICATE, SEQUENCE_GAP]
    assert by_check[SEQUENCE_DUPLICATE].event_ids == (two[0].event_id, other_two[0].event_id)
    assert by_check[SEQUENCE_GAP].event_ids == (two[0].event_id, four[0].event_id)
    assert "sequence 3 never seen" in by_check[SEQUENCE_GAP].detail
    assert result.events_checked == 3  # the redelivery and the duplicate are not events of their own


def test_a_stream_that_starts_late_has_a_gap_from_one_and_intake_streams_are_checked_too():
    feed = SubjectFeed()
    feed.consent(org_id=SHELTER)  # sequence 1 never observed
    second = feed.consent(org_id=SHELTER)
    checker = ComplianceChecker(ROLES)
    observe_all(checker, [second])

    [violation] = checker.result().violations

    assert (violation.check, violation.event_ids, violation.subject_id) == (
        SEQUENCE_GAP, (second[0].event_id,), feed.subject_id)


def test_rejected_records_and_dead_letters_are_listed_and_only_a_subject_filter_hides_an_undated_one():
    feed = SubjectFeed()
    given = feed.consent(org_id=SHELTER)
    checker = ComplianceChecker(ROLES)
    observe_all(checker, [given])
    forged_id = new_event_id()
    checker.observe_rejected(BAD_SIGNATURE, event_id=forged_id, topic=TOPIC, partition=1, offset=7)
    checker.observe_rejected("malformed", event_id=None, topic=TOPIC, partition=1, offset=8)
    dead_id = new_event_id()
    checker.observe_dead_letter("unexpected_producer", event_id=dead_id, consumer="referral-worker", topic=TOPIC,
                                partition=2, offset=3)
    dated_id = new_event_id()
    checker.observe_dead_letter("handler_failed", event_id=dated_id, consumer="intake-worker", topic=TOPIC,
                                partition=0, offset=9, subject_id=feed.subject_id, at_us=feed.clock())

    everything = checker.result()
    later = checker.result(from_us=feed.clock() + 1)
    subject = checker.result(subject_id=feed.subject_id)

    assert sorted((v.check, v.event_ids) for v in everything.violations) == sorted([
        (BAD_SIGNATURE, (forged_id,)), ("malformed", ()), (DEAD_LETTERED, (dead_id,)),
        (DEAD_LETTERED, (dated_id,))])
    assert "referralnet.intake.events.v1[1]@8" in next(v.detail for v in everything.violations if not v.event_ids)
    assert sorted(v.event_ids for v in later.violations) == sorted([(forged_id,), (), (dead_id,)])
    assert [(v.check, v.event_ids) for v in subject.violations] == [(DEAD_LETTERED, (dated_id,))]


def test_filters_by_subject_and_by_period_keep_what_happened_to_whom_and_when():
    first, second = SubjectFeed(), SubjectFeed()
    first_consent = first.consent(org_id=SHELTER)
    first_release = release(first, SHELTER, first_consent[1].consent_id)
    second.clock.advance(2 * HOUR_US)
    second_consent = second.consent(org_id=SHELTER)
    second.clock.advance(1)
    second_release = release(second, SHELTER, "con-none")  # names a wrong id, but second's consent covers it
    checker = ComplianceChecker(ROLES)
    observe_all(checker, [first_consent, first_release, second_consent, second_release])
    split = first.clock() + HOUR_US

    assert checker.result().events_checked == 4
    assert checker.result(subject_id=first.subject_id).events_checked == 2
    assert [d.event_id for d in checker.result(subject_id=second.subject_id).disclosures] == [
        second_release[0].event_id]
    assert checker.result(to_us=split).events_checked == 2
    assert [d.event_id for d in checker.result(from_us=split).disclosures] == [second_release[0].event_id]
    assert checker.result(from_us=split, to_us=split + 1).events_checked == 0
    assert checker.result().violations == []  # second's own consent covers the release it failed to name


def test_an_event_with_an_unreadable_payload_still_counts_for_its_stream_and_other_findings_can_be_added():
    feed = SubjectFeed()
    first = feed.consent(org_id=SHELTER)
    second = feed.consent(org_id=SHELTER)
    checker = ComplianceChecker(ROLES)
    observe_all(checker, [(first[0], None), second])
    checker.observe_violation(Violation(CHECKPOINT_INCONSISTENT, "checkpoint 12 does not extend checkpoint 8"))

    assert checks(checker.result()) == [CHECKPOINT_INCONSISTENT]
    assert checker.result(subject_id=feed.subject_id).violations == []


@pytest.mark.parametrize("observed", [0, 1, 2])
def test_the_result_does_not_depend_on_how_often_an_event_was_seen(observed):
    feed = SubjectFeed()
    given = feed.consent(org_id=SHELTER)
    released = release(feed, SHELTER, given[1].consent_id)
    checker = ComplianceChecker(ROLES)
    observe_all(checker, [given, released] + [released] * observed)

    result = checker.result()

    assert (result.events_checked, len(result.disclosures), result.violations) == (2, 1, [])


def test_a_consent_revoked_twice_counts_from_its_first_revocation():
    feed = SubjectFeed()
    given = feed.consent(org_id=SHELTER)
    feed.clock.advance(HOUR_US)
    first_revocation = feed.revoke(given[1].consent_id)
    feed.clock.advance(HOUR_US)
    released = release(feed, SHELTER, given[1].consent_id)
    feed.clock.advance(HOUR_US)
    second_revocation = feed.revoke(given[1].consent_id)
    checker = ComplianceChecker(ROLES)
    observe_all(checker, [given, second_revocation, released, first_revocation])

    assert checks(checker.result()) == [RELEASE_WITHOUT_CONSENT]


def test_events_that_disclose_nothing_count_as_checked_and_raise_nothing():
    feed = SubjectFeed()
    accepted = referral.HandoffAccepted(handoff_id="hof-1", referral_id="ref-1", subject_id=feed.subject_id,
                                        provider_org=SHELTER, accepted_at_unix_micros=feed.clock())
    header = ReferralFeed(feed).header(accepted)
    checker = ComplianceChecker(ROLES)
    checker.observe(header, accepted, topic="referralnet.referral.events.v1", partition=0, offset=0)
    assert checker.result().violations == [] and checker.result().events_checked == 1
