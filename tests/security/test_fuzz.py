"""10,000 fuzzed requests across every public RPC of intake, referral, audit and notify, from many organisations.

A seeded generator (``random.Random(SEED)``: the same requests every run) fills each request message from its
protobuf descriptor with wild values: any Unicode text up to a few KiB, control characters, real ids of this
module's referral, made-up ids of the right shape, open enum numbers, extreme integers and timestamps, nested
messages and repeated fields. The calls spread evenly over the 20 RPCs (500 each) and go over mTLS,
four at a time, each as some organisation of the directory.

Every request to an RPC that changes state is one that must be refused: an organisation with no right to it,
an id that is not the caller's (made up, or this module's referral asked by an outsider), or, for
SubmitReferral by a referring organisation, an idempotency key shorter than the 16 characters required; the
read-only RPCs (GetSubjectConsent, GetReferral, ListHandoffs, the five AuditService RPCs, ListDeliveries) may
answer. Then:

- no answer is INTERNAL, UNKNOWN or any code outside the actionable ones (nor a dropped call);
- no state-changing request succeeded;
- every process of the network still runs;
- no state changed: after the network settles, every table of every service's database holds the same number
  of rows, and every topic ends at the same offset, as before the 10,000 calls.
"""

from __future__ import annotations

import os
import random
import sqlite3
import string
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from deploy.local.network import LocalNetwork
from services.core.generated.referralnet.audit.v1 import audit_pb2
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.intake.v1 import intake_pb2
from services.core.generated.referralnet.notify.v1 import notify_pb2
from services.core.generated.referralnet.referral.v1 import referral_pb2 as ref
from services.core.identity.keystore import load_directory
from tests.e2e.support import RPC_TIMEOUT_S, Partner, grant, referral_request, referral_when
from tests.security.support import end_offsets, wait_settled

pytestmark = [pytest.mark.security, pytest.mark.timeout(600)]

SEED = 20261127
TOTAL = int(os.environ.get("SECURITY_FUZZ_REQUESTS", "10000"))
PARALLEL = 4
CALL_TIMEOUT_S = 20.0
REFERRER = "fis-lim-01"
WORKER_GROUPS = ("intake-worker", "referral-worker", "audit-worker", "notify-worker")
ACTIONABLE = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED,
              grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.NOT_FOUND,
              grpc.StatusCode.OUT_OF_RANGE}
OUTSIDERS = ("sal-lor-01", "aud-lim-01", "alb-pun-01", "pol-cus-01", "psi-cus-01")
NON_REFERRERS = ("alb-cus-01", "alb-pun-01", "leg-aqp-01", "psi-lim-01", "sal-lor-01", "aud-lim-01")
REFERRERS = ("pol-mdd-01", "fis-lim-01", "ong-cus-01")
NO_CAPACITY = ("pol-mdd-01", "fis-lim-01", "aud-lim-01")
# The prefix of made-up ids of the right shape, by field name.
PREFIXES = {"subject_id": "sub", "referral_id": "ref", "handoff_id": "hof", "consent_id": "con"}
TEXT_POOLS = (string.printable, "áéíóúñÑüçÇ¿¡€漢字🙂\u200b\u202e\ufeff", "\x00\x01\x7f\x1b", string.ascii_letters)


@dataclass(frozen=True)
class Rpc:
    """One RPC: its service, method, request type, whether it changes state, and how it is fuzzed."""

    service: str
    method: str
    request: type[Message]
    mutating: bool


