"""The scripted walk-through `make demo` runs: partners use the public gRPC APIs as they would in Peru.

A police unit in Madre de Dios refers an adult victim of forced labour in illegal mining who needs a
shelter, legal aid and psychosocial care. The local shelter declines (no places) and the next one, in
Cusco, accepts and obtains the case file; legal aid in Arequipa/Puno accepts; the psychosocial centre
in Cusco lets its offer expire and the one in Lima accepts. Each service starts and ends; the police
unit follows the whole loop. Then the person revokes the shelter's consent and the shelter's next key
request is refused. An NGO in Cusco refers a minor, with consent given by the child-protection authority
(pro-nna-01) as the intake rules for minors require; the authority and a shelter serving minors accept. Then
the adult asks for erasure: the referring police unit erases the subject, its keys are crypto-shredded and
no key is released for it any more. Every person here is synthetic. Given the partners' inbox
(deploy/local/inbox.py: their webhook receiver and mail server), it lists the notices notify sent them about
the adult's referral: offers, the lapsed offer, the revoked consent; each webhook's signature verified, never
a name or a document.

Last, the commission's auditor checks the log: the audit service's newest signed checkpoint, an inclusion
proof of the referral's submission, and an independent replay of Kafka from offset 0 that recomputes the
tree, checks every checkpoint and consent, and writes the JSON and HTML reports.

It only needs something that gives an mTLS channel per organisation and service (``LocalNetwork``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf.timestamp_pb2 import Timestamp

from deploy.local.inbox import WEBHOOK, PartnerInbox, ReceivedNotice
from services.audit.domain.merkle import verify_inclusion
from services.audit.replay.auditor import ReplayOptions, run_replay
from services.core.generated.referralnet.audit.v1 import audit_pb2, audit_pb2_grpc
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.consent.v1 import consent_pb2 as consent
from services.core.generated.referralnet.intake.v1 import intake_pb2, intake_pb2_grpc
from services.core.generated.referralnet.notify.v1 import notify_pb2
from services.core.generated.referralnet.referral.v1 import referral_pb2, referral_pb2_grpc
from services.core.identity.keystore import load_directory, load_org_kem_key
from services.core.identity.records import NotifyEndpoints, kem_key_id
from services.core.identity.seed import SEED_ORGANISATIONS
from services.intake.client_support import open_case_files

POLICE = "pol-mdd-01"
NGO = "ong-cus-01"
CHILD_PROTECTION = "pro-nna-01"
MINOR_NEEDS = (
    (vocab.SERVICE_TYPE_CHILD_PROTECTION, vocab.URGENCY_IMMEDIATE),
    (vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE),
)
MINOR_CASE_FILE = intake_pb2.CaseFile(
    given_names="Niña Sintética", family_names="Demostración Dos", date_of_birth="2011-06-01",
    document_type="DNI", document_number="SINT-0002", nationality="PE", languages=["qu", "es"],
    narrative="Relato sintético de demostración: captada para trabajo doméstico en Cusco.",
    safe_contact="A través de la autoridad de protección de niñas, niños y adolescentes.",
)
NEEDS = (
    (vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE),
    (vocab.SERVICE_TYPE_LEGAL_AID, vocab.URGENCY_PRIORITY),
    (vocab.SERVICE_TYPE_PSYCHOSOCIAL, vocab.URGENCY_ROUTINE),
)
CASE_FILE = intake_pb2.CaseFile(
    given_names="Persona Sintética", family_names="Demostración Uno", date_of_birth="1999-01-01",
    document_type="DNI", document_number="SINT-0001", nationality="PE", languages=["es", "qu"],
    narrative="Relato sintético de demostración: rescatada de un campamento minero ilegal.",
    safe_contact="A través de la unidad policial que la atendió.",
)
STATE_WORDS = {value: name.removeprefix("HANDOFF_STATE_").lower()
               for name, value in referral_pb2.HandoffState.items()}


class Network(Protocol):
    """What the walk-through needs from a running network."""

    @property
    def network_dir(self) -> Path: ...

    def channel(self, org_id: str, service: str) -> grpc.Channel: ...


@dataclass
class Partners:
    """Typed stubs per organisation, made on first use."""

    network: Network

    def intake(self, org_id: str) -> intake_pb2_grpc.IntakeServiceStub:
        return intake_pb2_grpc.IntakeServiceStub(self.network.channel(org_id, "intake"))

    def referral(self, org_id: str) -> referral_pb2_grpc.ReferralServiceStub:
        return referral_pb2_grpc.ReferralServiceStub(self.network.channel(org_id, "referral"))

    def audit(self, org_id: str) -> audit_pb2_grpc.AuditServiceStub:
        return audit_pb2_grpc.AuditServiceStub(self.network.channel(org_id, "audit"))


def _expires_in(days: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromSeconds(int(time.time()) + days * 86_400)
    return stamp


def adult_consents() -> list[consent.ConsentGrant]:
    """The person's own consent: shelters, legal aid and psychosocial centres, for 180 days."""
    def grant(role: vocab.OrgRole, purposes: Sequence[consent.Purpose]) -> consent.ConsentGrant:
        return consent.ConsentGrant(
            recipient=consent.ConsentRecipient(role=role), purposes=list(purposes),
            categories=[consent.DATA_CATEGORY_ROUTING, consent.DATA_CATEGORY_CASE_FILE],
            given_by=consent.CONSENT_GIVER_SUBJECT, expires_at=_expires_in(180))
    return [
        grant(vocab.ORG_ROLE_SHELTER, [consent.PURPOSE_SERVICE_DELIVERY]),
        grant(vocab.ORG_ROLE_LEGAL, [consent.PURPOSE_SERVICE_DELIVERY, consent.PURPOSE_LEGAL_PROCEEDINGS]),
        grant(vocab.ORG_ROLE_PSYCHOSOCIAL, [consent.PURPOSE_SERVICE_DELIVERY]),
    ]


