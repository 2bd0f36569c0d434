"""Helpers of the end-to-end tests: partners' typed stubs, bounded waits, inbox polling, raw topic reads.

Everything here talks to the real network (mTLS gRPC, real Kafka); nothing is faked. Every wait has a
deadline and fails naming what it waited for.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from kafka import KafkaConsumer, TopicPartition

from services.core.envelope import Opener, SectionKind, VerifiedEnvelope, Verifier
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.consent.v1 import consent_pb2 as consent
from services.core.generated.referralnet.intake.v1 import intake_pb2, intake_pb2_grpc
from services.core.generated.referralnet.referral.v1 import referral_pb2, referral_pb2_grpc
from services.core.identity.directory import Directory
from services.core.identity.keystore import load_directory, load_org_kem_key
from services.core.identity.records import kem_key_id
from services.core.keyvault.release import open_released_key
from services.core.keyvault.released import ReleasedKey

T = TypeVar("T")

RPC_TIMEOUT_S = 15.0
ENGLISH = (("accept-language", "en"),)
HandoffState = referral_pb2.HandoffState


@dataclass(frozen=True)
class Partner:
    """One organisation's view of the network: its id and a typed stub per service (one mTLS channel each)."""

    org_id: str
    intake: intake_pb2_grpc.IntakeServiceStub
    referral: referral_pb2_grpc.ReferralServiceStub


def wait_for(predicate: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy, and return it; AssertionError at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what} (last answer: {last!r})")


def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    """The RpcError ``call`` raises; AssertionError when it succeeds."""
    try:
        result = call()
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"expected the call to fail, it answered {result!r}")


def status_code(call: Callable[[], object]) -> grpc.StatusCode:
    """The status code of a failing call (AssertionError when it succeeds)."""
    code: grpc.StatusCode = rpc_error(call).code()
    return code


def inbox(partner: Partner, states: Sequence[referral_pb2.HandoffState] = (), page_size: int = 500,
          ) -> list[referral_pb2.Handoff]:
    """The first page of a provider's handoffs (newest first), optionally only in ``states``."""
    request = referral_pb2.ListHandoffsRequest(states=list(states), page_size=page_size)
    return list(partner.referral.ListHandoffs(request, timeout=RPC_TIMEOUT_S).handoffs)


def wait_for_handoff(partner: Partner, referral_id: str, *, service_type: int | None = None,
                     state: referral_pb2.HandoffState = referral_pb2.HANDOFF_STATE_OFFERED, timeout_s: float = 30.0,
                     ) -> referral_pb2.Handoff:
    """Poll ``partner``'s inbox until a handoff of ``referral_id`` (and service type) in ``state`` shows."""
    def found() -> referral_pb2.Handoff | None:
        for handoff in inbox(partner, [state]):
            if handoff.referral_id == referral_id and service_type in (None, handoff.service_type):
                return handoff
        return None

    name = HandoffState.Name(state)
    return wait_for(found, timeout_s, f"a {name} handoff of {referral_id} in {partner.org_id}'s inbox")


def get_referral(partner: Partner, referral_id: str) -> referral_pb2.Referral:
    """The referral as ``partner`` (its referrer or a coordinator) sees it."""
    request = referral_pb2.GetReferralRequest(referral_id=referral_id)
    referral: referral_pb2.Referral = partner.referral.GetReferral(request, timeout=RPC_TIMEOUT_S).referral
    return referral


def known_referral(partner: Partner, referral_id: str) -> referral_pb2.Referral | None:
    """The referral, or None while the referral service has not learnt of it yet.

    The referral service creates a referral when its worker consumes ReferralSubmitted from intake's topic;
    until then GetReferral answers PERMISSION_DENIED, as for any id that is not the caller's (ADR 11).
    """
    try:
        return get_referral(partner, referral_id)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.PERMISSION_DENIED:
            return None
        raise


def referral_when(partner: Partner, referral_id: str, condition: Callable[[referral_pb2.Referral], bool],
                  what: str, timeout_s: float = 30.0) -> referral_pb2.Referral:
    """Poll GetReferral (as ``partner``) until ``condition`` holds for the referral, and return it."""
    def check() -> referral_pb2.Referral | None:
        referral = known_referral(partner, referral_id)
        return referral if referral is not None and condition(referral) else None
    return wait_for(check, timeout_s, f"referral {referral_id}: {what}", interval_s=0.1)


def need_of(referral: referral_pb2.Referral, service_type: int) -> referral_pb2.NeedStatus:
    """The need of one service type."""
    for need in referral.needs:
        if need.service_type == service_type:
            return need
    raise AssertionError(f"referral {referral.referral_id} has no {vocab.ServiceType.Name(service_type)} need")


def trail(need: referral_pb2.NeedStatus) -> list[tuple[str, str]]:
    """``[(provider, state name), ...]`` of a need's handoffs, oldest first."""
    return [(handoff.provider_org, HandoffState.Name(handoff.state)) for handoff in need.handoffs]


# -- requests ---------------------------------------------------------------------------------------------


def new_idempotency_key() -> str:
    """A fresh idempotency key (32 hex digits: within [A-Za-z0-9_-]{16,128})."""
    return uuid.uuid4().hex


def expires_in(days: float) -> Timestamp:
    """A timestamp ``days`` from now."""
    stamp = Timestamp()
    stamp.FromNanoseconds(time.time_ns() + int(days * 86_400 * 1e9))
    return stamp