RPCS = (
    Rpc("intake", "SubmitReferral", intake_pb2.SubmitReferralRequest, True),
    Rpc("intake", "RecordConsent", intake_pb2.RecordConsentRequest, True),
    Rpc("intake", "RevokeConsent", intake_pb2.RevokeConsentRequest, True),
    Rpc("intake", "ReleaseKey", intake_pb2.ReleaseKeyRequest, True),
    Rpc("intake", "GetSubjectConsent", intake_pb2.GetSubjectConsentRequest, False),
    Rpc("intake", "EraseSubject", intake_pb2.EraseSubjectRequest, True),
    Rpc("referral", "ListHandoffs", ref.ListHandoffsRequest, False),
    Rpc("referral", "AcceptHandoff", ref.AcceptHandoffRequest, True),
    Rpc("referral", "DeclineHandoff", ref.DeclineHandoffRequest, True),
    Rpc("referral", "StartService", ref.StartServiceRequest, True),
    Rpc("referral", "CompleteService", ref.CompleteServiceRequest, True),
    Rpc("referral", "WithdrawHandoff", ref.WithdrawHandoffRequest, True),
    Rpc("referral", "GetReferral", ref.GetReferralRequest, False),
    Rpc("referral", "UpdateCapacity", ref.UpdateCapacityRequest, True),
    Rpc("audit", "GetCheckpoint", audit_pb2.GetCheckpointRequest, False),
    Rpc("audit", "GetInclusionProof", audit_pb2.GetInclusionProofRequest, False),
    Rpc("audit", "GetConsistencyProof", audit_pb2.GetConsistencyProofRequest, False),
    Rpc("audit", "ReplayLog", audit_pb2.ReplayLogRequest, False),
    Rpc("audit", "ComplianceReport", audit_pb2.ComplianceReportRequest, False),
    Rpc("notify", "ListDeliveries", notify_pb2.ListDeliveriesRequest, False),
)
PACKAGES = {"intake": "referralnet.intake.v1.IntakeService", "referral": "referralnet.referral.v1.ReferralService",
            "audit": "referralnet.audit.v1.AuditService", "notify": "referralnet.notify.v1.NotifyService"}


@dataclass(frozen=True)
class RealIds:
    """This module's referral (fis-lim-01's) and what hangs off it: probed by outsiders only."""

    subject_id: str
    referral_id: str
    consent_ids: tuple[str, ...]
    handoff_ids: tuple[str, ...]
    event_ids: tuple[str, ...]


class Generator:
    """Seeded wild values for any request message, with real and made-up ids."""

    def __init__(self, seed: int, real: RealIds) -> None:
        self.random = random.Random(seed)  # noqa: S311 (reproducible test data, not secrets)
        self.real = real

    def text(self) -> str:
        pool = self.random.choice(TEXT_POOLS)
        size = self.random.choice((0, 1, 8, 40, 200, self.random.randint(0, 4_000)))
        return "".join(self.random.choice(pool) for _ in range(size))

    def identifier(self, name: str) -> str:
        """A value for an ``*_id`` field: a real one, a made-up one of the right shape, or any text."""
        real = {"subject_id": [self.real.subject_id], "referral_id": [self.real.referral_id],
                "consent_id": list(self.real.consent_ids), "handoff_id": list(self.real.handoff_ids),
                "event_id": list(self.real.event_ids)}.get(name, [])
        roll = self.random.random()
        if real and roll < 0.35:
            return self.random.choice(real)
        if roll < 0.7:
            return f"{PREFIXES.get(name, 'id')}-{self.random.getrandbits(128):032x}"
        return self.text()

    def value(self, field: Any, depth: int) -> object:
        kind = field.type
        if kind == FieldDescriptor.TYPE_STRING:
            return self.identifier(field.name) if field.name.endswith("_id") else self.text()
        if kind == FieldDescriptor.TYPE_BYTES:
            return self.random.randbytes(self.random.randint(0, 64))
        if kind == FieldDescriptor.TYPE_BOOL:
            return self.random.random() < 0.5
        if kind == FieldDescriptor.TYPE_ENUM:
            assert field.enum_type is not None
            values = [v.number for v in field.enum_type.values]
            wild = self.random.randint(-(2**31), 2**31 - 1)
            return self.random.choice(values) if self.random.random() < 0.7 else wild
        if kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
            return self.random.choice((0, 1, -1, 10, 500, 10_001, 2**31 - 1, -(2**31), self.random.randint(-9, 999)))
        if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
            return self.random.choice((0, 1, 2, 10_000, 10_001, 2**32 - 1, self.random.randint(0, 99)))
        if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
            return self.random.choice((0, -1, 2**63 - 1, -(2**63), self.random.randint(-(10**12), 10**16)))
        if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
            return self.random.choice((0, 1, 2, 3, 2**63, 2**64 - 1, self.random.randint(0, 50)))
        if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return self.random.choice((0.0, -1.0, 1e308, float("nan")))
        raise AssertionError(f"no generator for field {field.full_name} of type {kind}")

    def fill(self, message: Message, depth: int = 0) -> Message:
        """Set a random subset of ``message``'s fields (recursively, 4 levels at most) to wild values."""
        for field in message.DESCRIPTOR.fields:
            if self.random.random() < 0.25:
                continue
            repeated = field.is_repeated
            count = self.random.choice((0, 1, 2, 5, 30)) if repeated else 1
            for _ in range(count):
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    if depth >= 4:
                        break
                    target = getattr(message, field.name).add() if repeated else getattr(message, field.name)
                    if field.message_type is not None and field.message_type.full_name == "google.protobuf.Timestamp":
                        target.seconds = self.random.choice((0, -1, 253402300800, -62135596801,
                                                             self.random.randint(0, 4_000_000_000)))
                        target.nanos = self.random.choice((0, -1, 999_999_999, 1_000_000_000))
                    else:
                        self.fill(target, depth + 1)
                elif repeated:
                    getattr(message, field.name).append(self.value(field, depth))
                else:
                    setattr(message, field.name, self.value(field, depth))
        return message


