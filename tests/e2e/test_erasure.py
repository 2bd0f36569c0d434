"""Erasure with crypto-shredding, through the real network.

fis-lim-01 (prosecutor, Lima) refers an adult who needs a shelter and legal aid; alb-lim-01 (shelter, Lima)
accepts and obtains the case-file key. The person then asks for erasure: an organisation that did not refer
the subject may not erase it (PERMISSION_DENIED); the prosecutor does (erasing again answers the first
erasure). From then on no new key is released, so the envelope the shelter was given can never be opened
by a newly requested key; every other intake call about the subject is FAILED_PRECONDITION. The referral
service withdraws the subject's active handoffs (reason subject_erased) and the referral closes. The
SubjectErased event is on intake's topic and still verifies, as do the subject's earlier envelopes; a signed
checkpoint of the audit ledger covers it (inclusion proof verified); the auditor's ComplianceReport for the
subject and the replay of the whole log are clean, every checkpoint verified.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from deploy.local.network import LocalNetwork
from services.audit.domain.checkpoint import checkpoint_origin, from_proto, verify_checkpoint
from services.audit.domain.merkle import verify_inclusion
from services.core.cli import main
from services.core.envelope import Verifier
from services.core.generated.referralnet.audit.v1 import audit_pb2, audit_pb2_grpc
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.intake.v1 import intake_pb2
from services.core.generated.referralnet.referral.v1 import referral_pb2 as ref
from services.core.identity.directory import Directory
from services.core.messaging.topics import events_topic
from tests.e2e.support import (
    ENGLISH,
    RPC_TIMEOUT_S,
    Partner,
    events_of,
    grant,
    need_of,
    open_released_case_files,
    read_topic,
    referral_request,
    referral_when,
    release_request,
    rpc_error,
    status_code,
    wait_for,
    wait_for_handoff,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SHELTER, LEGAL = vocab.SERVICE_TYPE_SHELTER, vocab.SERVICE_TYPE_LEGAL_AID
WITHDRAWN = "HANDOFF_STATE_WITHDRAWN"


def test_an_erased_subject_is_crypto_shredded_and_the_log_still_verifies_clean(
        partner: Callable[[str], Partner], e2e_network: LocalNetwork, kafka_bootstrap: str, directory: Directory,
        network_dir: Path, tmp_path: Path) -> None:
    prosecutor, shelter, legal = partner("fis-lim-01"), partner("alb-lim-01"), partner("leg-lim-01")
    request = referral_request(needs=[(SHELTER, vocab.URGENCY_IMMEDIATE), (LEGAL, vocab.URGENCY_ROUTINE)],
                               region=vocab.REGION_LIMA, case_file_number=901,
                               consents=[grant(vocab.ORG_ROLE_SHELTER), grant(vocab.ORG_ROLE_LEGAL)])
    submitted = prosecutor.intake.SubmitReferral(request, timeout=RPC_TIMEOUT_S)
    subject_id, referral_id = submitted.subject_id, submitted.referral_id
    offer = wait_for_handoff(shelter, referral_id, service_type=SHELTER)
    shelter.referral.AcceptHandoff(ref.AcceptHandoffRequest(handoff_id=offer.handoff_id), timeout=RPC_TIMEOUT_S)
    released = shelter.intake.ReleaseKey(release_request(subject_id), timeout=RPC_TIMEOUT_S)
    assert open_released_case_files(network_dir, "alb-lim-01", released) == [request.case_file]
    wait_for_handoff(legal, referral_id, service_type=LEGAL)  # the legal-aid offer is open

    # Only the subject's referrers and coordinators erase it; then it is erased once.
    erase = intake_pb2.EraseSubjectRequest(subject_id=subject_id)
    def erase_as(org_id: str) -> Callable[[], object]:
        return lambda: partner(org_id).intake.EraseSubject(erase, timeout=RPC_TIMEOUT_S)
    for stranger in ("pol-cus-01", "alb-lim-01", "aud-lim-01"):
        assert status_code(erase_as(stranger)) == grpc.StatusCode.PERMISSION_DENIED
    erased = prosecutor.intake.EraseSubject(erase, timeout=RPC_TIMEOUT_S)
    assert (erased.subject_id, erased.erased_by_org, erased.already_erased) == (subject_id, "fis-lim-01", False)
    again = partner("coo-lim-01").intake.EraseSubject(erase, timeout=RPC_TIMEOUT_S)
    assert again.already_erased and (again.erased_by_org, again.erased_at) == ("fis-lim-01", erased.erased_at)

    # No new key: the envelope the shelter holds cannot be opened by a newly requested key.
    refused = rpc_error(lambda: shelter.intake.ReleaseKey(release_request(subject_id), metadata=ENGLISH,
                                                          timeout=RPC_TIMEOUT_S))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION and "erased" in (refused.details() or "")
    verifier = Verifier(directory)
    assert all(verifier.verify(wire).header.stream_id == f"subject-{subject_id}" for wire in released.envelopes)
    verifier.close()
    # Every other intake call about the subject is refused the same way.
    calls: list[Callable[[], object]] = [
        lambda: prosecutor.intake.GetSubjectConsent(intake_pb2.GetSubjectConsentRequest(subject_id=subject_id),
                                                    timeout=RPC_TIMEOUT_S),
        lambda: prosecutor.intake.RevokeConsent(intake_pb2.RevokeConsentRequest(
            subject_id=subject_id, consent_id=submitted.consent_ids[0]), timeout=RPC_TIMEOUT_S),
        lambda: prosecutor.intake.RecordConsent(intake_pb2.RecordConsentRequest(
            subject_id=subject_id, grant=grant(vocab.ORG_ROLE_PSYCHOSOCIAL)), timeout=RPC_TIMEOUT_S),
        lambda: prosecutor.intake.SubmitReferral(referral_request(
            needs=[(SHELTER, vocab.URGENCY_IMMEDIATE)], region=vocab.REGION_LIMA, subject_id=subject_id,
            consents=[grant(vocab.ORG_ROLE_SHELTER)], case_file_number=902), timeout=RPC_TIMEOUT_S),
    ]
    assert [status_code(call) for call in calls] == [grpc.StatusCode.FAILED_PRECONDITION] * len(calls)

    # The referral service withdraws the subject's active handoffs; with every need resolved it closes.
    closed = referral_when(prosecutor, referral_id, lambda r: r.state == ref.REFERRAL_STATE_CLOSED,
                           "closed after the erasure")
    for service_type in (SHELTER, LEGAL):
        [handoff] = need_of(closed, service_type).handoffs
        assert (ref.HandoffState.Name(handoff.state), handoff.withdraw_reason) == (
            WITHDRAWN, ref.WITHDRAW_REASON_SUBJECT_ERASED)

    # SubjectErased is on intake's topic, once, after the subject's other events; every envelope verifies.
    def subject_events() -> list[str] | None:
        events = events_of(read_topic(kafka_bootstrap, events_topic("intake"), directory), "SubjectErased",
                           f"subject-{subject_id}")
        return [event.envelope.header.event_id for event in events] or None
    [erased_event_id] = wait_for(subject_events, 30, "SubjectErased on intake's topic", interval_s=0.5)

    # The ledger: a signed checkpoint covers SubjectErased, and its inclusion proof verifies.
    auditor = audit_pb2_grpc.AuditServiceStub(e2e_network.channel("aud-lim-01", "audit"))

    def proof() -> audit_pb2.GetInclusionProofResponse | None:
        try:
            answer: audit_pb2.GetInclusionProofResponse = auditor.GetInclusionProof(
                audit_pb2.GetInclusionProofRequest(event_id=erased_event_id), timeout=RPC_TIMEOUT_S)
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                return None
            raise
        return answer
    included = wait_for(proof, 60, "a signed checkpoint covering SubjectErased", interval_s=0.5)
    checkpoint = auditor.GetCheckpoint(audit_pb2.GetCheckpointRequest(tree_size=included.tree_size),
                                       timeout=RPC_TIMEOUT_S).checkpoint
    verify_checkpoint(from_proto(checkpoint), directory, origin=checkpoint_origin(directory.network_id))
    verify_inclusion(included.leaf_input, included.leaf_index, included.tree_size, list(included.audit_path),
                     checkpoint.root_hash)

    # The auditor: the subject's compliance report is clean (its key release is on record), the replay too.

    def report_with_withdrawals() -> audit_pb2.ComplianceReportResponse | None:
        report = auditor.ComplianceReport(audit_pb2.ComplianceReportRequest(subject_id=subject_id),
                                          timeout=RPC_TIMEOUT_S)
        # intake: 2 ConsentRecorded, ReferralSubmitted, KeyReleased, SubjectErased; referral: ReferralOpened,
        # 2 HandoffOffered, HandoffAccepted, 2 HandoffWithdrawn, ReferralClosed
        return report if report.events_checked >= 12 else None
    report = wait_for(report_with_withdrawals, 60, "the ledger to hold the subject's events", interval_s=0.5)
    assert list(report.violations) == []
    assert ("key_release", "alb-lim-01") in {(d.kind, d.recipient_org) for d in report.disclosures}
    out = tmp_path / "audit-report"
    status = main(["audit", "replay", "--bootstrap", kafka_bootstrap, "--network", str(network_dir),
                   "--ca", str(network_dir / "ca" / "ca.pem"), "--out", str(out), "--no-progress"])
    replayed = json.loads((out / "report.json").read_text())
    assert status == 0, f"the replay found violations: {json.dumps(replayed['violations'], indent=1)}"
    assert replayed["checkpoints_checked"] == replayed["checkpoints_ok"] >= 1