def grant(role: vocab.OrgRole,
          purposes: Iterable[consent.Purpose] = (consent.PURPOSE_SERVICE_DELIVERY,), *,
          given_by: consent.ConsentGiver = consent.CONSENT_GIVER_SUBJECT, days: float = 180,
          categories: Iterable[consent.DataCategory] = (consent.DATA_CATEGORY_ROUTING,
                                                                  consent.DATA_CATEGORY_CASE_FILE),
          ) -> consent.ConsentGrant:
    """A consent for every organisation of ``role``."""
    return consent.ConsentGrant(recipient=consent.ConsentRecipient(role=role), purposes=list(purposes),
                                categories=list(categories), given_by=given_by, expires_at=expires_in(days))


def synthetic_case_file(number: int, narrative: str = "Relato sintético para pruebas de extremo a extremo.",
                        ) -> intake_pb2.CaseFile:
    """A case file of a synthetic person (never a real one)."""
    return intake_pb2.CaseFile(
        given_names=f"Persona Sintética {number}", family_names="Prueba Ficticia", date_of_birth="1998-04-12",
        document_type="DNI", document_number=f"SINT-{number:04d}", nationality="PE", languages=["es", "qu"],
        narrative=narrative, safe_contact="Por medio de la organización que deriva (sintético).")


def referral_request(*, needs: Sequence[tuple[vocab.ServiceType, vocab.Urgency]],
                     region: vocab.Region, consents: Sequence[consent.ConsentGrant],
                     minor: bool = False, subject_id: str = "", case_file_number: int = 1,
                     exploitation_type: vocab.ExploitationType = vocab.EXPLOITATION_TYPE_FORCED_LABOUR_MINING,
                     idempotency_key: str | None = None) -> intake_pb2.SubmitReferralRequest:
    """A SubmitReferralRequest with a fresh idempotency key unless one is given."""
    return intake_pb2.SubmitReferralRequest(
        idempotency_key=idempotency_key or new_idempotency_key(), subject_id=subject_id,
        case_file=synthetic_case_file(case_file_number),
        needs=[intake_pb2.Need(service_type=service, urgency=urgency) for service, urgency in needs],
        region=region, minor=minor, exploitation_type=exploitation_type, consents=list(consents))


def release_request(subject_id: str, purpose: consent.Purpose = consent.PURPOSE_SERVICE_DELIVERY,
                    category: consent.DataCategory = consent.DATA_CATEGORY_CASE_FILE,
                    ) -> intake_pb2.ReleaseKeyRequest:
    """A ReleaseKey request for the case file, for service delivery unless told otherwise."""
    return intake_pb2.ReleaseKeyRequest(subject_id=subject_id, purpose=purpose, category=category)


# -- the provider's side of a release --------------------------------------------------------------------


def open_released_case_files(network_dir: Path, org_id: str, released: intake_pb2.ReleaseKeyResponse,
                             ) -> list[intake_pb2.CaseFile]:
    """What the provider's own machine does: unwrap the key with its KEM key, verify, open every case file.

    Written against the core primitives only (independent of intake's client helper, which the tests
    compare with it).
    """
    directory = load_directory(network_dir)
    key = open_released_key(ReleasedKey.from_bytes(released.released_key), org_id, kem_key_id(org_id),
                            load_org_kem_key(network_dir, org_id))
    assert key.key_id == released.key_id
    verifier, opener = Verifier(directory), Opener()
    files = []
    for wire in released.envelopes:
        envelope = verifier.verify(wire)
        if envelope.header.event_type != "ReferralSubmitted":
            continue
        if envelope.section(SectionKind.CASE_FILE).key_id == key.key_id:
            files.append(intake_pb2.CaseFile.FromString(opener.open(envelope, SectionKind.CASE_FILE, key)))
    verifier.close()
    return files


# -- raw reads of the log ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawEvent:
    """One record of a topic as anybody with broker access reads it, verified against the directory."""

    topic: str
    partition: int
    offset: int
    wire: bytes
    envelope: VerifiedEnvelope


def read_topic(bootstrap: str, topic: str, directory: Directory, *, timeout_s: float = 30.0) -> list[RawEvent]:
    """Every record of ``topic`` from the beginning to its current end, each envelope verified (bounded)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             isolation_level="read_committed", consumer_timeout_ms=1000)
    verifier = Verifier(directory)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        assert partitions, f"topic {topic} has no partitions (does it exist?)"
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        events: list[RawEvent] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"reading {topic} to its end took more than {timeout_s:.0f}s"
            for batch in consumer.poll(timeout_ms=500).values():
                for record in batch:
                    events.append(RawEvent(record.topic, record.partition, record.offset, record.value,
                                           verifier.verify(record.value)))
        return events
    finally:
        verifier.close()
        consumer.close()


def events_of(events: Iterable[RawEvent], event_type: str, stream_id: str | None = None) -> list[RawEvent]:
    """The events of one type (and stream)."""
    return [event for event in events if event.envelope.header.event_type == event_type
            and stream_id in (None, event.envelope.header.stream_id)]


def directory_of(network_dir: Path) -> Directory:
    """The CA-verified directory of the network."""
    return load_directory(network_dir)


def role_name(role: int) -> str:
    """``shelter`` for ORG_ROLE_SHELTER."""
    return vocab.OrgRole.Name(role).removeprefix("ORG_ROLE_").lower()
