"""Every intake and referral RPC called by organisations with no part in a referral, on its real ids.

Shared by tests/e2e/test_uninvolved.py and tests/security/test_access.py, so both check the same calls on
the same story (:func:`accepted_referral`: an adult in Lima needing a shelter and legal aid, the shelter's
offer accepted):
sal-lor-01 (a health provider), aud-lim-01 (an auditor: never a key, never a handoff) and alb-pun-01 (a
shelter, the role the consent names, but never offered the referral) must get PERMISSION_DENIED from each,
except ListHandoffs, a provider's own inbox, which must show the providers nothing of the referral.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import grpc

from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.intake.v1 import intake_pb2
from services.core.generated.referralnet.referral.v1 import referral_pb2 as ref
from tests.e2e.support import (
    RPC_TIMEOUT_S,
    Partner,
    get_referral,
    grant,
    inbox,
    referral_request,
    referral_when,
    release_request,
    status_code,
)

OUTSIDERS = ("sal-lor-01", "aud-lim-01", "alb-pun-01")
PROVIDERS_AMONG_OUTSIDERS = frozenset({"sal-lor-01", "alb-pun-01"})
DENIED = grpc.StatusCode.PERMISSION_DENIED

@dataclass(frozen=True)
class AcceptedReferral:
    """A referral whose shelter offer was accepted, and what its referrer saw of it then."""

    request: intake_pb2.SubmitReferralRequest
    referral_id: str
    subject_id: str
    consent_id: str
    shelter: ref.Handoff
    before: ref.Referral
    consents_before: intake_pb2.GetSubjectConsentResponse

    @property
    def handoff_ids(self) -> list[str]:
        """Every handoff of the referral (the shelter's accepted one and legal aid's offer)."""
        return [h.handoff_id for n in self.before.needs for h in n.handoffs]


def accepted_referral(partner: Callable[[str], Partner], referrer_id: str, *, case_file_number: int,
                      exploitation_type: vocab.ExploitationType = vocab.EXPLOITATION_TYPE_FORCED_LABOUR_MINING,
                      ) -> AcceptedReferral:
    """``referrer_id`` refers an adult in Lima needing a shelter (priority) and legal aid (routine), with consent
    for both roles; the shelter offered (never one of OUTSIDERS) accepts."""
    referrer = partner(referrer_id)
    request = referral_request(
        needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_PRIORITY), (vocab.SERVICE_TYPE_LEGAL_AID,
                                                                     vocab.URGENCY_ROUTINE)],
        region=vocab.REGION_LIMA, case_file_number=case_file_number,
        consents=[grant(vocab.ORG_ROLE_SHELTER), grant(vocab.ORG_ROLE_LEGAL)], exploitation_type=exploitation_type)
    submitted = referrer.intake.SubmitReferral(request, timeout=RPC_TIMEOUT_S)
    referral_id, subject_id = submitted.referral_id, submitted.subject_id
    offered = referral_when(referrer, referral_id, lambda r: sum(len(n.handoffs) for n in r.needs) == 2,
                            "both needs offered")
    shelter = next(n.handoffs[0] for n in offered.needs if n.service_type == vocab.SERVICE_TYPE_SHELTER)
    assert shelter.provider_org not in OUTSIDERS
    partner(shelter.provider_org).referral.AcceptHandoff(ref.AcceptHandoffRequest(handoff_id=shelter.handoff_id),
                                                         timeout=RPC_TIMEOUT_S)
    before = referral_when(referrer, referral_id,
                           lambda r: any(h.state == ref.HANDOFF_STATE_ACCEPTED for n in r.needs for h in n.handoffs),
                           "the shelter's acceptance")
    consents_before = referrer.intake.GetSubjectConsent(
        intake_pb2.GetSubjectConsentRequest(subject_id=subject_id), timeout=RPC_TIMEOUT_S)
    return AcceptedReferral(request, referral_id, subject_id, submitted.consent_ids[0], shelter, before,
                            consents_before)


def assert_unchanged(referrer: Partner, accepted: AcceptedReferral) -> None:
    """Nothing the outsiders tried changed the referral or the subject's consents."""
    assert get_referral(referrer, accepted.referral_id) == accepted.before
    assert referrer.intake.GetSubjectConsent(intake_pb2.GetSubjectConsentRequest(subject_id=accepted.subject_id),
                                             timeout=RPC_TIMEOUT_S) == accepted.consents_before


SubjectCall = Callable[[Partner], object]
HandoffCall = Callable[[Partner, str], object]