def minor_consents() -> list[consent.ConsentGrant]:
    """Consent for a minor, given by the child-protection authority acting as guardian: the authority itself and
    shelters, for 90 days."""
    return [consent.ConsentGrant(
        recipient=consent.ConsentRecipient(role=role), purposes=[consent.PURPOSE_SERVICE_DELIVERY],
        categories=[consent.DATA_CATEGORY_ROUTING, consent.DATA_CATEGORY_CASE_FILE],
        given_by=consent.CONSENT_GIVER_CHILD_PROTECTION_AUTHORITY, expires_at=_expires_in(90))
        for role in (vocab.ORG_ROLE_CHILD_PROTECTION, vocab.ORG_ROLE_SHELTER)]


def wait_for_offer(partners: Partners, org_id: str, referral_id: str, timeout_s: float = 30.0
                   ) -> referral_pb2.Handoff:
    """The offer of ``referral_id`` in ``org_id``'s inbox, polled until it shows (bounded)."""
    stub = partners.referral(org_id)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        inbox = stub.ListHandoffs(referral_pb2.ListHandoffsRequest(states=[referral_pb2.HANDOFF_STATE_OFFERED]),
                                  timeout=5)
        for handoff in inbox.handoffs:
            if handoff.referral_id == referral_id:
                return handoff
        time.sleep(0.05)
    raise TimeoutError(f"no offer of {referral_id} reached {org_id} within {timeout_s:.0f} s")


def wait_for_need_offer(partners: Partners, referrer: str, referral_id: str, service_type: int,
                        timeout_s: float = 30.0) -> referral_pb2.Handoff:
    """The open offer of one need of ``referral_id``, as its referrer sees it, polled until it shows (bounded)."""
    stub = partners.referral(referrer)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            referral = stub.GetReferral(referral_pb2.GetReferralRequest(referral_id=referral_id), timeout=5).referral
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.PERMISSION_DENIED:  # the referral service has not opened it yet
                raise
        else:
            for need in referral.needs:
                offered = [h for h in need.handoffs if h.state == referral_pb2.HANDOFF_STATE_OFFERED]
                if need.service_type == service_type and offered:
                    return offered[0]
        time.sleep(0.05)
    raise TimeoutError(f"no {vocab.ServiceType.Name(service_type)} offer of {referral_id} within {timeout_s:.0f} s")


