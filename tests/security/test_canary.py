"""Canary personal data planted at intake never appears in plaintext anywhere but the provider's opened case file.

pol-mdd-01 refers an adult in Madre de Dios who needs a shelter; the case file holds a synthetic name, a
document number and a narrative phrase made for this test (canaries: strings that occur nowhere else). The
shelter offered the handoff accepts it, obtains the case-file key (HPKE-wrapped to it) and opens the case file
on its own side: the canaries are there (so the scan below can find them, and would fail on a leak). Once
the network has settled (every worker's consumer group caught up, the audit ledger has the key release),
the canaries appear in none of, byte for byte (UTF-8, either case, UTF-16):

- every record of every topic of the broker (internal topics included), read raw from offset 0 with
  kafka-python: key, value and headers;
- every log line of every process of the network (their spans are in the same files, console exporter),
  and the broker's files (its logs and its on-disk log segments; not its offset indexes);
- every file of the services' SQLite databases (the database, its -wal and -shm files): intake, referral,
  audit and notify;
- every notice the partners received (webhook bodies and e-mails, raw).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest

from deploy.local.inbox import EMAIL, WEBHOOK
from deploy.local.kafka import KafkaCluster
from deploy.local.network import LocalNetwork
from services.core.generated.referralnet.audit.v1 import audit_pb2, audit_pb2_grpc
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.intake.v1 import intake_pb2
from services.core.generated.referralnet.referral.v1 import referral_pb2 as ref
from tests.e2e.notify_support import RecordingInbox, has_both
from tests.e2e.support import (
    RPC_TIMEOUT_S,
    Partner,
    grant,
    open_released_case_files,
    referral_request,
    referral_when,
    release_request,
    wait_for,
)
from tests.security.support import files_under, leaks, read_everything, wait_settled

pytestmark = [pytest.mark.security, pytest.mark.timeout(300)]

REFERRER = "pol-mdd-01"
CANARY_GIVEN, CANARY_FAMILY = "Vrellzaqua", "Tchimborix"
CANARY_DOCUMENT = "CNRY-5X8Q2W7K9Z"
CANARY_PHRASE = "la marmita violeta del socavón Kzx-4471"
CANARIES = (CANARY_GIVEN, CANARY_FAMILY, CANARY_DOCUMENT, CANARY_PHRASE)
SERVICES = ("intake", "referral", "audit", "notify")
WORKER_GROUPS = tuple(f"{service}-worker" for service in SERVICES)


def _release(provider: Partner, subject_id: str) -> intake_pb2.ReleaseKeyResponse:
    """ReleaseKey, retried while intake has not yet seen the acceptance (FAILED_PRECONDITION), bounded."""
    def attempt() -> intake_pb2.ReleaseKeyResponse | None:
        try:
            answer: intake_pb2.ReleaseKeyResponse = provider.intake.ReleaseKey(release_request(subject_id),
                                                                               timeout=RPC_TIMEOUT_S)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            return None
        return answer
    return wait_for(attempt, 30, f"the key release to {provider.org_id}", interval_s=0.3)


def test_canary_personal_data_leaks_nowhere_but_into_the_providers_opened_case_file(
        org: Callable[[str], Partner], security_network: LocalNetwork, security_kafka: str,
        security_kafka_cluster: KafkaCluster, security_inbox: RecordingInbox) -> None:
    request = referral_request(needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE)],
                               region=vocab.REGION_MADRE_DE_DIOS, consents=[grant(vocab.ORG_ROLE_SHELTER)])
    request.case_file.given_names, request.case_file.family_names = CANARY_GIVEN, CANARY_FAMILY
    request.case_file.document_number = CANARY_DOCUMENT
    request.case_file.narrative = f"Relato sintético: trabajó en {CANARY_PHRASE} durante meses."
    referrer = org(REFERRER)
    submitted = referrer.intake.SubmitReferral(request, timeout=RPC_TIMEOUT_S)
    offered = referral_when(referrer, submitted.referral_id, lambda r: bool(r.needs and r.needs[0].handoffs),
                            "the shelter need offered")
    handoff = offered.needs[0].handoffs[0]
    provider = org(handoff.provider_org)
    provider.referral.AcceptHandoff(ref.AcceptHandoffRequest(handoff_id=handoff.handoff_id), timeout=RPC_TIMEOUT_S)
    released = _release(provider, submitted.subject_id)

    # Where the canaries must be: the case file the provider opens with its own key (the scan can fail).
    [case_file] = open_released_case_files(security_network.network_dir, provider.org_id, released)
    assert leaks(case_file.SerializeToString(), CANARIES) == list(CANARIES)

    # Everything has happened: both notices arrived, audit holds the release, every worker caught up.
    security_inbox.wait_for(lambda notices: has_both(notices, provider.org_id, handoff.handoff_id), 60)
    auditor = audit_pb2_grpc.AuditServiceStub(security_network.channel("aud-lim-01", "audit"))
    wait_for(lambda: [d for d in auditor.ComplianceReport(audit_pb2.ComplianceReportRequest(
        subject_id=submitted.subject_id), timeout=RPC_TIMEOUT_S).disclosures if d.kind == "key_release"],
        60, "the key release in the audit ledger", interval_s=0.5)
    wait_settled(security_kafka, WORKER_GROUPS)
    time.sleep(1.0)  # let the processes' log buffers and SQLite's WAL reach the files (written unbuffered anyway)

    found: list[str] = []
    records = read_everything(security_kafka)
    topics = {record.topic for record in records}
    assert {"referralnet.intake.events.v1", "referralnet.referral.events.v1", "__consumer_offsets"} <= topics, topics
    for record in records:
        for blob in record.blobs():
            if hits := leaks(blob, CANARIES):
                found.append(f"kafka {record.topic}[{record.partition}]@{record.offset}: {hits}")

    logs = files_under(security_network.logs_dir)
    assert {path.stem for path in logs} >= set(security_network.process_names)
    spans_in = set()
    for path in logs:
        data = path.read_bytes()
        if hits := leaks(data, CANARIES):
            found.append(f"log {path.name}: {hits}")
        if b'"trace_id"' in data and b'"span_id"' in data:
            spans_in.add(path.stem)
    # the broker's own logs and its on-disk log segments (not the preallocated offset and time indexes)
    broker_files = [path for path in files_under(security_kafka_cluster.nodes[0].directory)
                    if path.suffix not in {".index", ".timeindex"}]
    assert any(path.suffix == ".log" for path in broker_files)
    for path in broker_files:
        if hits := leaks(path.read_bytes(), CANARIES):
            found.append(f"broker file {path}: {hits}")
    assert {"intake-edge", "referral-worker", "notify-worker"} <= spans_in, sorted(spans_in)

    databases = files_under(security_network.base_dir / "db")
    assert {path.name for path in databases} >= {f"{service}.db" for service in SERVICES}, databases
    for path in databases:
        if hits := leaks(path.read_bytes(), CANARIES):
            found.append(f"database file {path.name}: {hits}")

    notices = security_inbox.notices()
    assert {EMAIL, WEBHOOK} <= {notice.channel for notice in notices}
    for notice in notices:
        if hits := leaks(notice.body, CANARIES):
            found.append(f"{notice.channel} notice {notice.delivery_id} to {notice.org_id}: {hits}")
    for notice in notices:
        for webhook in security_inbox.requests_for(notice.delivery_id):
            if hits := leaks("".join(f"{k}: {v}\n" for k, v in webhook.headers.items()).encode(), CANARIES):
                found.append(f"webhook headers to {webhook.org_id}: {hits}")
    assert not found, "canary personal data in plaintext:\n" + "\n".join(found)

