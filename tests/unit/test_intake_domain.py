"""Intake's pure domain: consent coverage at exact instants, validation field paths, the minor rule, fingerprints.

Nothing is replaced: these are pure functions over proto messages and small records. People are synthetic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import cast

import pytest

from services.core.application import ApplicationError, FailedPrecondition, InvalidArgument
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import OrgRole, ServiceType, Urgency
from services.core.generated.referralnet.consent.v1.consent_pb2 import (
    ConsentGiver,
    ConsentRecipient,
    DataCategory,
    Purpose,
)
from services.core.generated.referralnet.intake.v1.intake_pb2 import (
    Need,
    RecordConsentRequest,
    ReleaseKeyRequest,
    RevokeConsentRequest,
    SubmitReferralRequest,
)
from services.intake.adapters.messages import consent_message, consent_of, timestamp
from services.intake.domain.consent import Consent, ConsentScope, covering, covers, require_minor_consent
from services.intake.domain.fingerprint import request_fingerprint
from services.intake.domain.ids import new_consent_id, new_referral_id, new_release_id, new_subject_id
from services.intake.domain.release import HandoffHeld, Outcome, decide_release
from services.intake.domain.validation import (
    validate_record_consent,
    validate_release,
    validate_revoke_consent,
    validate_submission,
)
from tests.unit.intake_support import DAY_US, LEGAL, SHELTER, grant, submission

NOW = 1_780_000_000_000_000  # a fixed instant (2026-05-28), so expiry arithmetic is exact
SHELTER_ROLE, LEGAL_ROLE = OrgRole.ORG_ROLE_SHELTER, OrgRole.ORG_ROLE_LEGAL
DELIVERY, LEGAL_PROCEEDINGS = Purpose.PURPOSE_SERVICE_DELIVERY, Purpose.PURPOSE_LEGAL_PROCEEDINGS
ROUTING, CASE_FILE = DataCategory.DATA_CATEGORY_ROUTING, DataCategory.DATA_CATEGORY_CASE_FILE
GUARDIAN = ConsentGiver.CONSENT_GIVER_GUARDIAN
OVERRIDE = ConsentGiver.CONSENT_GIVER_COORDINATOR_OVERRIDE
KNOWN_ORGS = {SHELTER, LEGAL}


def known(org_id: str) -> bool:
    return org_id in KNOWN_ORGS


def consent(*, role: OrgRole | None = SHELTER_ROLE, org: str | None = None, purposes=(DELIVERY,),
            categories=(CASE_FILE,), given_by=ConsentGiver.CONSENT_GIVER_SUBJECT, recorded_at=NOW,
            expires_at=NOW + 10 * DAY_US, revoked_at: int | None = None) -> Consent:
    scope = ConsentScope(None if org else role, org, frozenset(purposes), frozenset(categories))
    return Consent("con-1", "sub-1", scope, given_by, expires_at, "pol-mdd-01", recorded_at,
                   revoked_at, None if revoked_at is None else "pol-mdd-01")


# -- consent coverage -----------------------------------------------------------------------------------------

def test_a_consent_covers_exactly_its_recipient_purpose_and_category():
    by_role = consent()
    assert covers(by_role, SHELTER, SHELTER_ROLE, DELIVERY, CASE_FILE, NOW)
    assert not covers(by_role, LEGAL, LEGAL_ROLE, DELIVERY, CASE_FILE, NOW)  # another role
    assert not covers(by_role, SHELTER, SHELTER_ROLE, LEGAL_PROCEEDINGS, CASE_FILE, NOW)  # another purpose
    assert not covers(by_role, SHELTER, SHELTER_ROLE, DELIVERY, ROUTING, NOW)  # another category
    by_org = consent(org=SHELTER)
    assert covers(by_org, SHELTER, SHELTER_ROLE, DELIVERY, CASE_FILE, NOW)
    assert not covers(by_org, "alb-lim-01", SHELTER_ROLE, DELIVERY, CASE_FILE, NOW)  # same role, other org


def test_coverage_starts_when_recorded_and_ends_at_the_expiry_instant():
    given = consent(recorded_at=NOW, expires_at=NOW + 1_000)
    assert not covers(given, SHELTER, SHELTER_ROLE, DELIVERY, CASE_FILE, NOW - 1)  # not recorded yet
    assert covers(given, SHELTER, SHELTER_ROLE, DELIVERY, CASE_FILE, NOW)
    assert covers(given, SHELTER, SHELTER_ROLE, DELIVERY, CASE_FILE, NOW + 999)
    assert not covers(given, SHELTER, SHELTER_ROLE, DELIVERY, CASE_FILE, NOW + 1_000)  # expired at that instant


def test_coverage_ends_at_the_revocation_instant():
    revoked = consent(revoked_at=NOW + 500)
    assert covers(revoked, SHELTER, SHELTER_ROLE, DELIVERY, CASE_FILE, NOW + 499)
    assert not covers(revoked, SHELTER, SHELTER_ROLE, DELIVERY, CASE_FILE, NOW + 500)
    assert not covers(revoked, SHELTER, SHELTER_ROLE, DELIVERY, CASE_FILE, NOW + 5 * DAY_US)


def test_covering_picks_the_first_consent_in_force():
    revoked, other, good = consent(revoked_at=NOW - 1), consent(role=LEGAL_ROLE), consent()
    assert covering([revoked, other, good], SHELTER, SHELTER_ROLE, DELIVERY, CASE_FILE, NOW) is good
    assert covering([revoked, other], SHELTER, SHELTER_ROLE, DELIVERY, CASE_FILE, NOW) is None


def test_a_scope_names_a_role_or_an_org_never_both_or_neither():
    with pytest.raises(ValueError, match="not both or neither"):
        ConsentScope(SHELTER_ROLE, SHELTER, frozenset(), frozenset())
    with pytest.raises(ValueError, match="not both or neither"):
        ConsentScope(None, None, frozenset(), frozenset())


def test_a_grant_round_trips_through_the_domain_record_and_the_api_message():
    given = grant(org=SHELTER, purposes=[LEGAL_PROCEEDINGS, DELIVERY], categories=[CASE_FILE], given_by=GUARDIAN)
    recorded = consent_of(given, "con-9", "sub-9", "pol-mdd-01", NOW)
    assert recorded.scope == ConsentScope(None, SHELTER, frozenset({DELIVERY, LEGAL_PROCEEDINGS}),
                                          frozenset({CASE_FILE}))
    message = consent_message(recorded)
    assert message.grant.recipient.org_id == SHELTER and message.grant.given_by == GUARDIAN
    assert list(message.grant.purposes) == [DELIVERY, LEGAL_PROCEEDINGS]
    assert message.recorded_at.ToMicroseconds() == NOW and not message.HasField("revoked_at")


# -- the minor rule -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("giver", [ConsentGiver.CONSENT_GIVER_GUARDIAN,
                                   ConsentGiver.CONSENT_GIVER_CHILD_PROTECTION_AUTHORITY])
def test_a_minor_may_be_referred_with_consent_of_a_guardian_or_the_authority(giver):
    require_minor_consent(True, [ConsentGiver.CONSENT_GIVER_SUBJECT, giver], [], NOW)


def test_a_minor_without_guardian_consent_is_refused_naming_consents():
    with pytest.raises(FailedPrecondition) as refused:
        require_minor_consent(True, [ConsentGiver.CONSENT_GIVER_SUBJECT], [], NOW)
    assert refused.value.field == "consents"
    assert "guardian" in refused.value.message("en") and "tutor" in refused.value.message("es")
    require_minor_consent(False, [ConsentGiver.CONSENT_GIVER_SUBJECT], [], NOW)  # an adult needs no guardian


def test_an_override_already_recorded_and_in_force_lets_a_minor_be_referred():
    override = consent(given_by=OVERRIDE, expires_at=NOW + 100)
    require_minor_consent(True, [], [override], NOW)
    for stale in (consent(given_by=OVERRIDE, expires_at=NOW), consent(given_by=OVERRIDE, revoked_at=NOW)):
        with pytest.raises(FailedPrecondition):
            require_minor_consent(True, [], [stale], NOW)


# -- validation: each bad field is named as the proto spells it ------------------------------------------------

def _field_of(request, now=NOW, validate=validate_submission) -> str | None:
    try:
        validate(request, now, known)
    except InvalidArgument as error:
        assert error.messages["es"] and error.messages["en"]
        return error.field
    return None


def _bad(mutate) -> str | None:
    request = submission(consents=[grant(expires_at=NOW + DAY_US)])
    mutate(request)
    return _field_of(request)


def test_a_good_submission_passes():
    assert _bad(lambda request: None) is None


def _oversize(request: SubmitReferralRequest) -> None:
    request.case_file.narrative = "😀" * 20_000  # 80 kB, allowed by itself
    request.case_file.languages.append("x" * 60_000)  # checked after the whole request's size


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda r: setattr(r, "idempotency_key", "short"), "idempotency_key"),
    (lambda r: setattr(r, "idempotency_key", "has spaces in it 1234"), "idempotency_key"),
    (lambda r: setattr(r, "idempotency_key", "k" * 129), "idempotency_key"),
    (lambda r: setattr(r, "subject_id", "DNI-12345678"), "subject_id"),
    (lambda r: r.ClearField("case_file"), "case_file"),
    (lambda r: setattr(r.case_file, "given_names", "x" * 201), "case_file.given_names"),
    (lambda r: setattr(r.case_file, "family_names", "x" * 201), "case_file.family_names"),
    (lambda r: setattr(r.case_file, "document_number", "9" * 65), "case_file.document_number"),
    (lambda r: setattr(r.case_file, "narrative", "n" * 20_001), "case_file.narrative"),
    (lambda r: setattr(r.case_file, "safe_contact", "s" * 1_001), "case_file.safe_contact"),
    (lambda r: setattr(r.case_file, "date_of_birth", "1990-02-30"), "case_file.date_of_birth"),
    (lambda r: setattr(r.case_file, "date_of_birth", "2099-01-01"), "case_file.date_of_birth"),
    (lambda r: setattr(r.case_file, "nationality", "Peru"), "case_file.nationality"),
    (lambda r: r.case_file.languages.append("not a tag!"), "case_file.languages[2]"),
    (lambda r: r.ClearField("needs"), "needs"),
    (lambda r: r.needs.append(Need(service_type=ServiceType.SERVICE_TYPE_UNSPECIFIED,
                                   urgency=Urgency.URGENCY_ROUTINE)), "needs[2].service_type"),
    (lambda r: r.needs.append(Need(service_type=cast("ServiceType", 99), urgency=Urgency.URGENCY_ROUTINE)),
     "needs[2].service_type"),
    (lambda r: r.needs.append(Need(service_type=ServiceType.SERVICE_TYPE_SHELTER,
                                   urgency=Urgency.URGENCY_ROUTINE)), "needs[2].service_type"),
    (lambda r: setattr(r.needs[1], "service_type", 0), "needs[1].service_type"),
    (lambda r: setattr(r.needs[0], "urgency", 0), "needs[0].urgency"),
    (lambda r: setattr(r, "region", 0), "region"),
    (lambda r: setattr(r, "region", 26), "region"),
    (lambda r: setattr(r, "exploitation_type", 0), "exploitation_type"),
    (lambda r: setattr(r, "exploitation_type", 13), "exploitation_type"),
    (lambda r: r.consents[0].ClearField("expires_at"), "consents[0].expires_at"),
    (lambda r: r.consents[0].expires_at.CopyFrom(timestamp(NOW)), "consents[0].expires_at"),
    (lambda r: r.consents[0].expires_at.CopyFrom(timestamp(NOW + 1_900 * DAY_US)), "consents[0].expires_at"),
    (lambda r: r.consents[0].ClearField("recipient"), "consents[0].recipient"),
    (lambda r: r.consents[0].recipient.CopyFrom(ConsentRecipient(org_id="no-such-org")), "consents[0].recipient"),
    (lambda r: r.consents[0].recipient.CopyFrom(ConsentRecipient(role=OrgRole.ORG_ROLE_UNSPECIFIED)),
     "consents[0].recipient"),
    (lambda r: r.consents[0].ClearField("purposes"), "consents[0].purposes"),
    (lambda r: r.consents[0].purposes.append(DELIVERY), "consents[0].purposes[1]"),
    (lambda r: r.consents[0].categories.append(7), "consents[0].categories[2]"),
    (lambda r: setattr(r.consents[0], "given_by", 0), "consents[0].given_by"),
    (lambda r: setattr(r.consents[0], "given_by", OVERRIDE), "consents[0].given_by"),
    (lambda r: r.consents.extend([grant(expires_at=NOW + DAY_US)] * 20), "consents"),
    (_oversize, "request"),
])
def test_each_bad_field_is_named(mutate, field):
    assert _bad(mutate) == field


def test_the_narrative_may_have_exactly_twenty_thousand_characters():
    assert _bad(lambda r: setattr(r.case_file, "narrative", "ñ" * 20_000)) is None


def test_record_consent_checks_subject_grant_and_justification():
    override = grant(given_by=OVERRIDE, expires_at=NOW + DAY_US)
    cases = [
        (RecordConsentRequest(subject_id="", grant=grant(expires_at=NOW + DAY_US)), "subject_id"),
        (RecordConsentRequest(subject_id=new_subject_id()), "grant"),
        (RecordConsentRequest(subject_id="", grant=override, override_justification="too short"),
         "override_justification"),
        (RecordConsentRequest(subject_id="", grant=override, override_justification="j" * 2_001),
         "override_justification"),
        (RecordConsentRequest(subject_id=new_subject_id(), grant=grant(expires_at=NOW + DAY_US),
                              override_justification="Justificación sintética suficientemente larga."),
         "override_justification"),
        (RecordConsentRequest(subject_id="", grant=override,
                              override_justification="Justificación sintética suficientemente larga."), None),
    ]
    for request, field in cases:
        assert _field_of(request, validate=validate_record_consent) == field


def test_revoke_and_release_requests_name_their_fields():
    with pytest.raises(InvalidArgument, match="consent_id"):
        validate_revoke_consent(RevokeConsentRequest(subject_id=new_subject_id(), consent_id="con-x"))
    with pytest.raises(InvalidArgument, match="subject_id"):
        validate_revoke_consent(RevokeConsentRequest(subject_id="", consent_id=new_consent_id()))
    good = ReleaseKeyRequest(subject_id=new_subject_id(), purpose=DELIVERY, category=CASE_FILE)
    validate_release(good)
    for change, field in (({"purpose": 0}, "purpose"), ({"category": 0}, "category"),
                          ({"category": ROUTING}, "category"), ({"subject_id": "x"}, "subject_id")):
        bad = ReleaseKeyRequest()
        bad.CopyFrom(good)
        for name, value in change.items():
            setattr(bad, name, value)
        with pytest.raises(InvalidArgument) as refused:
            validate_release(bad)
        assert refused.value.field == field


# -- fingerprints and ids -------------------------------------------------------------------------------------

def test_the_fingerprint_is_stable_for_equal_requests_and_changes_with_any_field():
    first, again = submission(), submission()
    assert request_fingerprint(first) == request_fingerprint(again)
    assert len(request_fingerprint(first)) == 32
    mutations: list[Callable[[SubmitReferralRequest], None]] = [
        lambda r: setattr(r, "minor", True), lambda r: setattr(r.case_file, "narrative", "otro"),
        lambda r: setattr(r, "idempotency_key", "idem-key-0000000002"),
        lambda r: setattr(r.needs[0], "urgency", Urgency.URGENCY_ROUTINE)]
    for mutate in mutations:
        changed = submission()
        mutate(changed)
        assert request_fingerprint(changed) != request_fingerprint(first)


def test_ids_are_prefixed_uuid7_hex_and_time_ordered():
    for make, prefix in ((new_subject_id, "sub-"), (new_referral_id, "ref-"), (new_consent_id, "con-"),
                         (new_release_id, "rel-")):
        made = [make() for _ in range(3)]
        assert all(re.fullmatch(prefix + "[0-9a-f]{12}7[0-9a-f]{19}", value) for value in made)
        assert made == sorted(made) and len(set(made)) == 3


# -- the release decision -------------------------------------------------------------------------------------

def test_the_release_decision_grants_refuses_or_waits():
    good, accepted, declined = consent(), HandoffHeld("hof-1", "accepted"), HandoffHeld("hof-0", "declined")

    def decide(held, consents) -> tuple[Outcome, type[ApplicationError] | None]:
        decision = decide_release(held, consents, SHELTER, SHELTER_ROLE, DELIVERY, CASE_FILE, NOW)
        return decision.outcome, None if decision.error is None else type(decision.error)

    assert decide([declined, accepted], [good]) == (Outcome.GRANT, None)
    assert decide([accepted], [consent(revoked_at=NOW)]) == (Outcome.REFUSE, FailedPrecondition)
    assert decide([declined], [good]) == (Outcome.WAIT, FailedPrecondition)  # not accepted (yet)
    outcome, error = decide([], [good])  # never offered anything for this subject (yet?)
    assert outcome is Outcome.WAIT and error is not None and error.__name__ == "PermissionDenied"
    outcome, error = decide([], [consent(role=LEGAL_ROLE)])  # not involved, and no consent could let it be
    assert outcome is Outcome.REFUSE and error is not None and error.__name__ == "PermissionDenied"
    granted = decide_release([accepted], [good], SHELTER, SHELTER_ROLE, DELIVERY, CASE_FILE, NOW)
    assert granted.handoff_id == "hof-1" and granted.consent is good
    with pytest.raises(RuntimeError):
        granted.refusal()