HANDOFF_CALLS: dict[str, HandoffCall] = {
    "AcceptHandoff": lambda o, h: o.referral.AcceptHandoff(ref.AcceptHandoffRequest(handoff_id=h),
                                                           timeout=RPC_TIMEOUT_S),
    "DeclineHandoff": lambda o, h: o.referral.DeclineHandoff(
        ref.DeclineHandoffRequest(handoff_id=h, reason=ref.DECLINE_REASON_OTHER), timeout=RPC_TIMEOUT_S),
    "StartService": lambda o, h: o.referral.StartService(ref.StartServiceRequest(handoff_id=h),
                                                         timeout=RPC_TIMEOUT_S),
    "CompleteService": lambda o, h: o.referral.CompleteService(
        ref.CompleteServiceRequest(handoff_id=h, outcome=ref.SERVICE_OUTCOME_OTHER), timeout=RPC_TIMEOUT_S),
    "WithdrawHandoff": lambda o, h: o.referral.WithdrawHandoff(
        ref.WithdrawHandoffRequest(handoff_id=h, reason=ref.WITHDRAW_REASON_OTHER), timeout=RPC_TIMEOUT_S),
}
"""Every referral RPC that names one handoff."""


def subject_calls(referral_id: str, subject_id: str, consent_id: str) -> dict[str, SubjectCall]:
    """Every intake RPC on the subject (and a new one), GetReferral and UpdateCapacity."""
    return {
        "SubmitReferral": lambda o: o.intake.SubmitReferral(referral_request(
            needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_ROUTINE)], region=vocab.REGION_LIMA,
            consents=[grant(vocab.ORG_ROLE_SHELTER)]), timeout=RPC_TIMEOUT_S),
        "SubmitReferral(existing subject)": lambda o: o.intake.SubmitReferral(referral_request(
            needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_ROUTINE)], subject_id=subject_id,
            region=vocab.REGION_LIMA, consents=[grant(vocab.ORG_ROLE_SHELTER)]), timeout=RPC_TIMEOUT_S),
        "RecordConsent": lambda o: o.intake.RecordConsent(intake_pb2.RecordConsentRequest(
            subject_id=subject_id, grant=grant(vocab.ORG_ROLE_HEALTH)), timeout=RPC_TIMEOUT_S),
        "RevokeConsent": lambda o: o.intake.RevokeConsent(intake_pb2.RevokeConsentRequest(
            subject_id=subject_id, consent_id=consent_id), timeout=RPC_TIMEOUT_S),
        "ReleaseKey": lambda o: o.intake.ReleaseKey(release_request(subject_id), timeout=RPC_TIMEOUT_S),
        "GetSubjectConsent": lambda o: o.intake.GetSubjectConsent(
            intake_pb2.GetSubjectConsentRequest(subject_id=subject_id), timeout=RPC_TIMEOUT_S),
        "EraseSubject": lambda o: o.intake.EraseSubject(intake_pb2.EraseSubjectRequest(subject_id=subject_id),
                                                        timeout=RPC_TIMEOUT_S),
        "GetReferral": lambda o: o.referral.GetReferral(ref.GetReferralRequest(referral_id=referral_id),
                                                        timeout=RPC_TIMEOUT_S),
        "UpdateCapacity": lambda o: o.referral.UpdateCapacity(ref.UpdateCapacityRequest(
            service_type=vocab.SERVICE_TYPE_LEGAL_AID, available_places=3), timeout=RPC_TIMEOUT_S),
    }


@dataclass
class Refusals:
    """What the calls came to: one line per call that was not refused, and how many calls were made."""

    failures: list[str] = field(default_factory=list)
    calls: int = 0

    def expect_denied(self, org_id: str, name: str, call: Callable[[], object]) -> None:
        """Make ``call``; note it unless it failed with PERMISSION_DENIED."""
        self.calls += 1
        try:
            code = status_code(call)
        except AssertionError:
            self.failures.append(f"{org_id} {name}: succeeded")
            return
        if code != DENIED:
            self.failures.append(f"{org_id} {name}: {code.name}")


def call_everything_as_outsiders(partner: Callable[[str], Partner], *, referral_id: str, subject_id: str,
                                 consent_id: str, handoff_ids: Sequence[str]) -> Refusals:
    """Every call above by each of OUTSIDERS on the referral's real ids (each handoff call on each handoff),
    and ListHandoffs; the calls not refused are in the answer's ``failures``."""
    refusals = Refusals()
    calls = subject_calls(referral_id, subject_id, consent_id)
    for org_id in OUTSIDERS:
        outsider = partner(org_id)
        for name, subject_call in calls.items():
            refusals.expect_denied(org_id, name, partial(subject_call, outsider))
        for handoff_id in handoff_ids:
            for name, handoff_call in HANDOFF_CALLS.items():
                refusals.expect_denied(org_id, f"{name}({handoff_id})", partial(handoff_call, outsider, handoff_id))
        if org_id in PROVIDERS_AMONG_OUTSIDERS:  # a provider's inbox is its own: nothing of this referral
            refusals.calls += 1
            if shown := [h.handoff_id for h in inbox(outsider) if h.referral_id == referral_id]:
                refusals.failures.append(f"{org_id} ListHandoffs shows {shown}")
        else:
            refusals.expect_denied(org_id, "ListHandoffs", partial(
                outsider.referral.ListHandoffs, ref.ListHandoffsRequest(), timeout=RPC_TIMEOUT_S))
    return refusals
