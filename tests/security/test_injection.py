"""Forged, altered, replayed and reordered records produced straight into the network's topics.

What an attacker with broker access (and, for the reordering, a stolen service signing key) could do, done
to the security suite's private network (its own broker: nothing here reaches the e2e network's ledger).
fis-lim-01 refers an adult in Lima who needs a shelter; the shelter offered accepts; the network settles.
Then, read raw from intake's and referral's topics, these records are produced back into them:

- forged: a ConsentRecorded for the subject signed by ``svc:intake#sig-1`` of another development network
  (another CA: the same key id, the wrong key), sealed with the real routing key;
- altered (section): the genuine ReferralSubmitted with one bit of its sealed routing section flipped;
- altered (header): the genuine HandoffAccepted with one bit of its cleartext header flipped;
- replayed: the genuine HandoffOffered again, byte for byte (same event id, key and headers);
- reordered: a HandoffDeclined of the accepted handoff, signed with referral's own (stolen) key, at stream
  sequence 1, which the offer already holds (out of order: behind the acceptance at 2).

Then: each worker that consumes the topic dead-letters the forged and altered records with the reason
(bad signature, tampered section or header), naming the event id; the replayed and reordered records change
nothing (no second offer notice, the handoff is still accepted for referral, intake and notify, the
provider still obtains the key); the audit service's ComplianceReport names the forged, altered and
reordered records by event id (``bad_signature``, ``tampered_section``, ``dead_lettered``,
``sequence_duplicate``...), and so does the auditor's own replay of the log from offset 0
(``referralnet audit replay``, exit status 1), which also counts the replayed record as a duplicate, not a leaf.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy.local.network import LocalNetwork
from services.core.cli import main
from services.core.envelope import EnvelopeSigner, EventHeader, Opener, Sealer, SectionKind, Verifier, new_event_id
from services.core.generated.referralnet.audit.v1 import audit_pb2, audit_pb2_grpc
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.envelope.v1 import envelope_pb2
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral_events
from services.core.generated.referralnet.referral.v1 import referral_pb2 as ref
from services.core.identity.keystore import load_directory, load_service_signing_key
from services.core.identity.network import init_network
from services.core.identity.records import service_owner, signing_key_id
from services.core.keyvault.keys import DataKey
from services.core.keyvault.routing_keys import load_routing_keys
from services.core.messaging.topics import dead_letter_topic, events_topic
from services.core.runtime.dead_letter import header_map
from services.core.telemetry.propagation import kafka_headers
from tests.e2e.notify_support import RecordingInbox, has_both, offer_notices
from tests.e2e.support import (
    RPC_TIMEOUT_S,
    Partner,
    get_referral,
    grant,
    referral_request,
    referral_when,
    release_request,
    wait_for,
)
from tests.security.support import RawRecord, produce, read_everything, wait_settled

pytestmark = [pytest.mark.security, pytest.mark.timeout(300)]

REFERRER = "fis-lim-01"
WORKER_GROUPS = ("intake-worker", "referral-worker", "audit-worker", "notify-worker")
INTAKE_TOPIC, REFERRAL_TOPIC = events_topic("intake"), events_topic("referral")
CONSUMERS = {INTAKE_TOPIC: ("referral-worker", "notify-worker"), REFERRAL_TOPIC: ("intake-worker", "notify-worker")}


class Reader:
    """Verifies records against the network's directory and opens their routing sections (the routing key)."""

    def __init__(self, network_dir: Path) -> None:
        self.verifier, self.opener = Verifier(load_directory(network_dir)), Opener()
        self.routing = load_routing_keys(network_dir)

    def header(self, record: RawRecord) -> EventHeader:
        """The verified header of a genuine record."""
        return self.verifier.verify(record.value or b"").header

    def routing_payload(self, record: RawRecord) -> bytes:
        """The opened routing section of a genuine record."""
        envelope = self.verifier.verify(record.value or b"")
        key = self.routing.key(envelope.section(SectionKind.ROUTING).key_id)
        return self.opener.open(envelope, SectionKind.ROUTING, key)

    def find(self, records: list[RawRecord], event_type: str, condition: Callable[[RawRecord], bool]) -> RawRecord:
        """The one record of ``event_type`` meeting ``condition``."""
        [found] = [r for r in records if r.header("event-type") == event_type and condition(r)]
        return found

    def close(self) -> None:
        self.verifier.close()


def _flip(data: bytes, index: int) -> bytes:
    flipped = bytearray(data)
    flipped[index] ^= 0x01
    return bytes(flipped)


def _reseal(sealer: Sealer, header: EventHeader, routing_key: DataKey, payload: bytes) -> bytes:
    return sealer.seal(header, {SectionKind.ROUTING: (routing_key, payload)})


