"""ReleaseKey on SQLite: granted to an active handoff with covering consent, refused otherwise; the worker's
view of handoffs (apply_referral_event); the provider's client-side opening of the case file.

What is real: a ``network init`` network (the provider's own KEM key is loaded from its folder), the
migrated database, the key vault, the event store, HPKE. What is replaced: the clock and the release wait's
sleep (a fake that advances a fake monotonic clock and counts polls), so the bounded wait takes no time.
"""

from __future__ import annotations

import pytest

from services.core.application import FailedPrecondition, InvalidArgument, PermissionDenied
from services.core.envelope import BadSignatureError, EventHeader, WrongRecipientError, new_event_id
from services.core.events import UnprocessableEvent
from services.core.generated.referralnet.consent.v1.consent_pb2 import DataCategory, Purpose
from services.core.generated.referralnet.intake.v1 import events_pb2
from services.core.generated.referralnet.intake.v1.intake_pb2 import (
    RecordConsentRequest,
    ReleaseKeyRequest,
    ReleaseKeyResponse,
    RevokeConsentRequest,
)
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral_events
from services.core.identity.keystore import load_org_kem_key
from services.core.keyvault import DataCategory as VaultCategory
from services.core.keyvault import ReleasedKey
from services.intake.adapters.referral_events import decode_referral_event
from services.intake.adapters.tables import handoffs, releases
from services.intake.application.context import ReleaseWait
from services.intake.client_support import open_case_files
from services.intake.domain.handoffs import HandoffState
from tests.integration.support.events import EventFactory
from tests.unit.intake_support import (  # noqa: F401 -- fixtures
    LEGAL,
    OTHER_SHELTER,
    POLICE,
    SHELTER,
    Intake,
    case_file,
    grant,
    handoff_event,
    intake_fixture,
    intake_network_fixture,
    migrated_template_fixture,
    submission,
    wall_seconds,
)

DELIVERY = Purpose.PURPOSE_SERVICE_DELIVERY


def release_request(subject_id: str, purpose=DELIVERY, category=DataCategory.DATA_CATEGORY_CASE_FILE):
    return ReleaseKeyRequest(subject_id=subject_id, purpose=purpose, category=category)


def accepted_subject(intake: Intake, provider: str = SHELTER) -> tuple[str, str]:
    """A submitted subject (consent: shelters, service delivery) whose handoff ``provider`` accepted."""
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    intake.apply(handoff_event("HandoffOffered", answer.subject_id, provider, referral_id=answer.referral_id), 1)
    intake.apply(handoff_event("HandoffAccepted", answer.subject_id, provider, referral_id=answer.referral_id), 2)
    return answer.subject_id, answer.consent_ids[0]


def opened(intake: Intake, response: ReleaseKeyResponse, org: str = SHELTER):
    return open_case_files(response, org, f"{org}#kem-1", load_org_kem_key(intake.root, org),
                           intake.network.directory)


def test_a_provider_with_an_accepted_handoff_and_consent_gets_the_key_and_opens_the_case_file(intake):
    subject_id, consent_id = accepted_subject(intake)
    intake.clock.advance(1_000)

    response = intake.app.release_key(intake.caller(SHELTER), release_request(subject_id))

    key = intake.vault.current_key(subject_id, VaultCategory.CASE_FILE)
    assert response.key_id == key.key_id and response.release_id.startswith("rel-")
    assert response.consent_id == consent_id and response.handoff_id == "hof-1"
    assert response.released_at.ToMicroseconds() == intake.clock.now
    released = ReleasedKey.from_bytes(response.released_key)
    assert (released.recipient_org, released.recipient_kem_key_id, released.purpose) == (
        SHELTER, f"{SHELTER}#kem-1", "service_delivery")
    assert len(response.envelopes) == 1  # the ReferralSubmitted: the only envelope with a case-file section
    assert opened(intake, response) == [case_file()]
    assert intake.wait.polls == 0


