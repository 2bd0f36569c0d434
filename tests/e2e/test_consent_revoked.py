"""Revoking consent takes effect at once: the shelter that accepted can no longer obtain the case-file key.

pol-cus-01 (police, Cusco) refers an adult needing a shelter with the person's consent for shelters;
alb-cus-01 (shelter, Cusco) accepts and obtains the key. The person then withdraws that consent through the
referrer; the very next ReleaseKey of the shelter (no wait, no retry) is FAILED_PRECONDITION.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.intake.v1 import intake_pb2
from services.core.generated.referralnet.referral.v1 import referral_pb2 as ref
from tests.e2e.support import (
    ENGLISH,
    RPC_TIMEOUT_S,
    Partner,
    grant,
    open_released_case_files,
    referral_request,
    release_request,
    rpc_error,
    wait_for_handoff,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_revoked_consent_refuses_the_next_key_release(partner: Callable[[str], Partner], network_dir: Path) -> None:
    police, shelter = partner("pol-cus-01"), partner("alb-cus-01")
    request = referral_request(needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE)],
                               region=vocab.REGION_CUSCO, case_file_number=301,
                               exploitation_type=vocab.EXPLOITATION_TYPE_FORCED_LABOUR_DOMESTIC_SERVICE,
                               consents=[grant(vocab.ORG_ROLE_SHELTER)])
    submitted = police.intake.SubmitReferral(request, timeout=RPC_TIMEOUT_S)
    (consent_id,) = submitted.consent_ids
    offer = wait_for_handoff(shelter, submitted.referral_id)
    shelter.referral.AcceptHandoff(ref.AcceptHandoffRequest(handoff_id=offer.handoff_id), timeout=RPC_TIMEOUT_S)
    released = shelter.intake.ReleaseKey(release_request(submitted.subject_id), timeout=RPC_TIMEOUT_S)
    assert open_released_case_files(network_dir, "alb-cus-01", released) == [request.case_file]

    revoked = police.intake.RevokeConsent(intake_pb2.RevokeConsentRequest(
        subject_id=submitted.subject_id, consent_id=consent_id), timeout=RPC_TIMEOUT_S).consent
    assert revoked.consent_id == consent_id and revoked.HasField("revoked_at")
    assert revoked.revoked_by_org == "pol-cus-01"

    refused = rpc_error(lambda: shelter.intake.ReleaseKey(release_request(submitted.subject_id),
                                                          timeout=RPC_TIMEOUT_S))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    refused_en = rpc_error(lambda: shelter.intake.ReleaseKey(release_request(submitted.subject_id),
                                                             metadata=ENGLISH, timeout=RPC_TIMEOUT_S))
    assert refused_en.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.details() != refused_en.details()

    # Revoking again answers the first revocation; the subject's consents show it revoked.
    again = police.intake.RevokeConsent(intake_pb2.RevokeConsentRequest(
        subject_id=submitted.subject_id, consent_id=consent_id), timeout=RPC_TIMEOUT_S).consent
    assert again.revoked_at == revoked.revoked_at
    consents = police.intake.GetSubjectConsent(intake_pb2.GetSubjectConsentRequest(
        subject_id=submitted.subject_id), timeout=RPC_TIMEOUT_S).consents
    assert [(c.consent_id, c.HasField("revoked_at")) for c in consents] == [(consent_id, True)]