def release_with_retry(partners: Partners, org_id: str, subject_id: str) -> intake_pb2.ReleaseKeyResponse:
    """ReleaseKey for the case file, retried briefly while intake learns of the acceptance."""
    request = intake_pb2.ReleaseKeyRequest(subject_id=subject_id, purpose=consent.PURPOSE_SERVICE_DELIVERY,
                                           category=consent.DATA_CATEGORY_CASE_FILE)
    deadline = time.monotonic() + 15
    while True:
        try:
            response: intake_pb2.ReleaseKeyResponse = partners.intake(org_id).ReleaseKey(request, timeout=5)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        else:
            return response


def run_walkthrough(network: Network, say: Callable[[str], None] = print, inbox: PartnerInbox | None = None,
                    ) -> None:
    """Drive the scenario above through the public APIs and print a readable trail (and, given the partners'
    ``inbox``, the notices they received)."""
    partners = Partners(network)
    say(f"1. {POLICE} (police, Madre de Dios) refers an adult victim of forced labour in illegal mining")
    submitted = partners.intake(POLICE).SubmitReferral(intake_pb2.SubmitReferralRequest(
        idempotency_key=f"demo-{time.time_ns()}", case_file=CASE_FILE,
        needs=[intake_pb2.Need(service_type=service, urgency=urgency) for service, urgency in NEEDS],
        region=vocab.REGION_MADRE_DE_DIOS, minor=False,
        exploitation_type=vocab.EXPLOITATION_TYPE_FORCED_LABOUR_MINING, consents=adult_consents()), timeout=10)
    referral_id, subject_id = submitted.referral_id, submitted.subject_id
    say(f"   referral {referral_id} for subject {subject_id} (pseudonymous), {len(submitted.consent_ids)} consents")

    offer = wait_for_offer(partners, "alb-mdd-01", referral_id)
    say(f"2. alb-mdd-01 (shelter, Madre de Dios) sees offer {offer.handoff_id} and declines: no places")
    partners.referral("alb-mdd-01").DeclineHandoff(referral_pb2.DeclineHandoffRequest(
        handoff_id=offer.handoff_id, reason=referral_pb2.DECLINE_REASON_NO_CAPACITY), timeout=10)
    shelter = wait_for_offer(partners, "alb-cus-01", referral_id)
    partners.referral("alb-cus-01").AcceptHandoff(
        referral_pb2.AcceptHandoffRequest(handoff_id=shelter.handoff_id), timeout=10)
    say("   the next shelter, alb-cus-01 (Cusco), is offered it and accepts")

    released = release_with_retry(partners, "alb-cus-01", subject_id)
    directory = load_directory(network.network_dir)
    kem: X25519PrivateKey = load_org_kem_key(network.network_dir, "alb-cus-01")
    files = open_case_files(released, "alb-cus-01", kem_key_id("alb-cus-01"), kem, directory)
    say(f"3. alb-cus-01 obtains the case-file key ({released.key_id}, release {released.release_id}) and opens "
        f"{len(files)} case file(s) on its own machine: {'intact' if files and files[0] == CASE_FILE else 'MISMATCH'}")

    legal = wait_for_offer(partners, "leg-aqp-01", referral_id)
    partners.referral("leg-aqp-01").AcceptHandoff(
        referral_pb2.AcceptHandoffRequest(handoff_id=legal.handoff_id), timeout=10)
    say("4. leg-aqp-01 (legal aid, Arequipa and Puno) accepts the legal-aid offer")

    psych = wait_for_offer(partners, "psi-cus-01", referral_id)
    say(f"5. psi-cus-01 (psychosocial, Cusco) lets its offer lapse (deadline "
        f"{psych.offer_expires_at.ToDatetime():%H:%M:%S} UTC)...")
    psych_next = wait_for_offer(partners, "psi-lim-01", referral_id, timeout_s=120)
    partners.referral("psi-lim-01").AcceptHandoff(
        referral_pb2.AcceptHandoffRequest(handoff_id=psych_next.handoff_id), timeout=10)
    say("   the offer expired and went to psi-lim-01 (Lima), which accepts")

    for org_id, handoff in (("alb-cus-01", shelter), ("leg-aqp-01", legal), ("psi-lim-01", psych_next)):
        partners.referral(org_id).StartService(
            referral_pb2.StartServiceRequest(handoff_id=handoff.handoff_id), timeout=10)
    say("6. each provider records that its service started")

    consents = partners.intake(POLICE).GetSubjectConsent(
        intake_pb2.GetSubjectConsentRequest(subject_id=subject_id), timeout=10).consents
    shelter_consent = next(c for c in consents if c.grant.recipient.role == vocab.ORG_ROLE_SHELTER)
    partners.intake(POLICE).RevokeConsent(intake_pb2.RevokeConsentRequest(
        subject_id=subject_id, consent_id=shelter_consent.consent_id), timeout=10)
    say(f"7. the person withdraws the shelters' consent ({shelter_consent.consent_id})")
    try:
        partners.intake("alb-cus-01").ReleaseKey(intake_pb2.ReleaseKeyRequest(
            subject_id=subject_id, purpose=consent.PURPOSE_SERVICE_DELIVERY,
            category=consent.DATA_CATEGORY_CASE_FILE), timeout=10)
    except grpc.RpcError as error:
        say(f"   alb-cus-01 asks for the key again: {error.code().name}: {error.details()}")
    else:
        raise RuntimeError("the key was released after consent was revoked")

    for org_id, handoff in (("alb-cus-01", shelter), ("leg-aqp-01", legal), ("psi-lim-01", psych_next)):
        partners.referral(org_id).CompleteService(referral_pb2.CompleteServiceRequest(
            handoff_id=handoff.handoff_id, outcome=referral_pb2.SERVICE_OUTCOME_COMPLETED_AS_PLANNED), timeout=10)
    say("8. each provider records that its service ended, with its outcome")

    status = partners.referral(POLICE).GetReferral(referral_pb2.GetReferralRequest(referral_id=referral_id),
                                                   timeout=10).referral
    say(f"9. {POLICE} follows the loop: referral {status.referral_id} is "
        f"{referral_pb2.ReferralState.Name(status.state).removeprefix('REFERRAL_STATE_').lower()}")
    for need in status.needs:
        trail = " -> ".join(f"{h.provider_org}:{STATE_WORDS[h.state]}" for h in need.handoffs)
        say(f"   {vocab.ServiceType.Name(need.service_type).removeprefix('SERVICE_TYPE_').lower():13} {trail}")
    if inbox is not None:
        show_notices(inbox, referral_id, say)
    refer_a_minor(partners, say)
    erase_the_adult(partners, subject_id, say)