def test_every_release_is_a_key_released_event_and_a_custody_row(intake):
    subject_id, consent_id = accepted_subject(intake)
    first = intake.app.release_key(intake.caller(SHELTER), release_request(subject_id))
    second = intake.app.release_key(intake.caller(SHELTER), release_request(subject_id))

    custody = [p for p in intake.payloads(subject_id) if isinstance(p, events_pb2.KeyReleased)]
    assert [c.release_id for c in custody] == [first.release_id, second.release_id]
    assert custody[0] == events_pb2.KeyReleased(
        release_id=first.release_id, subject_id=subject_id, key_id=first.key_id,
        category=DataCategory.DATA_CATEGORY_CASE_FILE, purpose=DELIVERY, recipient_org=SHELTER,
        recipient_kem_key_id=f"{SHELTER}#kem-1", consent_id=consent_id, handoff_id="hof-1",
        released_at_unix_micros=first.released_at.ToMicroseconds())
    assert [(r.release_id, r.recipient_org) for r in intake.table_rows(releases)] == [
        (first.release_id, SHELTER), (second.release_id, SHELTER)]
    assert len(second.envelopes) == 1  # KeyReleased carries no case-file section


def test_the_case_file_opens_only_for_the_org_it_was_released_to(intake):
    subject_id, _ = accepted_subject(intake)
    response = intake.app.release_key(intake.caller(SHELTER), release_request(subject_id))
    with pytest.raises(WrongRecipientError):
        opened(intake, response, org=OTHER_SHELTER)


def test_an_envelope_not_produced_by_intake_is_refused_client_side(intake):
    subject_id, _ = accepted_subject(intake)
    response = intake.app.release_key(intake.caller(SHELTER), release_request(subject_id))
    forged = ReleaseKeyResponse()
    forged.CopyFrom(response)
    del forged.envelopes[:]
    forged.envelopes.append(EventFactory(intake.root, org_id=POLICE).event("subject-x", 1).wire)  # a real org key
    with pytest.raises(BadSignatureError, match="not intake"):
        opened(intake, forged)


def test_revoking_the_consent_refuses_the_next_release_at_once(intake):
    subject_id, consent_id = accepted_subject(intake)
    intake.app.release_key(intake.caller(SHELTER), release_request(subject_id))
    intake.app.revoke_consent(intake.caller(POLICE), RevokeConsentRequest(subject_id=subject_id,
                                                                          consent_id=consent_id))
    with pytest.raises(FailedPrecondition) as refused:
        intake.app.release_key(intake.caller(SHELTER, language="en"), release_request(subject_id))
    assert "no consent in force" in refused.value.message("en")
    assert intake.wait.polls == 0  # refused without waiting
    assert [p.DESCRIPTOR.name for p in intake.payloads(subject_id)][-1] == "ConsentRevoked"


def test_an_expired_consent_refuses_the_release(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission(
        consents=[grant(expires_at=intake.clock.now + 60_000_000)]))
    intake.apply(handoff_event("HandoffAccepted", answer.subject_id, SHELTER), 1)
    intake.clock.advance(60_000_000)
    with pytest.raises(FailedPrecondition):
        intake.app.release_key(intake.caller(SHELTER), release_request(answer.subject_id))


def test_consent_must_cover_the_purpose_asked_for(intake):
    subject_id, _ = accepted_subject(intake)
    with pytest.raises(FailedPrecondition):
        intake.app.release_key(intake.caller(SHELTER), release_request(
            subject_id, purpose=Purpose.PURPOSE_LEGAL_PROCEEDINGS))


def test_consent_naming_the_org_covers_it_whatever_its_role(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission(consents=[grant(org=LEGAL)]))
    intake.apply(handoff_event("HandoffAccepted", answer.subject_id, LEGAL), 1)
    response = intake.app.release_key(intake.caller(LEGAL), release_request(answer.subject_id))
    assert opened(intake, response, org=LEGAL) == [case_file()]