@dataclass(frozen=True)
class Call:
    """One fuzzed call: which RPC, as whom, with what request."""

    rpc: Rpc
    org_id: str
    request: Message
    language: str


def plan(generator: Generator, real: RealIds, total: int, orgs: list[str]) -> list[Call]:
    """``total`` calls spread evenly over the RPCs (seeded), each state-changing one made to be refused."""
    rng = generator.random
    calls = []
    for index in range(total):
        rpc = RPCS[index % len(RPCS)]
        request = generator.fill(rpc.request())
        org_id = rng.choice(orgs)
        if rpc.method == "SubmitReferral":
            if rng.random() < 0.5:
                org_id = rng.choice(NON_REFERRERS)
            else:  # a referring organisation, with an idempotency key too short to be one
                org_id = rng.choice(REFERRERS)
                key = "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(1, 15)))
                request.idempotency_key = key  # type: ignore[attr-defined]
        elif rpc.method == "UpdateCapacity":
            org_id = rng.choice(NO_CAPACITY)
        elif rpc.mutating:  # real ids only for outsiders; anyone with made-up ones
            fields = rpc.request.DESCRIPTOR.fields_by_name
            names = [name for name in ("subject_id", "handoff_id", "consent_id") if name in fields]
            if any(getattr(request, name) in _real_values(real) for name in names):
                org_id = rng.choice(OUTSIDERS)
            for name in names:
                if getattr(request, name) == "" and rng.random() < 0.5:
                    setattr(request, name, generator.identifier(name))
            if any(getattr(request, name) in _real_values(real) for name in names):
                org_id = rng.choice(OUTSIDERS)
        language = rng.choice(("", "es", "en", "qu", "*", "en-GB,en;q=0.8", "x" * 300))
        calls.append(Call(rpc, org_id, request, language))
    return calls


def _real_values(real: RealIds) -> set[str]:
    return {real.subject_id, real.referral_id, *real.consent_ids, *real.handoff_ids}


@pytest.fixture(scope="module")
def real_ids(org: Callable[[str], Partner], security_network: LocalNetwork) -> RealIds:
    referrer = org(REFERRER)
    submitted = referrer.intake.SubmitReferral(referral_request(
        needs=[(vocab.SERVICE_TYPE_LEGAL_AID, vocab.URGENCY_ROUTINE), (vocab.SERVICE_TYPE_SHELTER,
                                                                      vocab.URGENCY_PRIORITY)],
        region=vocab.REGION_LIMA, case_file_number=990,
        consents=[grant(vocab.ORG_ROLE_LEGAL), grant(vocab.ORG_ROLE_SHELTER)]), timeout=RPC_TIMEOUT_S)
    offered = referral_when(referrer, submitted.referral_id, lambda r: all(n.handoffs for n in r.needs),
                            "both needs offered")
    handoffs = tuple(h.handoff_id for n in offered.needs for h in n.handoffs)
    assert not {h.provider_org for n in offered.needs for h in n.handoffs} & set(OUTSIDERS)
    return RealIds(submitted.subject_id, submitted.referral_id, tuple(submitted.consent_ids), handoffs, ())


