"""The audit ledger end to end: what an auditor can prove about a small journey without trusting anyone.

fis-lim-01 (prosecutor, Lima) refers an adult who needs a shelter; the Lima shelter (alb-lim-01) accepts
and obtains the case-file key. The auditor aud-lim-01 then, over mTLS to audit's edge:

- gets a signed checkpoint and checks its signature against the CA-signed directory;
- gets the inclusion proof of the ReferralSubmitted event and verifies it with RFC 9162's algorithm,
  for the leaf input it computes itself from the envelope read straight from Kafka;
- gets a consistency proof between an older and a newer checkpoint and verifies it;
- gets the subject's ComplianceReport: no violation, the offer and the key release as disclosures;

and replays the network's own topics with ``referralnet audit replay`` (exit status 0), reaching the root
GetCheckpoint gives for the same tree size. The session's network reads the default topic names, which
no other test writes before this module runs; the replay reads only those.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from deploy.local.network import LocalNetwork
from services.audit.domain.checkpoint import checkpoint_origin, from_proto, verify_checkpoint
from services.audit.domain.merkle import verify_consistency, verify_inclusion
from services.core.cli import main
from services.core.generated.referralnet.audit.v1 import audit_pb2, audit_pb2_grpc
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.referral.v1 import referral_pb2 as ref
from services.core.identity.directory import Directory
from services.core.messaging.topics import events_topic
from tests.e2e.support import (
    RPC_TIMEOUT_S,
    Partner,
    RawEvent,
    events_of,
    grant,
    read_topic,
    referral_request,
    release_request,
    wait_for,
    wait_for_handoff,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
CHECKPOINT_WAIT_S = 60.0  # the worker checkpoints every 5 s (CHECKPOINT_SECONDS) while leaves are pending


def _proof_when_included(auditor: audit_pb2_grpc.AuditServiceStub, event_id: str,
                         ) -> audit_pb2.GetInclusionProofResponse:
    """The inclusion proof once a signed checkpoint covers the event (NOT_FOUND / FAILED_PRECONDITION before)."""
    def attempt() -> audit_pb2.GetInclusionProofResponse | None:
        try:
            answer: audit_pb2.GetInclusionProofResponse = auditor.GetInclusionProof(
                audit_pb2.GetInclusionProofRequest(event_id=event_id), timeout=RPC_TIMEOUT_S)
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                return None
            raise
        return answer

    return wait_for(attempt, CHECKPOINT_WAIT_S, f"a signed checkpoint covering event {event_id}", interval_s=0.5)


def _published(bootstrap: str, directory: Directory, event_type: str, stream_id: str) -> list[RawEvent]:
    """The intake events of that type and stream on Kafka, once the outbox relay has published them."""
    return wait_for(lambda: events_of(read_topic(bootstrap, events_topic("intake"), directory), event_type, stream_id),
                    30.0, f"{event_type} of {stream_id} on intake's topic", interval_s=0.2)


def _checkpoint(auditor: audit_pb2_grpc.AuditServiceStub, tree_size: int) -> audit_pb2.Checkpoint:
    answer = auditor.GetCheckpoint(audit_pb2.GetCheckpointRequest(tree_size=tree_size), timeout=RPC_TIMEOUT_S)
    checkpoint: audit_pb2.Checkpoint = answer.checkpoint
    return checkpoint


def test_an_auditor_proves_a_journey_is_in_the_ledger_and_replays_it_from_kafka(
        partner: Callable[[str], Partner], e2e_network: LocalNetwork, kafka_bootstrap: str, directory: Directory,
        network_dir: Path, tmp_path: Path) -> None:
    prosecutor, shelter = partner("fis-lim-01"), partner("alb-lim-01")
    auditor = audit_pb2_grpc.AuditServiceStub(e2e_network.channel("aud-lim-01", "audit"))
    submitted = prosecutor.intake.SubmitReferral(referral_request(
        needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE)], region=vocab.REGION_LIMA,
        consents=[grant(vocab.ORG_ROLE_SHELTER)], case_file_number=601), timeout=RPC_TIMEOUT_S)
    subject_stream = f"subject-{submitted.subject_id}"
    [submission] = _published(kafka_bootstrap, directory, "ReferralSubmitted", subject_stream)
    submission_id = submission.envelope.header.event_id

    # A checkpoint covering the submission: its signature, and the proof that the event is a leaf of it.
    included = _proof_when_included(auditor, submission_id)
    first = _checkpoint(auditor, included.tree_size)
    verify_checkpoint(from_proto(first), directory, origin=checkpoint_origin(directory.network_id))
    assert (first.tree_size, first.root_hash) == (included.tree_size, included.root_hash)
    assert included.leaf_input == submission.envelope.canonical_hash()  # computed by the auditor, from Kafka
    verify_inclusion(submission.envelope.canonical_hash(), included.leaf_index, included.tree_size,
                     list(included.audit_path), first.root_hash)

    # The journey goes on: the shelter accepts and obtains the key; a later checkpoint covers the release.
    offer = wait_for_handoff(shelter, submitted.referral_id, service_type=vocab.SERVICE_TYPE_SHELTER)
    shelter.referral.AcceptHandoff(ref.AcceptHandoffRequest(handoff_id=offer.handoff_id), timeout=RPC_TIMEOUT_S)
    released = shelter.intake.ReleaseKey(release_request(submitted.subject_id), timeout=RPC_TIMEOUT_S)
    [release] = _published(kafka_bootstrap, directory, "KeyReleased", subject_stream)
    later = _proof_when_included(auditor, release.envelope.header.event_id)
    second = _checkpoint(auditor, later.tree_size)
    assert second.tree_size > first.tree_size

    # The newer checkpoint extends the older one: consistency proof between the two signed roots.
    consistency = auditor.GetConsistencyProof(audit_pb2.GetConsistencyProofRequest(
        first_tree_size=first.tree_size, second_tree_size=second.tree_size), timeout=RPC_TIMEOUT_S)
    assert (consistency.first_root_hash, consistency.second_root_hash) == (first.root_hash, second.root_hash)
    verify_consistency(first.tree_size, second.tree_size, list(consistency.proof), first.root_hash, second.root_hash)

    # Compliance for this subject: clean, and the two disclosures on record.
    report = auditor.ComplianceReport(audit_pb2.ComplianceReportRequest(subject_id=submitted.subject_id),
                                      timeout=RPC_TIMEOUT_S)
    assert list(report.violations) == []
    disclosures = sorted((d.kind, d.recipient_org, d.consent_id) for d in report.disclosures)
    assert disclosures == [("key_release", "alb-lim-01", released.consent_id),
                           ("offer", "alb-lim-01", released.consent_id)]

    # The auditor's own replay of the network's topics, from offset 0, independent of audit's database.
    out = tmp_path / "audit-report"
    status = main(["audit", "replay", "--bootstrap", kafka_bootstrap, "--network", str(network_dir),
                   "--ca", str(network_dir / "ca" / "ca.pem"), "--out", str(out), "--no-progress"])
    replayed = json.loads((out / "report.json").read_text())
    assert status == 0, f"the replay found violations: {json.dumps(replayed['violations'], indent=1)}"
    assert replayed["checkpoints_checked"] == replayed["checkpoints_ok"] >= 2
    assert replayed["tree_size"] >= second.tree_size
    same_size = _checkpoint(auditor, replayed["tree_size"])
    assert replayed["root_hash"] == same_size.root_hash.hex()
    assert (out / "report.html").read_text().count("<img") == 3
