"""Builders for the auditor's replay tests: a directory with keys, sealed intake and referral events, an
in-memory log standing in for Kafka's partitions, and checkpoints signed by the audit service's key.

Everything is synthetic: pseudonymous ids, seed organisations with fresh keys, no personal data.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uuid6
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from services.audit.application.records import SourceRecord
from services.audit.domain.checkpoint import Checkpoint, LeafRun, checkpoint_origin, sign_checkpoint
from services.audit.domain.merkle import MemoryTree
from services.audit.replay.examine import Examined, Examiner
from services.audit.replay.log_reader import LogBounds, Position
from services.core.envelope import EnvelopeSigner, EventHeader, Sealer, SectionKind, Verifier, new_event_id
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.consent.v1 import consent_pb2 as consent
from services.core.generated.referralnet.intake.v1 import events_pb2 as intake
from services.core.generated.referralnet.intake.v1 import intake_pb2
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral
from services.core.identity.directory import Directory
from services.core.identity.records import service_owner, signing_key_id
from services.core.keyvault.routing_keys import NetworkRoutingKeys
from services.core.messaging.topics import dead_letter_topic, events_topic
from tests.unit.identity_factories import DirectoryWithKeys, make_directory

INTAKE_TOPIC, REFERRAL_TOPIC = events_topic("intake"), events_topic("referral")
REFERRAL_DLQ = dead_letter_topic("referral-worker")
AUDIT_KEY = signing_key_id(service_owner("audit"))
START_US = 1_800_000_000_000_000  # 2027-01-15: a fixed instant
MINUTE_US = 60 * 1_000_000


def _id(prefix: str) -> str:
    return prefix + uuid6.uuid7().hex


def timestamp(unix_micros: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMicroseconds(unix_micros)
    return stamp


@dataclass
class AuditWorld:
    """A directory with every key, the network routing key, and sealers for intake and referral."""

    made: DirectoryWithKeys = field(default_factory=make_directory)
    routing: NetworkRoutingKeys = field(default_factory=lambda: NetworkRoutingKeys({"nrk-1": os.urandom(32)}))

    @property
    def directory(self) -> Directory:
        return self.made.directory

    @property
    def origin(self) -> str:
        return checkpoint_origin(self.directory.network_id)

    def sealer(self, producer: str) -> Sealer:
        key_id = signing_key_id(producer)
        return Sealer(EnvelopeSigner(producer, key_id, self.made.signing_keys[key_id]))

    def seal(self, message: Message, *, producer: str, stream_id: str, sequence: int, at_us: int,
             event_id: str | None = None, signer: str | None = None) -> tuple[str, bytes]:
        """``(event_id, wire)`` of ``message`` as the routing section, signed by ``signer`` (default: producer)."""
        owner = signer or producer
        header = EventHeader(event_id=event_id or new_event_id(), event_type=message.DESCRIPTOR.name, schema_version=1,
                             stream_id=stream_id, stream_sequence=sequence, occurred_at_unix_micros=at_us,
                             producer_org=owner, producer_service=producer.removeprefix("svc:"),
                             signing_key_id=signing_key_id(owner))
        sealed = self.sealer(owner).seal_event(
            header, {SectionKind.ROUTING: (self.routing.current(), message.SerializeToString(deterministic=True))})
        return header.event_id, sealed.wire

    def sign(self, size: int, root: bytes, previous: Checkpoint | None, runs: Iterable[LeafRun], *,
             at_us: int = START_US, key_id: str = AUDIT_KEY, origin: str | None = None) -> Checkpoint:
        return sign_checkpoint(origin or self.origin, size, root, at_us, previous, tuple(runs), key_id,
                               self.made.signing_keys[key_id])

    def examiner(self, dead_letter_topics: Iterable[str] = (REFERRAL_DLQ,)) -> Examiner:
        return Examiner(Verifier(self.directory, workers=1), self.routing, frozenset(dead_letter_topics))


class Log:
    """Kafka's partitions in memory: append records, read them back, the bounds of what is there."""

    def __init__(self) -> None:
        self.partitions: dict[tuple[str, int], list[SourceRecord]] = {}

    def append(self, topic: str, partition: int, value: bytes | None,
               headers: Sequence[tuple[str, bytes]] = ()) -> SourceRecord:
        records = self.partitions.setdefault((topic, partition), [])
        record = SourceRecord(topic, partition, len(records), value, tuple(headers))
        records.append(record)
        return record

    def records(self, topics: Iterable[str] | None = None) -> list[SourceRecord]:
        wanted = set(topics) if topics is not None else None
        return [record for (topic, _), records in sorted(self.partitions.items()) for record in records
                if wanted is None or topic in wanted]

    def bounds(self) -> LogBounds:
        return LogBounds({key: 0 for key in self.partitions},
                         {key: len(records) for key, records in self.partitions.items()})

    def examined(self, world: AuditWorld, topics: Iterable[str] | None = None) -> dict[Position, Examined]:
        examiner = world.examiner()
        return {entry.position: entry for entry in examiner.examine(self.records(topics))}