def _state(network: LocalNetwork, bootstrap: str) -> dict[str, int]:
    """Rows of every table of every service's database, and the end offset of every topic's partitions."""
    state: dict[str, int] = {}
    for path in sorted((network.base_dir / "db").glob("*.db")):
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                query = f'SELECT count(*) FROM "{table}"'  # noqa: S608 (names read from sqlite_master)
                state[f"{path.stem}.{table}"] = connection.execute(query).fetchone()[0]
        finally:
            connection.close()
    for partition, offset in end_offsets(bootstrap).items():
        state[f"kafka {partition.topic}[{partition.partition}]"] = offset
    return state


def test_ten_thousand_fuzzed_requests_never_fail_internally_crash_or_change_state(
        real_ids: RealIds, security_network: LocalNetwork, security_kafka: str) -> None:
    orgs = [org.org_id for org in load_directory(security_network.network_dir).organisations]
    calls = plan(Generator(SEED, real_ids), real_ids, TOTAL, orgs)
    assert Counter(call.rpc.method for call in calls).most_common()[-1][1] >= TOTAL // len(RPCS)
    wait_settled(security_kafka, WORKER_GROUPS)
    before = _state(security_network, security_kafka)

    stubs: dict[tuple[str, str, str], Callable[..., object]] = {}

    def callable_for(call: Call) -> Callable[..., object]:
        key = (call.org_id, call.rpc.service, call.rpc.method)
        if key not in stubs:
            channel = security_network.channel(call.org_id, call.rpc.service)
            path = f"/{PACKAGES[call.rpc.service]}/{call.rpc.method}"
            factory = channel.unary_stream if call.rpc.method == "ReplayLog" else channel.unary_unary
            stubs[key] = factory(path, request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=lambda b: b)
        return stubs[key]

    def run(call: Call) -> tuple[Call, grpc.StatusCode, str]:
        metadata = (("accept-language", call.language),) if call.language else ()
        try:
            answer = callable_for(call)(call.request, metadata=metadata, timeout=CALL_TIMEOUT_S)
            if call.rpc.method == "ReplayLog":
                list(answer)  # type: ignore[call-overload]
        except grpc.RpcError as error:
            return call, error.code(), error.details() or ""
        return call, grpc.StatusCode.OK, ""

    for call in calls[:len(RPCS)]:  # the channels and stubs, made once before the threads share them
        callable_for(call)
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(run, calls))

    answers: Counter[str] = Counter()
    by_rpc: dict[str, Counter[str]] = {}
    failures: list[str] = []
    for call, code, details in results:
        answers[code.name] += 1
        by_rpc.setdefault(call.rpc.method, Counter())[code.name] += 1
        if code not in ACTIONABLE:
            failures.append(f"{call.rpc.method} as {call.org_id}: {code.name} ({details[:200]!r}) "
                            f"to {call.request!r:.400}")
        elif code == grpc.StatusCode.OK and call.rpc.mutating:
            failures.append(f"{call.rpc.method} as {call.org_id} succeeded: {call.request!r:.300}")
    print(f"{len(results)} fuzzed calls: {dict(answers)}")
    for method, counts in sorted(by_rpc.items()):
        print(f"  {method}: {dict(counts)}")
    assert not failures, f"{len(failures)} of {len(results)} answers were wrong:\n" + "\n".join(failures[:40])

    dead = [name for name in security_network.process_names if not security_network.is_running(name)]
    assert not dead, f"processes died under fuzzing: {dead}"
    wait_settled(security_kafka, WORKER_GROUPS)
    after = _state(security_network, security_kafka)
    changed = {key: (before.get(key), after.get(key)) for key in before.keys() | after.keys()
               if before.get(key) != after.get(key)}
    assert not changed, f"refused calls changed state: {changed}"
