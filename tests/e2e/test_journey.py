"""The product's main story, end to end: one referral from a police unit to three closed handoffs.

pol-mdd-01 (police, Madre de Dios) refers an adult victim of forced labour in mining who needs a shelter,
legal aid and psychosocial care. Routing by ring (ADR 11): the shelter in Madre de Dios (alb-mdd-01) is
offered first and declines; the next shelter, in neighbouring Cusco (alb-cus-01, adults), accepts and
obtains the case file. Legal aid goes to leg-aqp-01 (it serves neighbouring Puno) and is accepted. The
psychosocial centre in Cusco (psi-cus-01) lets its offer expire (the e2e network's psychosocial deadline
is a few seconds) and the one in Lima (psi-lim-01, any other department) is offered it and accepts. Each
provider starts and completes its service; the referrer sees every need completed with its history and
the referral closed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.consent.v1 import consent_pb2 as consent
from services.core.generated.referralnet.referral.v1 import referral_pb2 as ref
from services.core.identity.directory import Directory
from services.core.identity.keystore import load_org_kem_key
from services.core.identity.records import kem_key_id
from services.intake.client_support import open_case_files
from tests.e2e.conftest import PSYCHOSOCIAL_DEADLINE_S
from tests.e2e.support import (
    RPC_TIMEOUT_S,
    Partner,
    get_referral,
    grant,
    need_of,
    open_released_case_files,
    referral_request,
    referral_when,
    release_request,
    status_code,
    trail,
    wait_for,
    wait_for_handoff,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SHELTER, LEGAL, PSYCHOSOCIAL = vocab.SERVICE_TYPE_SHELTER, vocab.SERVICE_TYPE_LEGAL_AID, vocab.SERVICE_TYPE_PSYCHOSOCIAL
SHELTER_DEADLINE_S = 2 * 3600  # the default (ADR 11): the e2e network shortens only psychosocial


def _seconds_between(start: Timestamp, end: Timestamp) -> float:
    return (end.ToNanoseconds() - start.ToNanoseconds()) / 1e9


def test_adult_referral_from_submission_to_closed_loop(partner: Callable[[str], Partner], network_dir: Path,
                                                       directory: Directory) -> None:
    police, coordinator = partner("pol-mdd-01"), partner("coo-lim-01")
    request = referral_request(
        needs=[(SHELTER, vocab.URGENCY_IMMEDIATE), (LEGAL, vocab.URGENCY_PRIORITY),
               (PSYCHOSOCIAL, vocab.URGENCY_ROUTINE)],
        region=vocab.REGION_MADRE_DE_DIOS, exploitation_type=vocab.EXPLOITATION_TYPE_FORCED_LABOUR_MINING,
        case_file_number=101, consents=[
            grant(vocab.ORG_ROLE_SHELTER),
            grant(vocab.ORG_ROLE_LEGAL, [consent.PURPOSE_SERVICE_DELIVERY, consent.PURPOSE_LEGAL_PROCEEDINGS]),
            grant(vocab.ORG_ROLE_PSYCHOSOCIAL),
        ])
    submitted = police.intake.SubmitReferral(request, timeout=RPC_TIMEOUT_S)
    referral_id, subject_id = submitted.referral_id, submitted.subject_id
    assert referral_id.startswith("ref-") and subject_id.startswith("sub-")
    assert not submitted.replayed and len(submitted.consent_ids) == 3

    # Shelter: the local one sees the offer (routing facts only) and declines; the next one accepts.
    local_shelter = partner("alb-mdd-01")
    offer = wait_for_handoff(local_shelter, referral_id, service_type=SHELTER)
    assert (offer.subject_id, offer.region, offer.minor, offer.exploitation_type, offer.urgency) == (
        subject_id, vocab.REGION_MADRE_DE_DIOS, False, vocab.EXPLOITATION_TYPE_FORCED_LABOUR_MINING,
        vocab.URGENCY_IMMEDIATE)
    assert offer.provider_org == "alb-mdd-01"
    assert abs(_seconds_between(offer.offered_at, offer.offer_expires_at) - SHELTER_DEADLINE_S) < 2
    declined = local_shelter.referral.DeclineHandoff(ref.DeclineHandoffRequest(
        handoff_id=offer.handoff_id, reason=ref.DECLINE_REASON_NO_CAPACITY, note="Sin plazas esta semana."),
        timeout=RPC_TIMEOUT_S).handoff
    assert (declined.state, declined.decline_reason) == (ref.HANDOFF_STATE_DECLINED, ref.DECLINE_REASON_NO_CAPACITY)
    assert status_code(lambda: local_shelter.referral.AcceptHandoff(
        ref.AcceptHandoffRequest(handoff_id=offer.handoff_id), timeout=RPC_TIMEOUT_S)
    ) == grpc.StatusCode.FAILED_PRECONDITION  # a declined offer cannot be accepted any more

    shelter = partner("alb-cus-01")
    shelter_offer = wait_for_handoff(shelter, referral_id, service_type=SHELTER)
    accepted = shelter.referral.AcceptHandoff(ref.AcceptHandoffRequest(handoff_id=shelter_offer.handoff_id),
                                              timeout=RPC_TIMEOUT_S).handoff
    assert accepted.state == ref.HANDOFF_STATE_ACCEPTED

    # The accepting shelter obtains the case-file key and opens the case file on its own side.
    released = shelter.intake.ReleaseKey(release_request(subject_id), timeout=RPC_TIMEOUT_S)
    assert released.release_id.startswith("rel-") and released.handoff_id == shelter_offer.handoff_id
    assert released.consent_id in submitted.consent_ids
    assert open_released_case_files(network_dir, "alb-cus-01", released) == [request.case_file]
    helper_files = open_case_files(released, "alb-cus-01", kem_key_id("alb-cus-01"),
                                   load_org_kem_key(network_dir, "alb-cus-01"), directory)
    assert list(helper_files) == [request.case_file]

    # Legal aid: the provider serving a neighbouring department accepts.
    legal = partner("leg-aqp-01")
    legal_offer = wait_for_handoff(legal, referral_id, service_type=LEGAL)
    legal.referral.AcceptHandoff(ref.AcceptHandoffRequest(handoff_id=legal_offer.handoff_id), timeout=RPC_TIMEOUT_S)

    # Psychosocial: the first offer expires unanswered; the next centre is offered it and accepts.
    lapsing, next_centre = partner("psi-cus-01"), partner("psi-lim-01")
    first = wait_for_handoff(lapsing, referral_id, service_type=PSYCHOSOCIAL)
    assert abs(_seconds_between(first.offered_at, first.offer_expires_at) - PSYCHOSOCIAL_DEADLINE_S) < 1
    wait_for_handoff(lapsing, referral_id, service_type=PSYCHOSOCIAL, state=ref.HANDOFF_STATE_EXPIRED,
                     timeout_s=PSYCHOSOCIAL_DEADLINE_S + 30)
    assert status_code(lambda: lapsing.referral.AcceptHandoff(
        ref.AcceptHandoffRequest(handoff_id=first.handoff_id), timeout=RPC_TIMEOUT_S)
    ) == grpc.StatusCode.FAILED_PRECONDITION  # accepting an expired offer
    psych_offer = wait_for_handoff(next_centre, referral_id, service_type=PSYCHOSOCIAL)
    next_centre.referral.AcceptHandoff(ref.AcceptHandoffRequest(handoff_id=psych_offer.handoff_id),
                                       timeout=RPC_TIMEOUT_S)

    # Each provider starts and completes its service.
    for provider, handoff in ((shelter, shelter_offer), (legal, legal_offer), (next_centre, psych_offer)):
        started = provider.referral.StartService(ref.StartServiceRequest(handoff_id=handoff.handoff_id),
                                                 timeout=RPC_TIMEOUT_S).handoff
        assert started.state == ref.HANDOFF_STATE_IN_SERVICE
        completed = provider.referral.CompleteService(ref.CompleteServiceRequest(
            handoff_id=handoff.handoff_id, outcome=ref.SERVICE_OUTCOME_COMPLETED_AS_PLANNED,
            note="Servicio concluido según lo previsto."), timeout=RPC_TIMEOUT_S).handoff
        assert (completed.state, completed.outcome) == (ref.HANDOFF_STATE_COMPLETED,
                                                        ref.SERVICE_OUTCOME_COMPLETED_AS_PLANNED)

    # The referrer sees the whole loop, and the referral closed.
    closed = referral_when(police, referral_id, lambda r: r.state == ref.REFERRAL_STATE_CLOSED, "closed")
    assert (closed.referrer_org, closed.subject_id, closed.region, closed.minor) == (
        "pol-mdd-01", subject_id, vocab.REGION_MADRE_DE_DIOS, False)
    assert closed.HasField("closed_at") and closed.HasField("submitted_at")
    assert {need.service_type: need.state for need in closed.needs} == {
        SHELTER: ref.NEED_STATE_COMPLETED, LEGAL: ref.NEED_STATE_COMPLETED, PSYCHOSOCIAL: ref.NEED_STATE_COMPLETED}
    assert trail(need_of(closed, SHELTER)) == [("alb-mdd-01", "HANDOFF_STATE_DECLINED"),
                                               ("alb-cus-01", "HANDOFF_STATE_COMPLETED")]
    assert trail(need_of(closed, LEGAL)) == [("leg-aqp-01", "HANDOFF_STATE_COMPLETED")]
    assert trail(need_of(closed, PSYCHOSOCIAL)) == [("psi-cus-01", "HANDOFF_STATE_EXPIRED"),
                                                    ("psi-lim-01", "HANDOFF_STATE_COMPLETED")]
    assert need_of(closed, SHELTER).handoffs[0].decline_reason == ref.DECLINE_REASON_NO_CAPACITY
    assert all(h.outcome == ref.SERVICE_OUTCOME_COMPLETED_AS_PLANNED
               for need in closed.needs for h in need.handoffs if h.state == ref.HANDOFF_STATE_COMPLETED)
    # Coordinators follow referrals too (ADR 11), and see the same status.
    assert get_referral(coordinator, referral_id) == closed

    # Completed: the shelter holds no accepted or in-service handoff any more, so no further release (once
    # intake's worker has applied ServiceCompleted from referral's topic: a moment after the referral closed).
    def refused() -> bool:
        try:
            shelter.intake.ReleaseKey(release_request(subject_id), timeout=RPC_TIMEOUT_S)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
            return True
        return False
    wait_for(refused, 15, "intake to refuse the shelter's key once its service completed", interval_s=0.1)