def refer_a_minor(partners: Partners, say: Callable[[str], None] = print) -> None:
    """An NGO in Cusco refers a minor; consent comes from the child-protection authority, who accepts."""
    say(f"10. {NGO} (NGO, Cusco) refers a minor exploited in domestic service; consent given by the child-protection "
        f"authority {CHILD_PROTECTION} as guardian, as the rules for minors require")
    submitted = partners.intake(NGO).SubmitReferral(intake_pb2.SubmitReferralRequest(
        idempotency_key=f"demo-minor-{time.time_ns()}", case_file=MINOR_CASE_FILE,
        needs=[intake_pb2.Need(service_type=service, urgency=urgency) for service, urgency in MINOR_NEEDS],
        region=vocab.REGION_CUSCO, minor=True,
        exploitation_type=vocab.EXPLOITATION_TYPE_FORCED_LABOUR_DOMESTIC_SERVICE, consents=minor_consents()),
        timeout=10)
    say(f"    referral {submitted.referral_id} for subject {submitted.subject_id}")
    protection = wait_for_need_offer(partners, NGO, submitted.referral_id, vocab.SERVICE_TYPE_CHILD_PROTECTION)
    partners.referral(CHILD_PROTECTION).AcceptHandoff(
        referral_pb2.AcceptHandoffRequest(handoff_id=protection.handoff_id), timeout=10)
    released = release_with_retry(partners, CHILD_PROTECTION, submitted.subject_id)
    directory = load_directory(partners.network.network_dir)
    kem: X25519PrivateKey = load_org_kem_key(partners.network.network_dir, CHILD_PROTECTION)
    files = open_case_files(released, CHILD_PROTECTION, kem_key_id(CHILD_PROTECTION), kem, directory)
    say(f"    {CHILD_PROTECTION} accepts the child-protection offer and opens the case file: "
        f"{'intact' if files and files[0] == MINOR_CASE_FILE else 'MISMATCH'}")
    shelter = wait_for_need_offer(partners, NGO, submitted.referral_id, vocab.SERVICE_TYPE_SHELTER)
    partners.referral(shelter.provider_org).AcceptHandoff(
        referral_pb2.AcceptHandoffRequest(handoff_id=shelter.handoff_id), timeout=10)
    say(f"    the shelter need is offered only to shelters serving minors: {shelter.provider_org} accepts")