def run(record_from: SourceRecord, record_to: SourceRecord) -> LeafRun:
    """The run of one partition's records from one record to another (inclusive)."""
    assert (record_from.topic, record_from.partition) == (record_to.topic, record_to.partition)
    return LeafRun(record_from.topic, record_from.partition, record_from.offset, record_to.offset)


def memory_root(leaf_inputs: Sequence[bytes]) -> bytes:
    tree = MemoryTree()
    for leaf in leaf_inputs:
        tree.append(leaf)
    return tree.root()


Emit = Callable[[str, str, int, int, Message], tuple[str, Any]]
"""``emit(producer, stream_id, sequence, at_us, message) -> (event_id, handle)``: how a Journey's events are sealed."""


@dataclass
class Journey:
    """One subject's story, in intake's and referral's streams: consent, submission, offers, acceptance,
    release, completion. Each method emits one event and returns what ``emit`` gave for it (by default: the
    event sealed by ``world`` and appended to ``log``, so the record)."""

    world: AuditWorld
    log: Log | None = None
    intake_partition: int = 0
    referral_partition: int = 1
    emit: Emit | None = None
    subject_id: str = field(default_factory=lambda: _id("sub-"))
    referral_id: str = field(default_factory=lambda: _id("ref-"))
    now: int = START_US
    event_ids: dict[str, str] = field(default_factory=dict)
    _intake_seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _referral_seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _to_log(self, producer: str, stream_id: str, sequence: int, at_us: int, message: Message,
                ) -> tuple[str, SourceRecord]:
        assert self.log is not None
        event_id, wire = self.world.seal(message, producer=producer, stream_id=stream_id, sequence=sequence,
                                         at_us=at_us)
        topic, partition = ((INTAKE_TOPIC, self.intake_partition) if producer == "svc:intake"
                            else (REFERRAL_TOPIC, self.referral_partition))
        return event_id, self.log.append(topic, partition, wire, [("event-id", event_id.encode())])

    def _event(self, producer: str, stream_id: str, sequence: int, message: Message, name: str) -> Any:
        emit = self.emit or self._to_log
        event_id, handle = emit(producer, stream_id, sequence, self.now, message)
        self.event_ids[name] = event_id
        return handle

    def _intake(self, message: Message, name: str) -> Any:
        return self._event("svc:intake", f"subject-{self.subject_id}", next(self._intake_seq), message, name)

    def _referral(self, message: Message, name: str) -> Any:
        return self._event("svc:referral", f"referral-{self.referral_id}", next(self._referral_seq), message, name)

    def consent(self, role: vocab.OrgRole = vocab.ORG_ROLE_SHELTER) -> tuple[str, Any]:
        consent_id = _id("con-")
        grant = consent.ConsentGrant(
            recipient=consent.ConsentRecipient(role=role), purposes=[consent.PURPOSE_SERVICE_DELIVERY],
            categories=[consent.DATA_CATEGORY_ROUTING, consent.DATA_CATEGORY_CASE_FILE],
            given_by=consent.CONSENT_GIVER_SUBJECT, expires_at=timestamp(self.now + 365 * 24 * 60 * MINUTE_US))
        message = intake.ConsentRecorded(consent_id=consent_id, subject_id=self.subject_id, grant=grant,
                                         recorded_by_org="pol-mdd-01", recorded_at_unix_micros=self.now)
        return consent_id, self._intake(message, "ConsentRecorded")

    def revoke(self, consent_id: str) -> Any:
        message = intake.ConsentRevoked(consent_id=consent_id, subject_id=self.subject_id, revoked_by_org="pol-mdd-01",
                                        revoked_at_unix_micros=self.now)
        return self._intake(message, "ConsentRevoked")

    def submit(self, consent_ids: Sequence[str], service: vocab.ServiceType = vocab.SERVICE_TYPE_SHELTER,
               ) -> Any:
        message = intake.ReferralSubmitted(
            referral_id=self.referral_id, subject_id=self.subject_id, referrer_org="pol-mdd-01",
            needs=[intake_pb2.Need(service_type=service, urgency=vocab.URGENCY_IMMEDIATE)],
            region=vocab.REGION_CUSCO, minor=False, exploitation_type=vocab.EXPLOITATION_TYPE_FORCED_LABOUR_MINING,
            submitted_at_unix_micros=self.now, consent_ids=list(consent_ids), case_file_key_id="dk-synthetic-0001")
        return self._intake(message, "ReferralSubmitted")

    def offer(self, provider: str, consent_id: str, *, need_index: int = 0, attempt: int = 1,
              service: vocab.ServiceType = vocab.SERVICE_TYPE_SHELTER,
              region: vocab.Region = vocab.REGION_CUSCO) -> tuple[str, Any]:
        handoff_id = _id("hof-")
        message = referral.HandoffOffered(
            handoff_id=handoff_id, referral_id=self.referral_id, subject_id=self.subject_id, need_index=need_index,
            service_type=service, urgency=vocab.URGENCY_IMMEDIATE, region=region, minor=False,
            provider_org=provider, offered_at_unix_micros=self.now, expires_at_unix_micros=self.now + 120 * MINUTE_US,
            consent_id=consent_id, attempt=attempt)
        return handoff_id, self._referral(message, f"HandoffOffered#{attempt}")

    def accept(self, handoff_id: str, provider: str) -> Any:
        message = referral.HandoffAccepted(handoff_id=handoff_id, referral_id=self.referral_id,
                                           subject_id=self.subject_id, provider_org=provider,
                                           accepted_at_unix_micros=self.now)
        return self._referral(message, "HandoffAccepted")

    def complete(self, handoff_id: str, provider: str) -> Any:
        message = referral.ServiceCompleted(handoff_id=handoff_id, referral_id=self.referral_id,
                                            subject_id=self.subject_id, provider_org=provider,
                                            completed_at_unix_micros=self.now)
        return self._referral(message, "ServiceCompleted")

    def release(self, provider: str, consent_id: str, handoff_id: str) -> Any:
        message = intake.KeyReleased(
            release_id=_id("rel-"), subject_id=self.subject_id, key_id="dk-synthetic-0001",
            category=consent.DATA_CATEGORY_CASE_FILE, purpose=consent.PURPOSE_SERVICE_DELIVERY,
            recipient_org=provider, recipient_kem_key_id=f"{provider}#kem-1", consent_id=consent_id,
            handoff_id=handoff_id, released_at_unix_micros=self.now)
        return self._intake(message, "KeyReleased")

    def tick(self, minutes: int = 1) -> None:
        self.now += minutes * MINUTE_US