def test_without_an_active_handoff_the_release_waits_its_bound_then_fails_precondition(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    intake.apply(handoff_event("HandoffOffered", answer.subject_id, SHELTER), 1)  # offered, never accepted

    with pytest.raises(FailedPrecondition) as refused:
        intake.app.release_key(intake.caller(SHELTER, language="en"), release_request(answer.subject_id))

    assert "no accepted or in-service handoff" in refused.value.message("en")
    assert intake.wait.elapsed == pytest.approx(3.0) and 60 <= intake.wait.polls <= 61  # every 50 ms for 3 s
    assert intake.table_rows(releases) == []


def test_the_wait_is_bounded_by_the_calls_deadline(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    intake.apply(handoff_event("HandoffOffered", answer.subject_id, SHELTER), 1)
    intake.wait.deadline = 0.75
    with pytest.raises(FailedPrecondition):
        intake.app.release_key(intake.caller(SHELTER), release_request(answer.subject_id))
    assert intake.wait.elapsed == pytest.approx(0.5)  # the deadline, less the margin kept for the answer


def test_an_acceptance_applied_during_the_wait_is_granted(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    intake.apply(handoff_event("HandoffOffered", answer.subject_id, SHELTER), 1)
    intake.wait.on_poll.append(lambda: intake.wait.polls == 4 and intake.apply(
        handoff_event("HandoffAccepted", answer.subject_id, SHELTER), 2))

    response = intake.app.release_key(intake.caller(SHELTER), release_request(answer.subject_id))

    assert response.handoff_id == "hof-1" and intake.wait.polls == 4


def test_a_real_wait_is_short_when_the_deadline_is(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    intake.apply(handoff_event("HandoffOffered", answer.subject_id, SHELTER), 1)
    intake.app.context.release_wait = ReleaseWait(deadline_remaining=lambda: 0.45)  # real sleep: 0.2 s wait

    def call() -> None:
        with pytest.raises(FailedPrecondition):
            intake.app.release_key(intake.caller(SHELTER), release_request(answer.subject_id))

    assert 0.15 < wall_seconds(call) < 1.5


@pytest.mark.parametrize("ending", ["HandoffWithdrawn", "ServiceCompleted", "HandoffExpired", "HandoffDeclined"])
def test_a_handoff_that_ended_no_longer_releases(intake, ending):
    subject_id, _ = accepted_subject(intake)
    intake.apply(handoff_event(ending, subject_id, SHELTER), 3)
    with pytest.raises(FailedPrecondition):
        intake.app.release_key(intake.caller(SHELTER), release_request(subject_id))


def test_in_service_releases_too(intake):
    subject_id, _ = accepted_subject(intake)
    intake.apply(handoff_event("ServiceStarted", subject_id, SHELTER), 3)
    assert intake.app.release_key(intake.caller(SHELTER), release_request(subject_id)).key_id


def test_a_provider_never_offered_the_subject_is_refused_permission_after_the_wait(intake):
    subject_id, _ = accepted_subject(intake)
    with pytest.raises(PermissionDenied):  # a shelter: covered by the consent's role, but not involved
        intake.app.release_key(intake.caller(OTHER_SHELTER), release_request(subject_id))
    assert intake.wait.elapsed == pytest.approx(3.0)


def test_a_provider_no_consent_covers_is_refused_permission_at_once(intake):
    subject_id, _ = accepted_subject(intake)  # consent names shelters; a legal-aid provider is not covered
    with pytest.raises(PermissionDenied):
        intake.app.release_key(intake.caller(LEGAL), release_request(subject_id))
    assert intake.wait.polls == 0


def test_a_non_provider_is_refused_permission_at_once(intake):
    subject_id, _ = accepted_subject(intake)
    with pytest.raises(PermissionDenied):
        intake.app.release_key(intake.caller(POLICE), release_request(subject_id))
    assert intake.wait.polls == 0


def test_routing_facts_are_not_released_as_a_key(intake):
    subject_id, _ = accepted_subject(intake)
    with pytest.raises(InvalidArgument) as refused:
        intake.app.release_key(intake.caller(SHELTER), release_request(
            subject_id, category=DataCategory.DATA_CATEGORY_ROUTING))
    assert refused.value.field == "category"


def test_a_consent_recorded_later_enables_a_release(intake):
    answer = intake.app.submit_referral(intake.caller(POLICE), submission(consents=[grant(org=LEGAL)]))
    intake.apply(handoff_event("HandoffAccepted", answer.subject_id, SHELTER), 1)
    with pytest.raises(FailedPrecondition):
        intake.app.release_key(intake.caller(SHELTER), release_request(answer.subject_id))
    intake.app.record_consent(intake.caller(POLICE), RecordConsentRequest(subject_id=answer.subject_id,
                                                                          grant=grant(org=SHELTER)))
    assert intake.app.release_key(intake.caller(SHELTER), release_request(answer.subject_id)).key_id


# -- the worker's view of handoffs ----------------------------------------------------------------------------

def test_handoff_events_move_the_handoff_and_stale_ones_change_nothing(intake):
    subject_id = "sub-" + "1" * 32
    assert intake.apply(handoff_event("HandoffOffered", subject_id, SHELTER), 1)
    assert intake.apply(handoff_event("HandoffAccepted", subject_id, SHELTER), 2)
    assert not intake.apply(handoff_event("HandoffOffered", subject_id, SHELTER), 1)  # redelivered, older
    assert not intake.apply(handoff_event("HandoffDeclined", subject_id, SHELTER), 2)  # same sequence
    assert intake.apply(handoff_event("ServiceStarted", subject_id, SHELTER), 5)
    [row] = intake.table_rows(handoffs)
    assert (row.handoff_id, row.subject_id, row.provider_org, row.state, row.last_sequence) == (
        "hof-1", subject_id, SHELTER, HandoffState.IN_SERVICE, 5)


def test_referral_events_about_no_handoff_are_ignored(intake):
    subject_id = "sub-" + "2" * 32
    for message in (referral_events.ReferralOpened(referral_id="ref-1", subject_id=subject_id),
                    referral_events.ReferralEscalated(referral_id="ref-1", subject_id=subject_id),
                    referral_events.ReferralClosed(referral_id="ref-1", subject_id=subject_id),
                    referral_events.CapacityUpdated(org_id=SHELTER, available_places=3)):
        assert not intake.apply(message, 1)
    assert intake.table_rows(handoffs) == []


def _header(event_type: str, producer: str = "svc:referral") -> EventHeader:
    return EventHeader(event_id=new_event_id(), event_type=event_type, schema_version=1, stream_id="referral-ref-1",
                       stream_sequence=3, occurred_at_unix_micros=1_780_000_000_000_000, producer_org=producer,
                       producer_service="referral", signing_key_id=f"{producer}#sig-1")


def test_the_worker_decodes_referrals_events_and_nobody_elses():
    accepted = handoff_event("HandoffAccepted", "sub-" + "3" * 32, SHELTER)
    decoded = decode_referral_event(_header("HandoffAccepted"), accepted.SerializeToString())
    assert decoded.message == accepted and decoded.stream_sequence == 3
    assert decoded.stream_id == "referral-ref-1" and decoded.occurred_at_micros == 1_780_000_000_000_000

    with pytest.raises(UnprocessableEvent) as forged:
        decode_referral_event(_header("HandoffAccepted", producer="alb-mdd-01"), accepted.SerializeToString())
    assert forged.value.reason == "unexpected_producer"
    with pytest.raises(UnprocessableEvent) as unknown:
        decode_referral_event(_header("HandoffTeleported"), b"")
    assert unknown.value.reason == "unknown_event_type"
    with pytest.raises(UnprocessableEvent) as malformed:
        decode_referral_event(_header("HandoffAccepted"), b"\xff\xff\xff")
    assert malformed.value.reason == "malformed_payload"


def test_nothing_is_released_from_or_added_to_a_shredded_subject(intake):
    subject_id, _ = accepted_subject(intake)
    intake.vault.shred(subject_id)
    with pytest.raises(FailedPrecondition) as refused:
        intake.app.release_key(intake.caller(SHELTER, language="en"), release_request(subject_id))
    assert refused.value.field == "subject_id" and "erased" in refused.value.message("en")
    with pytest.raises(FailedPrecondition):
        intake.app.submit_referral(intake.caller(POLICE), submission("idem-key-0000000002", subject_id=subject_id,
                                                                      consents=[]))
    assert [p.DESCRIPTOR.name for p in intake.payloads(subject_id)] == ["ConsentRecorded", "ReferralSubmitted"]
