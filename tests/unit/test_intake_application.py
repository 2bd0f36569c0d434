"""Intake's application layer on SQLite: submissions, idempotency, consent, overrides and authorisation.

What is real: a ``network init`` network, the migrated database (SQLite file), the key vault with its file
KEK, the event store and its envelopes. What is replaced: the clock (settable). No gRPC: the application
takes a Caller, as the edge's interceptor would bind it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from services.core.application import (
    AlreadyExists,
    ApplicationError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.core.envelope import Opener, SectionKind, TamperedSectionError, UnknownKeyError, Verifier
from services.core.eventstore import ConcurrencyError
from services.core.eventstore.schema import events
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import Urgency
from services.core.generated.referralnet.consent.v1.consent_pb2 import ConsentGiver, DataCategory, Purpose
from services.core.generated.referralnet.intake.v1 import events_pb2
from services.core.generated.referralnet.intake.v1.intake_pb2 import (
    CaseFile,
    GetSubjectConsentRequest,
    RecordConsentRequest,
    ReleaseKeyRequest,
    RevokeConsentRequest,
    SubmitReferralRequest,
)
from services.core.grpcedge.caller import Caller
from services.core.keyvault import DataCategory as VaultCategory
from services.core.keyvault import KeyState
from services.core.keyvault.keys import DataKey
from services.core.keyvault.store import subjects as vault_subjects
from services.intake.adapters.tables import consents, referrers, subjects, submissions
from services.intake.domain.ids import is_subject_id
from tests.unit.intake_support import (  # noqa: F401 -- fixtures
    AUDITOR,
    COORDINATOR,
    LEGAL,
    NGO,
    OTHER_POLICE,
    OTHER_SHELTER,
    POLICE,
    PROSECUTOR,
    SHELTER,
    Intake,
    grant,
    intake_fixture,
    intake_network_fixture,
    migrated_template_fixture,
    submission,
)

GUARDIAN = ConsentGiver.CONSENT_GIVER_GUARDIAN
OVERRIDE = ConsentGiver.CONSENT_GIVER_COORDINATOR_OVERRIDE
JUSTIFICATION = "Justificación sintética: la tutora sintética está implicada en el caso ficticio."


def referral_submitted(intake: Intake, subject_id: str) -> events_pb2.ReferralSubmitted:
    found = [p for p in intake.payloads(subject_id) if isinstance(p, events_pb2.ReferralSubmitted)]
    assert len(found) == 1
    return found[0]


def override_request(subject_id: str = "") -> RecordConsentRequest:
    return RecordConsentRequest(subject_id=subject_id, grant=grant(given_by=OVERRIDE),
                                override_justification=JUSTIFICATION)


# -- submission: events and sections ----------------------------------------------------------------------------

def test_a_submission_appends_consent_then_referral_with_routing_and_case_file_sections(intake):
    request = submission()
    answer = intake.app.submit_referral(intake.caller(POLICE), request)

    assert is_subject_id(answer.subject_id) and answer.referral_id.startswith("ref-") and not answer.replayed
    assert answer.submitted_at.ToMicroseconds() == intake.clock.now and len(answer.consent_ids) == 1
    stored = intake.stream(answer.subject_id)
    assert [event.event_type for event in stored] == ["ConsentRecorded", "ReferralSubmitted"]
    assert [event.stream_id for event in stored] == [f"subject-{answer.subject_id}"] * 2
    recorded, submitted = intake.payloads(answer.subject_id)
    assert recorded.consent_id == answer.consent_ids[0] and recorded.grant == request.consents[0]
    assert recorded.recorded_by_org == POLICE
    case_key = intake.vault.current_key(answer.subject_id, VaultCategory.CASE_FILE)
    assert submitted.referral_id == answer.referral_id and submitted.referrer_org == POLICE
    assert list(submitted.needs) == list(request.needs) and submitted.region == request.region
    assert submitted.exploitation_type == request.exploitation_type and not submitted.minor
    assert list(submitted.consent_ids) == list(answer.consent_ids)
    assert submitted.case_file_key_id == case_key.key_id
    assert intake.commits == [1]

    envelope = Verifier(intake.network.directory, workers=1).verify(stored[1].envelope)
    assert envelope.header.producer_org == "svc:intake" and envelope.header.producer_service == "intake"
    assert envelope.section(SectionKind.ROUTING).key_id == intake.routing_keys.current().key_id
    assert envelope.section(SectionKind.CASE_FILE).key_id == case_key.key_id
    assert CaseFile.FromString(Opener().open(envelope, SectionKind.CASE_FILE, case_key)) == request.case_file
    assert len(Verifier(intake.network.directory).verify(stored[0].envelope).sections) == 1  # routing only


def test_a_stolen_routing_key_does_not_open_the_case_file(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    envelope = Verifier(intake.network.directory, workers=1).verify(intake.stream(answer.subject_id)[1].envelope)
    stolen = intake.routing_keys.current()
    opener = Opener()
    assert opener.open(envelope, SectionKind.ROUTING, stolen)  # it does open the routing facts

    with pytest.raises(UnknownKeyError):
        opener.open(envelope, SectionKind.CASE_FILE, stolen)
    relabelled = DataKey(envelope.section(SectionKind.CASE_FILE).key_id, stolen.key)  # forge the key id
    with pytest.raises(TamperedSectionError):
        opener.open(envelope, SectionKind.CASE_FILE, relabelled)


def test_intake_tables_record_the_subject_its_referrer_consents_and_the_submission(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())

    assert [(r.subject_id, r.minor, r.created_by_org) for r in intake.table_rows(subjects)] == [
        (answer.subject_id, False, POLICE)]
    assert [(r.org_id, r.first_referral_id) for r in intake.table_rows(referrers)] == [(POLICE, answer.referral_id)]
    assert [r.consent_id for r in intake.table_rows(consents)] == list(answer.consent_ids)
    assert [(r.submitter_org, r.referral_id) for r in intake.table_rows(submissions)] == [
        (POLICE, answer.referral_id)]


def test_a_referrer_refers_its_subject_again_with_the_consent_already_recorded(intake):
    first = intake.app.submit_referral(intake.caller(POLICE), submission())
    again = intake.app.submit_referral(intake.caller(POLICE), submission(
        "idem-key-0000000002", subject_id=first.subject_id, consents=[]))

    assert again.subject_id == first.subject_id and again.referral_id != first.referral_id
    assert [e.event_type for e in intake.stream(first.subject_id)] == [
        "ConsentRecorded", "ReferralSubmitted", "ReferralSubmitted"]


def test_a_new_subject_needs_some_consent(intake):
    with pytest.raises(FailedPrecondition) as refused:
        intake.app.submit_referral(intake.caller(NGO), submission(consents=[]))
    assert refused.value.field == "consents"


# -- idempotency ------------------------------------------------------------------------------------------------

def test_a_retry_with_the_same_bytes_gets_the_first_answer_replayed(intake):
    first = intake.app.submit_referral(intake.caller(POLICE), submission())
    intake.clock.advance(60_000_000)
    retry = intake.app.submit_referral(intake.caller(POLICE), submission())

    assert retry.replayed and retry.referral_id == first.referral_id and retry.subject_id == first.subject_id
    assert retry.submitted_at == first.submitted_at and retry.consent_ids == first.consent_ids
    assert len(intake.stream(first.subject_id)) == 2 and intake.commits == [1]


def test_the_same_key_with_other_bytes_is_already_exists(intake):
    intake.app.submit_referral(intake.caller(POLICE), submission())
    changed = submission(number=2)
    with pytest.raises(AlreadyExists) as refused:
        intake.app.submit_referral(intake.caller(POLICE), changed)
    assert refused.value.field == "idempotency_key"
    assert "different request" in refused.value.message("en") and "otra solicitud" in refused.value.message("es")


def test_an_idempotency_key_belongs_to_its_submitter(intake):
    mine = intake.app.submit_referral(intake.caller(POLICE), submission())
    theirs = intake.app.submit_referral(intake.caller(PROSECUTOR), submission())
    assert theirs.referral_id != mine.referral_id and not theirs.replayed


def test_twenty_concurrent_submissions_with_one_key_make_one_referral(intake, monkeypatch):
    """All twenty pass the first look-up before any commits (a barrier in the vault call that follows it), so
    the key's uniqueness in the transaction, not the look-up, is what makes one referral."""
    barrier, ensure = threading.Barrier(20), intake.vault.ensure_subject

    def ensure_together(subject_id: str) -> None:
        barrier.wait(timeout=20)
        ensure(subject_id)

    monkeypatch.setattr(intake.vault, "ensure_subject", ensure_together)
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: intake.app.submit_referral(intake.caller(POLICE), submission()), range(20)))

    assert len({a.referral_id for a in answers}) == 1 and len({a.subject_id for a in answers}) == 1
    assert sorted(a.replayed for a in answers) == [False] + [True] * 19
    with intake.engine.connect() as connection:
        kinds = connection.execute(sa.select(events.c.event_type)).scalars().all()
        vault_rows = connection.execute(sa.select(vault_subjects.c.subject_id, vault_subjects.c.shredded_at)).all()
    assert sorted(kinds) == ["ConsentRecorded", "ReferralSubmitted"]
    assert len(intake.table_rows(submissions)) == 1 and len(intake.table_rows(subjects)) == 1
    assert len(vault_rows) == 20  # every racer made keys for its own new subject...
    live = [row.subject_id for row in vault_rows if row.shredded_at is None]
    assert live == [answers[0].subject_id]  # ...and the 19 that lost shredded theirs
    assert all(key.state is KeyState.ACTIVE for key in intake.vault.subject_keys(live[0]))
    assert intake.commits == [1]


