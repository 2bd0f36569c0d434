"""EraseSubject on SQLite: who may erase, the crypto-shredding and the SubjectErased event, idempotence, and every
other RPC refusing an erased subject (FAILED_PRECONDITION; PERMISSION_DENIED to organisations with no right).

What is real: a ``network init`` network, the migrated database, the key vault, the event store, HPKE. What is
replaced: the clock and the release wait's sleep (as in test_intake_release.py).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.core.application import FailedPrecondition, NotFound, PermissionDenied
from services.core.envelope import ShreddedSubjectError
from services.core.generated.referralnet.intake.v1 import events_pb2
from services.core.generated.referralnet.intake.v1.intake_pb2 import (
    EraseSubjectRequest,
    GetSubjectConsentRequest,
    RecordConsentRequest,
    RevokeConsentRequest,
)
from services.core.keyvault import DataCategory as VaultCategory
from services.core.keyvault import KeyState
from services.intake.adapters.tables import subjects
from services.intake.domain.ids import new_subject_id
from tests.unit.intake_support import (  # noqa: F401 -- fixtures
    AUDITOR,
    COORDINATOR,
    OTHER_POLICE,
    OTHER_SHELTER,
    POLICE,
    SHELTER,
    Intake,
    grant,
    intake_fixture,
    intake_network_fixture,
    migrated_template_fixture,
    submission,
)
from tests.unit.test_intake_release import accepted_subject, opened, release_request


def erase(intake: Intake, org: str, subject_id: str, language: str = "es"):
    return intake.app.erase_subject(intake.caller(org, language), EraseSubjectRequest(subject_id=subject_id))


def test_the_referrer_erases_a_subject_its_keys_are_shredded_and_subject_erased_is_recorded(intake):
    subject_id, _ = accepted_subject(intake)
    released = intake.app.release_key(intake.caller(SHELTER), release_request(subject_id))
    intake.clock.advance(1_000)
    commits = len(intake.commits)

    answer = erase(intake, POLICE, subject_id)

    assert (answer.subject_id, answer.erased_by_org, answer.already_erased) == (subject_id, POLICE, False)
    assert answer.erased_at.ToMicroseconds() == intake.clock.now
    assert {key.state for key in intake.vault.subject_keys(subject_id)} == {KeyState.SHREDDED}
    with pytest.raises(ShreddedSubjectError):
        intake.vault.current_key(subject_id, VaultCategory.CASE_FILE)
    payloads = intake.payloads(subject_id)
    assert [p.DESCRIPTOR.name for p in payloads] == ["ConsentRecorded", "ReferralSubmitted", "KeyReleased",
                                                     "SubjectErased"]
    assert payloads[-1] == events_pb2.SubjectErased(subject_id=subject_id, erased_by_org=POLICE,
                                                    erased_at_unix_micros=intake.clock.now)
    assert len(intake.commits) == commits + 1
    row = intake.table_rows(subjects)[0]
    assert (row.erased_at_us, row.erased_by_org) == (intake.clock.now, POLICE)
    # (payloads verified every envelope and opened its routing section: crypto-shredding leaves them intact.)
    # The key released before the erasure still opens what it was released with (the provider holds it)...
    assert len(opened(intake, released)) == 1
    # ...but no new key is released any more.
    with pytest.raises(FailedPrecondition) as refused:
        intake.app.release_key(intake.caller(SHELTER, "en"), release_request(subject_id))
    assert refused.value.field == "subject_id" and "erased" in refused.value.message("en")


def test_erasing_twice_returns_the_first_erasure_and_appends_nothing(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    first = erase(intake, POLICE, answer.subject_id)
    intake.clock.advance(5_000)

    again = erase(intake, COORDINATOR, answer.subject_id)

    assert again.already_erased and (again.erased_by_org, again.erased_at) == (POLICE, first.erased_at)
    assert [p.DESCRIPTOR.name for p in intake.payloads(answer.subject_id)].count("SubjectErased") == 1


def test_an_erasure_interrupted_after_the_shredding_is_completed_by_a_retry(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    intake.vault.shred(answer.subject_id)  # as if the call had failed right after the vault's commit

    completed = erase(intake, POLICE, answer.subject_id)

    assert not completed.already_erased
    assert [p.DESCRIPTOR.name for p in intake.payloads(answer.subject_id)][-1] == "SubjectErased"


def test_a_coordinator_erases_any_subject_and_learns_when_one_is_unknown(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    assert erase(intake, COORDINATOR, answer.subject_id).erased_by_org == COORDINATOR
    with pytest.raises(NotFound):
        erase(intake, COORDINATOR, new_subject_id())


@pytest.mark.parametrize("org", [OTHER_POLICE, SHELTER, AUDITOR])
def test_an_org_that_did_not_refer_the_subject_may_not_erase_it_and_nothing_changes(intake, org):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    with pytest.raises(PermissionDenied):
        erase(intake, org, answer.subject_id)
    with pytest.raises(PermissionDenied):
        erase(intake, org, new_subject_id())  # an unknown subject looks the same
    assert {key.state for key in intake.vault.subject_keys(answer.subject_id)} == {KeyState.ACTIVE}
    assert [p.DESCRIPTOR.name for p in intake.payloads(answer.subject_id)] == ["ConsentRecorded", "ReferralSubmitted"]


def test_after_the_erasure_every_rpc_about_the_subject_is_failed_precondition(intake):
    subject_id, consent_id = accepted_subject(intake)
    erase(intake, POLICE, subject_id)
    before = intake.payloads(subject_id)
    calls: list[Callable[[], object]] = [
        lambda: intake.app.submit_referral(intake.caller(POLICE), submission(
            "idem-key-0000000002", subject_id=subject_id)),
        lambda: intake.app.record_consent(intake.caller(POLICE), RecordConsentRequest(
            subject_id=subject_id, grant=grant())),
        lambda: intake.app.revoke_consent(intake.caller(POLICE), RevokeConsentRequest(
            subject_id=subject_id, consent_id=consent_id)),
        lambda: intake.app.get_subject_consent(intake.caller(COORDINATOR), GetSubjectConsentRequest(
            subject_id=subject_id)),
        lambda: intake.app.release_key(intake.caller(SHELTER), release_request(subject_id)),
        lambda: intake.app.submit_referral(intake.caller(POLICE), submission()),  # the first submission's retry
    ]
    for call in calls:
        with pytest.raises(FailedPrecondition) as refused:
            call()
        assert refused.value.field == "subject_id"
    assert intake.payloads(subject_id) == before
    # Organisations with no right to the subject are refused as before: nothing tells them it was erased.
    with pytest.raises(PermissionDenied):
        intake.app.release_key(intake.caller(OTHER_SHELTER), release_request(subject_id))
    with pytest.raises(PermissionDenied):
        intake.app.get_subject_consent(intake.caller(OTHER_POLICE), GetSubjectConsentRequest(subject_id=subject_id))