def test_forged_altered_replayed_and_reordered_records_are_rejected_and_reported(
        org: Callable[[str], Partner], security_network: LocalNetwork, security_kafka: str,
        security_inbox: RecordingInbox, tmp_path: Path) -> None:
    network_dir = security_network.network_dir
    referrer = org(REFERRER)
    submitted = referrer.intake.SubmitReferral(referral_request(
        needs=[(vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE)], region=vocab.REGION_LIMA,
        consents=[grant(vocab.ORG_ROLE_SHELTER)], case_file_number=951), timeout=RPC_TIMEOUT_S)
    offered = referral_when(referrer, submitted.referral_id, lambda r: bool(r.needs[0].handoffs), "the offer")
    handoff = offered.needs[0].handoffs[0]
    provider = org(handoff.provider_org)
    provider.referral.AcceptHandoff(ref.AcceptHandoffRequest(handoff_id=handoff.handoff_id), timeout=RPC_TIMEOUT_S)
    accepted = referral_when(referrer, submitted.referral_id,
                             lambda r: r.needs[0].handoffs[0].state == ref.HANDOFF_STATE_ACCEPTED, "the acceptance")
    security_inbox.wait_for(lambda notices: has_both(notices, provider.org_id, handoff.handoff_id), 60)
    wait_settled(security_kafka, WORKER_GROUPS)

    subject_stream = f"subject-{submitted.subject_id}"
    intake_records = read_everything(security_kafka, [INTAKE_TOPIC])
    referral_records = read_everything(security_kafka, [REFERRAL_TOPIC])
    reader = Reader(network_dir)
    try:
        submission = reader.find(intake_records, "ReferralSubmitted",
                                 lambda r: reader.header(r).stream_id == subject_stream)
        consent = reader.find(intake_records, "ConsentRecorded", lambda r: reader.header(r).stream_id == subject_stream)
        about_handoff = lambda r: handoff.handoff_id.encode() in reader.routing_payload(r)  # noqa: E731
        offer = reader.find(referral_records, "HandoffOffered", about_handoff)
        acceptance = reader.find(referral_records, "HandoffAccepted", about_handoff)
        consent_header, consent_payload = reader.header(consent), reader.routing_payload(consent)
        offer_header, accepted_header = reader.header(offer), reader.header(acceptance)
        routing_key = reader.routing.current()
    finally:
        reader.close()
    injected: dict[str, str] = {}

    # forged: signed by another network's svc:intake#sig-1
    stranger = init_network(tmp_path / "stranger").layout.root
    intake_owner = service_owner("intake")
    forger = Sealer(EnvelopeSigner(intake_owner, signing_key_id(intake_owner),
                                   load_service_signing_key(stranger, "intake")))
    forged_header = EventHeader(
        event_id=new_event_id(), event_type="ConsentRecorded", schema_version=consent_header.schema_version,
        stream_id=subject_stream, stream_sequence=90, occurred_at_unix_micros=consent_header.occurred_at_unix_micros,
        producer_org=intake_owner, producer_service="intake", signing_key_id=signing_key_id(intake_owner))
    forged = _reseal(forger, forged_header, routing_key, consent_payload)
    produce(security_kafka, INTAKE_TOPIC, forged, key=subject_stream.encode(),
            headers=kafka_headers(forged_header.event_id, "ConsentRecorded", "", ""))
    injected["forged"] = forged_header.event_id

    # altered: one bit of the sealed routing section of the genuine ReferralSubmitted
    envelope = envelope_pb2.Envelope.FromString(submission.value or b"")
    envelope.sections[0].ciphertext = _flip(envelope.sections[0].ciphertext, 0)
    produce(security_kafka, INTAKE_TOPIC, envelope.SerializeToString(), key=submission.key, headers=submission.headers)
    injected["altered section"] = submission.header("event-id") or ""

    # altered: one bit of the cleartext header of the genuine HandoffAccepted (in its event type's last letter)
    envelope = envelope_pb2.Envelope.FromString(acceptance.value or b"")
    envelope.header = _flip(envelope.header, envelope.header.index(b"HandoffAccepted") + len("HandoffAccepted") - 1)
    produce(security_kafka, REFERRAL_TOPIC, envelope.SerializeToString(), key=acceptance.key,
            headers=acceptance.headers)
    injected["altered header"] = acceptance.header("event-id") or ""

    # replayed: the genuine HandoffOffered again, byte for byte
    produce(security_kafka, REFERRAL_TOPIC, offer.value or b"", key=offer.key, headers=offer.headers)
    injected["replayed"] = offer.header("event-id") or ""

    # reordered: a HandoffDeclined at sequence 1, behind the acceptance at 2, signed with referral's stolen key
    referral_owner = service_owner("referral")
    thief = Sealer(EnvelopeSigner(referral_owner, signing_key_id(referral_owner),
                                  load_service_signing_key(network_dir, "referral")))
    reordered_header = EventHeader(
        event_id=new_event_id(), event_type="HandoffDeclined", schema_version=accepted_header.schema_version,
        stream_id=accepted_header.stream_id, stream_sequence=offer_header.stream_sequence,
        occurred_at_unix_micros=accepted_header.occurred_at_unix_micros + 1, producer_org=referral_owner,
        producer_service="referral", signing_key_id=signing_key_id(referral_owner))
    declined = referral_events.HandoffDeclined(
        handoff_id=handoff.handoff_id, referral_id=submitted.referral_id, subject_id=submitted.subject_id,
        provider_org=provider.org_id, reason=ref.DECLINE_REASON_OTHER,
        declined_at_unix_micros=reordered_header.occurred_at_unix_micros)
    produce(security_kafka, REFERRAL_TOPIC, _reseal(thief, reordered_header, routing_key,
                                                   declined.SerializeToString()),
            key=acceptance.key, headers=kafka_headers(reordered_header.event_id, "HandoffDeclined", "", ""))
    injected["reordered"] = reordered_header.event_id
    assert offer_header.stream_sequence < accepted_header.stream_sequence

    wait_settled(security_kafka, WORKER_GROUPS)

    # The workers: each consumer of the topic dead-letters what does not verify, with the reason, by event id.
    letters: set[tuple[str, str, str]] = set()
    for group in WORKER_GROUPS:
        for record in read_everything(security_kafka, [dead_letter_topic(group)]):
            letters.add((record.header("event-id") or "", group, header_map(record.headers)["reason"]))
    rejected = {"forged": "bad_signature", "altered section": "tampered_section", "altered header": "tampered_header"}
    topic_of = {"forged": INTAKE_TOPIC, "altered section": INTAKE_TOPIC, "altered header": REFERRAL_TOPIC}
    expected_letters = {(injected[what], group, reason) for what, reason in rejected.items()
                        for group in CONSUMERS[topic_of[what]]}
    ours = set(injected.values())
    assert {letter for letter in letters if letter[0] in ours} == expected_letters, letters

    # Nothing the attacker did changed the handoff: referral, intake (the key is still released to the provider
    # who accepted) and notify (one offer notice per channel, no second one for the replayed offer).
    assert get_referral(referrer, submitted.referral_id) == accepted
    assert provider.intake.ReleaseKey(release_request(submitted.subject_id), timeout=RPC_TIMEOUT_S).released_key
    notices = offer_notices(security_inbox.notices(), provider.org_id, handoff.handoff_id)
    assert [len(notices[channel]) for channel in sorted(notices)] == [1, 1], notices

    # The audit service names every one of them by event id (the replayed record: not a second leaf).
    expected: Counter[tuple[str, tuple[str, ...]]] = Counter([
        ("bad_signature", (injected["forged"],)), ("tampered_section", (injected["altered section"],)),
        ("tampered_header", (injected["altered header"],)),
        ("sequence_duplicate", (injected["replayed"], injected["reordered"]))])
    for what in rejected:  # one dead letter per consuming worker
        expected[("dead_lettered", (injected[what],))] = len(CONSUMERS[topic_of[what]])
    auditor = audit_pb2_grpc.AuditServiceStub(security_network.channel("aud-lim-01", "audit"))

    def service_report() -> Counter[tuple[str, tuple[str, ...]]] | None:
        report = auditor.ComplianceReport(audit_pb2.ComplianceReportRequest(), timeout=RPC_TIMEOUT_S)
        found = Counter((v.check, tuple(v.event_ids)) for v in report.violations if ours & set(v.event_ids))
        return found if found == expected else None
    wait_for(service_report, 60, "the ComplianceReport naming every injected record", interval_s=1.0)

    # The auditor's own replay from offset 0 names them too, and counts the replayed record as a duplicate.
    out = tmp_path / "replay"
    status = main(["audit", "replay", "--bootstrap", security_kafka, "--network", str(network_dir),
                   "--ca", str(network_dir / "ca" / "ca.pem"), "--out", str(out), "--no-progress"])
    replayed = json.loads((out / "report.json").read_text())
    assert status == 1
    found = Counter((v["check"], tuple(v["event_ids"])) for v in replayed["violations"] if ours & set(v["event_ids"]))
    assert found == expected, replayed["violations"]
    assert replayed["duplicates"] >= 1
    page = (out / "report.html").read_text()
    assert all(event_id in page for event_id in ours)