# -- consent ------------------------------------------------------------------------------------------------------

def test_referrers_record_revoke_and_read_consent_and_revoking_twice_changes_nothing(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    intake.clock.advance(1_000)
    legal = grant(org=LEGAL, purposes=[Purpose.PURPOSE_LEGAL_PROCEEDINGS])
    added = intake.app.record_consent(intake.caller(POLICE), RecordConsentRequest(subject_id=answer.subject_id,
                                                                                   grant=legal)).consent
    assert added.grant.recipient.org_id == LEGAL and added.recorded_by_org == POLICE
    intake.clock.advance(1_000)
    revoke = RevokeConsentRequest(subject_id=answer.subject_id, consent_id=answer.consent_ids[0])
    revoked = intake.app.revoke_consent(intake.caller(POLICE), revoke).consent
    assert revoked.revoked_at.ToMicroseconds() == intake.clock.now and revoked.revoked_by_org == POLICE
    intake.clock.advance(1_000)
    assert intake.app.revoke_consent(intake.caller(COORDINATOR), revoke).consent == revoked

    listed = intake.app.get_subject_consent(intake.caller(POLICE), GetSubjectConsentRequest(
        subject_id=answer.subject_id)).consents
    assert [c.consent_id for c in listed] == [answer.consent_ids[0], added.consent_id]
    assert listed[0] == revoked and not listed[1].HasField("revoked_at")
    assert [e.event_type for e in intake.stream(answer.subject_id)] == [
        "ConsentRecorded", "ReferralSubmitted", "ConsentRecorded", "ConsentRevoked"]
    assert intake.payloads(answer.subject_id)[3] == events_pb2.ConsentRevoked(
        consent_id=answer.consent_ids[0], subject_id=answer.subject_id, revoked_by_org=POLICE,
        revoked_at_unix_micros=revoked.revoked_at.ToMicroseconds())


def test_an_unknown_consent_id_is_not_found_for_a_referrer(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    with pytest.raises(NotFound) as missing:
        intake.app.revoke_consent(intake.caller(POLICE), RevokeConsentRequest(
            subject_id=answer.subject_id, consent_id="con-" + "0" * 32))
    assert missing.value.field == "consent_id"


def test_concurrent_consents_on_one_subject_all_land_in_one_gap_free_stream(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())

    def record(index: int) -> str:
        request = RecordConsentRequest(subject_id=answer.subject_id, grant=grant(org=[LEGAL, SHELTER][index % 2]))
        return str(intake.app.record_consent(intake.caller(POLICE), request).consent.consent_id)

    with ThreadPoolExecutor(8) as pool:
        recorded = list(pool.map(record, range(8)))

    stored = intake.stream(answer.subject_id)
    assert [event.stream_sequence for event in stored] == list(range(1, 11))
    assert {p.consent_id for p in intake.payloads(answer.subject_id)[2:]} == set(recorded)


# -- minors and the coordinator's override --------------------------------------------------------------------------

def test_a_minor_without_guardian_consent_is_refused_and_nothing_is_kept(intake):
    with pytest.raises(FailedPrecondition) as refused:
        intake.app.submit_referral(intake.caller(POLICE), submission(minor=True))

    assert refused.value.field == "consents"
    assert intake.table_rows(subjects) == [] and intake.table_rows(events) == []
    assert intake.table_rows(vault_subjects) == []  # no key was made for the refused subject
    accepted = intake.app.submit_referral(intake.caller(POLICE), submission(
        "idem-key-0000000002", minor=True, consents=[grant(given_by=GUARDIAN)]))
    assert referral_submitted(intake, accepted.subject_id).minor


def test_a_coordinator_override_registers_a_minor_who_may_then_be_referred(intake):
    recorded = intake.app.record_consent(intake.caller(COORDINATOR), override_request()).consent
    subject_id = recorded.subject_id

    assert is_subject_id(subject_id) and recorded.grant.given_by == OVERRIDE
    [stored] = intake.stream(subject_id)
    assert stored.event_type == "ConsentOverrideRecorded"
    envelope = Verifier(intake.network.directory, workers=1).verify(stored.envelope)
    case_key = intake.vault.current_key(subject_id, VaultCategory.CASE_FILE)
    justification = events_pb2.OverrideJustification.FromString(
        Opener().open(envelope, SectionKind.CASE_FILE, case_key))
    assert justification.justification == JUSTIFICATION
    [payload] = intake.payloads(subject_id)
    assert isinstance(payload, events_pb2.ConsentOverrideRecorded) and payload.recorded_by_org == COORDINATOR
    assert JUSTIFICATION.encode() not in stored.envelope  # sealed, never in the clear

    referral = intake.app.submit_referral(intake.caller(OTHER_POLICE), submission(
        minor=True, subject_id=subject_id, consents=[]))
    assert referral.subject_id == subject_id and referral_submitted(intake, subject_id).minor


def test_only_a_coordinator_records_an_override_and_only_for_a_minor(intake):
    adult = intake.app.submit_referral(intake.caller(POLICE), submission())
    with pytest.raises(PermissionDenied):
        intake.app.record_consent(intake.caller(POLICE), override_request(adult.subject_id))
    with pytest.raises(FailedPrecondition) as refused:
        intake.app.record_consent(intake.caller(COORDINATOR), override_request(adult.subject_id))
    assert refused.value.field == "grant.given_by"
    with pytest.raises(NotFound):  # a coordinator may know any subject id: an unknown one is not found
        intake.app.record_consent(intake.caller(COORDINATOR), override_request("sub-" + "0" * 32))


def test_a_revoked_override_no_longer_lets_a_minor_be_referred(intake):
    recorded = intake.app.record_consent(intake.caller(COORDINATOR), override_request()).consent
    intake.app.revoke_consent(intake.caller(COORDINATOR), RevokeConsentRequest(
        subject_id=recorded.subject_id, consent_id=recorded.consent_id))
    with pytest.raises(PermissionDenied):  # nor does anything open the subject to other referrers
        intake.app.submit_referral(intake.caller(POLICE), submission(
            minor=True, subject_id=recorded.subject_id, consents=[grant(given_by=GUARDIAN)]))


# -- authorisation: an uninvolved organisation is refused everywhere -----------------------------------------------

def test_an_uninvolved_org_is_refused_every_rpc(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    subject_id, consent_id = answer.subject_id, answer.consent_ids[0]
    stranger = intake.caller(OTHER_POLICE)  # a police unit that never referred this person
    calls: dict[str, Callable[[Caller], object]] = {
        "SubmitReferral": lambda caller: intake.app.submit_referral(caller, submission(
            "idem-key-stranger-0001", subject_id=subject_id)),
        "RecordConsent": lambda caller: intake.app.record_consent(caller, RecordConsentRequest(
            subject_id=subject_id, grant=grant())),
        "RevokeConsent": lambda caller: intake.app.revoke_consent(caller, RevokeConsentRequest(
            subject_id=subject_id, consent_id=consent_id)),
        "GetSubjectConsent": lambda caller: intake.app.get_subject_consent(caller, GetSubjectConsentRequest(
            subject_id=subject_id)),
        "ReleaseKey": lambda caller: intake.app.release_key(caller, ReleaseKeyRequest(
            subject_id=subject_id, purpose=Purpose.PURPOSE_SERVICE_DELIVERY,
            category=DataCategory.DATA_CATEGORY_CASE_FILE)),
    }
    for name, call in calls.items():
        for org in (OTHER_POLICE, AUDITOR, OTHER_SHELTER):
            with pytest.raises(PermissionDenied) as refused:
                call(intake.caller(org, language="en"))
            assert refused.value.message("en") == "your organisation is not allowed to do this", (name, org)
            assert refused.value.message("es") == "su organización no tiene permiso para esta operación"
    assert [e.event_type for e in intake.stream(subject_id)] == ["ConsentRecorded", "ReferralSubmitted"]
    assert stranger.org_id not in {r.org_id for r in intake.table_rows(referrers)}


def test_an_unknown_subject_looks_the_same_as_someone_elses(intake):
    unknown = "sub-" + "0" * 32
    calls: list[Callable[[], object]] = [
        lambda: intake.app.submit_referral(intake.caller(POLICE), submission(subject_id=unknown)),
        lambda: intake.app.get_subject_consent(intake.caller(POLICE), GetSubjectConsentRequest(subject_id=unknown)),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()
    assert intake.table_rows(vault_subjects) == []  # no key is made for an id a caller made up


def test_only_police_prosecutors_and_ngos_submit(intake):
    for org in (SHELTER, LEGAL, COORDINATOR, AUDITOR):
        with pytest.raises(PermissionDenied):
            intake.app.submit_referral(intake.caller(org), submission())
    for org in (POLICE, PROSECUTOR, NGO):
        assert intake.app.submit_referral(intake.caller(org), submission()).referral_id


def test_a_coordinator_reads_any_subjects_consent(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    listed = intake.app.get_subject_consent(intake.caller(COORDINATOR), GetSubjectConsentRequest(
        subject_id=answer.subject_id))
    assert [c.consent_id for c in listed.consents] == list(answer.consent_ids)


def test_an_invalid_request_names_its_field_and_keeps_nothing(intake):
    bad = submission()
    bad.needs[1].urgency = Urgency.URGENCY_UNSPECIFIED
    with pytest.raises(ApplicationError) as refused:
        intake.app.submit_referral(intake.caller(POLICE), bad)
    assert refused.value.field == "needs[1].urgency" and refused.value.message("en").startswith("needs[1].urgency: ")
    assert intake.table_rows(submissions) == [] and intake.table_rows(events) == []


def test_a_retry_is_answered_even_after_its_consent_expiry_would_no_longer_validate(intake):
    request = submission(consents=[grant(expires_at=intake.clock.now + 10_000_000)])
    first = intake.app.submit_referral(intake.caller(POLICE), request)
    intake.clock.advance(20_000_000)  # the consent in the request has expired by now
    assert intake.app.submit_referral(intake.caller(POLICE), request).referral_id == first.referral_id


def test_a_submission_request_is_not_changed_by_the_application(intake):
    request = submission()
    before = SubmitReferralRequest()
    before.CopyFrom(request)
    intake.app.submit_referral(intake.caller(POLICE), request)
    assert request == before


# -- transient failures -------------------------------------------------------------------------------------------

def test_a_stream_that_keeps_moving_is_unavailable_and_the_new_subjects_keys_are_shredded(intake, monkeypatch):
    attempts: list[int] = []

    def always_behind(session, stream_id, expected_version, new_events):
        attempts.append(expected_version)
        raise ConcurrencyError(stream_id, expected_version, expected_version + 1)

    monkeypatch.setattr(intake.store, "append", always_behind)
    with pytest.raises(Unavailable) as unavailable:
        intake.app.submit_referral(intake.caller(POLICE), submission())

    assert len(attempts) == intake.app.context.append_attempts and "retry" in unavailable.value.message("en")
    assert intake.table_rows(submissions) == [] and intake.table_rows(subjects) == []
    [vault_row] = intake.table_rows(vault_subjects)
    assert vault_row.shredded_at is not None  # the keys made for the subject that never came to be
    assert intake.commits == []


def test_a_transient_database_error_is_retried(intake, monkeypatch):
    append, failures = intake.store.append, [OperationalError("INSERT", {}, Exception("database is locked"))]

    def flaky(*args, **kwargs):
        if failures:
            raise failures.pop()
        return append(*args, **kwargs)

    monkeypatch.setattr(intake.store, "append", flaky)
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    assert [e.event_type for e in intake.stream(answer.subject_id)] == ["ConsentRecorded", "ReferralSubmitted"]


def test_a_failing_after_commit_hook_does_not_undo_the_commit(intake):
    def broken() -> None:
        raise RuntimeError("relay gone")

    intake.app.context.after_commit = broken
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    assert len(intake.stream(answer.subject_id)) == 2