def erase_the_adult(partners: Partners, subject_id: str, say: Callable[[str], None] = print) -> None:
    """The adult asks for erasure: the referrer erases the subject and no key is released any more."""
    erased = partners.intake(POLICE).EraseSubject(intake_pb2.EraseSubjectRequest(subject_id=subject_id), timeout=10)
    say(f"11. the adult asks for erasure: {erased.erased_by_org} erases subject {subject_id}; its keys are "
        f"crypto-shredded (its sealed case file can never be opened again; every envelope still verifies)")
    try:
        partners.intake("leg-aqp-01").ReleaseKey(intake_pb2.ReleaseKeyRequest(
            subject_id=subject_id, purpose=consent.PURPOSE_SERVICE_DELIVERY,
            category=consent.DATA_CATEGORY_CASE_FILE), timeout=10)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
            raise
        say(f"    leg-aqp-01 asks for the key: {error.code().name}: {error.details()}")
    else:
        raise RuntimeError("a key was released after the subject was erased")


def notified_orgs() -> list[str]:
    """The organisations given endpoints at the partners' inbox: every provider (an organisation offering a
    service) and every coordinator of the seed network, so offers, escalations and failures all land."""
    return sorted(org.org_id for org in SEED_ORGANISATIONS if org.services or org.role == vocab.ORG_ROLE_COORDINATOR)


def inbox_endpoints(inbox: PartnerInbox, org_ids: Sequence[str] | None = None) -> dict[str, NotifyEndpoints]:
    """Each organisation's webhook and e-mail address at the inbox (default: :func:`notified_orgs`)."""
    return {org_id: NotifyEndpoints(webhook_url=inbox.webhook_url(org_id), email=inbox.email_address(org_id))
            for org_id in (notified_orgs() if org_ids is None else org_ids)}


EXPECTED_NOTICES = frozenset({
    ("alb-mdd-01", notify_pb2.NOTICE_TYPE_HANDOFF_OFFERED), ("alb-cus-01", notify_pb2.NOTICE_TYPE_HANDOFF_OFFERED),
    ("leg-aqp-01", notify_pb2.NOTICE_TYPE_HANDOFF_OFFERED), ("psi-cus-01", notify_pb2.NOTICE_TYPE_HANDOFF_OFFERED),
    ("psi-cus-01", notify_pb2.NOTICE_TYPE_HANDOFF_EXPIRED), ("psi-lim-01", notify_pb2.NOTICE_TYPE_HANDOFF_OFFERED),
    ("alb-cus-01", notify_pb2.NOTICE_TYPE_CONSENT_REVOKED),
})
"""(organisation, notice type) of the webhooks the scenario must have caused."""
MAIL_WAIT_S = 15.0


def referral_webhooks(notices: Sequence[ReceivedNotice], referral_id: str,
                      ) -> list[tuple[ReceivedNotice, notify_pb2.Notice]]:
    """The verified webhooks about ``referral_id``, once each (a redelivery is dropped, as a receiver would)."""
    found, seen = [], set()
    for received in notices:
        if received.channel != WEBHOOK or not received.verified or received.delivery_id in seen:
            continue
        notice = received.notice()
        if notice.referral_id == referral_id:
            seen.add(received.delivery_id)
            found.append((received, notice))
    return found


def show_notices(inbox: PartnerInbox, referral_id: str, say: Callable[[str], None] = print,
                 timeout_s: float = 60.0) -> None:
    """Wait (bounded) for the notices the scenario causes, then list what the partners received."""
    def complete(notices: list[ReceivedNotice]) -> bool:
        got = {(received.org_id, notice.notice_type) for received, notice in referral_webhooks(notices, referral_id)}
        return got >= EXPECTED_NOTICES

    def mails_of(notices: Sequence[ReceivedNotice]) -> list[ReceivedNotice]:
        return [n for n in notices if n.channel != WEBHOOK and referral_id in n.text()]

    inbox.wait_for(complete, timeout_s)
    webhooks = referral_webhooks(inbox.notices(), referral_id)
    with contextlib.suppress(TimeoutError):  # each endpoint here has both: the e-mails follow their webhooks
        inbox.wait_for(lambda notices: len(mails_of(notices)) >= len(webhooks), MAIL_WAIT_S)
    mails = mails_of(inbox.unique())
    say(f"   the partners' systems received {len(webhooks)} signed webhooks (each verified with the "
        f"organisation's secret) and {len(mails)} e-mails about it:")
    for received, notice in webhooks:
        kind = notify_pb2.NoticeType.Name(notice.notice_type).removeprefix("NOTICE_TYPE_").lower()
        say(f"   {received.org_id:11} {kind:16} {notice.reference} ({notice.language})")
    example = next(notice for _, notice in webhooks if notice.notice_type == notify_pb2.NOTICE_TYPE_HANDOFF_OFFERED)
    say("   an offer notice, as sent (the facts only: no name, document or story):")
    for line in example.text.splitlines():
        say(f"   | {line}")


AUDITOR = "aud-lim-01"


def settled_checkpoint(partners: Partners, timeout_s: float = 60.0) -> audit_pb2.Checkpoint:
    """The audit service's newest checkpoint once it stops growing (the ledger has caught up), bounded."""
    stub = partners.audit(AUDITOR)
    deadline = time.monotonic() + timeout_s
    last: audit_pb2.Checkpoint | None = None
    while time.monotonic() < deadline:
        try:
            current = stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(), timeout=5).checkpoint
        except grpc.RpcError as error:
            if error.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                raise
        else:
            if last is not None and current.tree_size == last.tree_size:
                return current
            last = current
        time.sleep(2.5)
    raise TimeoutError(f"the audit ledger did not settle within {timeout_s:.0f} s")


def audit_the_log(network: Network, bootstrap: str, out_dir: Path, say: Callable[[str], None] = print,
                  referral_event_id: str | None = None) -> int:
    """The auditor's checks (see the module docstring); returns the replay's exit status (0: clean)."""
    partners = Partners(network)
    checkpoint = settled_checkpoint(partners)
    say(f"12. {AUDITOR} (auditor) fetches the signed checkpoint: {checkpoint.tree_size} events, root "
        f"{checkpoint.root_hash.hex()[:16]}...")
    replies = partners.audit(AUDITOR).ReplayLog(audit_pb2.ReplayLogRequest(start_index=0, limit=1), timeout=10)
    first = next(iter(replies))
    proof = partners.audit(AUDITOR).GetInclusionProof(audit_pb2.GetInclusionProofRequest(
        event_id=referral_event_id or first.event_id, tree_size=checkpoint.tree_size), timeout=10)
    verify_inclusion(proof.leaf_input, proof.leaf_index, proof.tree_size, list(proof.audit_path),
                     checkpoint.root_hash)
    say(f"    inclusion proof of event {first.event_id} ({first.event_type}) at leaf {proof.leaf_index}: verified")
    say("13. the auditor replays Kafka from offset 0 on its own, independently of the audit database:")
    run = run_replay(ReplayOptions(bootstrap=bootstrap, network_dir=network.network_dir, out_dir=out_dir,
                                   progress=False))
    report = run.report
    verdict = "clean: no violation" if report.clean else f"{len(report.violations)} violation(s)"
    say(f"    {report.records_read} records read; {len(report.checkpoints)} checkpoints verified and linked; "
        f"tree size {report.tree_size}, root {report.root_hash[:16]}...; {verdict}")
    say(f"    reports: {run.json_path} and {run.html_path}")
    return report.exit_status
