"""Fuzzed requests to every RPC of both services, from legitimate organisations: never INTERNAL or UNKNOWN.

Hypothesis draws each request in one of three shapes: valid (so the deep paths run: real referrals,
consents, transitions), valid but for one wild field, or wild throughout (any text, out-of-range enum
numbers, extreme timestamps and counts), on real ids (the module's own referrals, subjects, consents and
handoffs) and made-up ones, with an ``accept-language`` header that may be absent, English, Spanish or
anything. Every answer must be OK or an error people can act on (INVALID_ARGUMENT, PERMISSION_DENIED,
FAILED_PRECONDITION, ALREADY_EXISTS, NOT_FOUND, or intake's bilingual UNAVAILABLE), never INTERNAL, UNKNOWN
or a dropped call. For the first errors of each kind (and every UNAVAILABLE, which must be intake's own
bilingual answer, not a lost connection) the same request is sent again without the header and with
``accept-language: en``: same code, a Spanish and an English message that differ.

Callers: fis-lim-01 (prosecutor: submits, manages its subjects' consent, withdraws and follows its
referrals) and leg-lim-01 (the Lima legal-aid provider these referrals are offered to: its inbox,
transitions, capacity and key releases). Bounded: ``E2E_FUZZ_EXAMPLES`` examples per RPC (default 200),
derandomized, no example database. (ReleaseKey waits up to 3 s before refusing a provider whose consent
is in force but whose acceptance intake has not seen: the examples that hit that cost 3 s each.)
"""

from __future__ import annotations

import os
import string
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.consent.v1 import consent_pb2 as consent
from services.core.generated.referralnet.intake.v1 import intake_pb2
from services.core.generated.referralnet.referral.v1 import referral_pb2 as ref
from tests.e2e.support import (
    ENGLISH,
    RPC_TIMEOUT_S,
    Partner,
    get_referral,
    grant,
    referral_request,
    referral_when,
    rpc_error,
    synthetic_case_file,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

REFERRER, PROVIDER = "fis-lim-01", "leg-lim-01"
EXAMPLES = int(os.environ.get("E2E_FUZZ_EXAMPLES", "200"))
ACTIONABLE = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED,
              grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.NOT_FOUND,
              grpc.StatusCode.UNAVAILABLE}
PAIRS_PER_CODE = 3
INT32 = st.integers(-(2**31), 2**31 - 1)
TEXT = st.text(max_size=120)
NOTE = st.one_of(st.text(max_size=80), st.text(min_size=480, max_size=700))
LANGUAGE_HEADERS: SearchStrategy[tuple[tuple[str, str], ...]] = st.one_of(
    st.sampled_from([(), (("accept-language", "es"),), ENGLISH, (("accept-language", "en-GB,en;q=0.8"),),
                     (("accept-language", "qu"),)]),
    st.text(alphabet=string.ascii_letters + string.digits + "-,;=.*", max_size=40).map(
        lambda value: (("accept-language", value),)))


def enum_any(enum: Any) -> SearchStrategy[Any]:
    """Any value of the enum, the zero value, or any int32 (proto3 enums are open)."""
    return st.one_of(st.sampled_from(list(enum.values())), INT32)


def enum_valid(enum: Any) -> SearchStrategy[Any]:
    """A meaningful value of the enum (never the zero value)."""
    return st.sampled_from([value for value in enum.values() if value != 0])


def wild_timestamp() -> SearchStrategy[Timestamp | None]:
    return st.one_of(st.none(), st.builds(Timestamp, seconds=st.integers(-(2**63), 2**63 - 1), nanos=INT32),
                     st.builds(Timestamp, seconds=st.integers(0, 4_000_000_000), nanos=st.integers(0, 999_999_999)))


def future_timestamp() -> SearchStrategy[Timestamp]:
    now = int(time.time())
    return st.builds(Timestamp, seconds=st.integers(now + 3_600, now + 4 * 365 * 86_400), nanos=st.just(0))


def ids(real: Sequence[str], prefix: str) -> SearchStrategy[str]:
    """A real id, an id of the right shape that does not exist, or any text."""
    made_up = st.from_regex(rf"{prefix}-[0-9a-f]{{32}}", fullmatch=True)
    return st.one_of(st.sampled_from(list(real)), made_up, TEXT) if real else st.one_of(made_up, TEXT)


def recipients() -> SearchStrategy[consent.ConsentRecipient | None]:
    return st.one_of(st.none(), enum_any(vocab.OrgRole).map(lambda role: consent.ConsentRecipient(role=role)),
                     st.one_of(TEXT, st.sampled_from(["leg-lim-01", "alb-lim-01"])).map(
                         lambda org: consent.ConsentRecipient(org_id=org)))


def valid_grants() -> SearchStrategy[consent.ConsentGrant]:
    givers = [consent.CONSENT_GIVER_SUBJECT, consent.CONSENT_GIVER_GUARDIAN,
              consent.CONSENT_GIVER_CHILD_PROTECTION_AUTHORITY]
    return st.builds(
        lambda role, purposes, categories, giver, expires: consent.ConsentGrant(
            recipient=consent.ConsentRecipient(role=role), purposes=purposes, categories=categories,
            given_by=giver, expires_at=expires),
        enum_valid(vocab.OrgRole), st.lists(enum_valid(consent.Purpose), min_size=1, max_size=3, unique=True),
        st.lists(enum_valid(consent.DataCategory), min_size=1, max_size=2, unique=True), st.sampled_from(givers),
        future_timestamp())


def wild_grants() -> SearchStrategy[consent.ConsentGrant]:
    def build(recipient: Any, purposes: list[int], categories: list[int], giver: int, expires: Any,
              ) -> consent.ConsentGrant:
        message = consent.ConsentGrant(purposes=purposes, categories=categories, given_by=giver)  # type: ignore[arg-type]
        if recipient is not None:
            message.recipient.CopyFrom(recipient)
        if expires is not None:
            message.expires_at.CopyFrom(expires)
        return message
    return st.builds(build, recipients(), st.lists(enum_any(consent.Purpose), max_size=5),
                     st.lists(enum_any(consent.DataCategory), max_size=4), enum_any(consent.ConsentGiver),
                     wild_timestamp())


def requests(message: type[Message], valid: dict[str, SearchStrategy[Any]],
             wild: dict[str, SearchStrategy[Any]]) -> SearchStrategy[Message]:
    """``message`` requests: valid, valid but for one wild field, or wild throughout."""
    @st.composite
    def build(draw: st.DrawFn) -> Message:
        shape = draw(st.sampled_from(["valid", "one wild field", "wild"]))
        wild_field = draw(st.sampled_from(sorted(valid))) if shape == "one wild field" else None
        fields: dict[str, Any] = {}
        for name, valid_values in valid.items():
            value = draw(wild[name] if shape == "wild" or name == wild_field else valid_values)
            if value is not None:
                fields[name] = value
        return message(**fields)
    return build()


@dataclass(frozen=True)
class RealIds:
    """The fuzz module's own referrals (by fis-lim-01, offered to leg-lim-01) and what hangs off them."""

    referrals: list[str]
    subjects: list[str]
    consents: list[str]
    handoffs: list[str]
    provider_handoffs: list[str]


@pytest.fixture(scope="module")
def real_ids(partner: Callable[[str], Partner]) -> RealIds:
    referrer = partner(REFERRER)
    referrals: list[str] = []
    subjects: list[str] = []
    consents: list[str] = []
    for number in range(3):
        submitted = referrer.intake.SubmitReferral(referral_request(
            needs=[(vocab.SERVICE_TYPE_LEGAL_AID, vocab.URGENCY_ROUTINE), (vocab.SERVICE_TYPE_SHELTER,
                                                                          vocab.URGENCY_PRIORITY)],
            region=vocab.REGION_LIMA, case_file_number=600 + number,
            consents=[grant(vocab.ORG_ROLE_LEGAL), grant(vocab.ORG_ROLE_SHELTER)]), timeout=RPC_TIMEOUT_S)
        referrals.append(submitted.referral_id)
        subjects.append(submitted.subject_id)
        consents += submitted.consent_ids
    handoffs = []
    for referral_id in referrals:
        offered = referral_when(referrer, referral_id, lambda r: all(n.handoffs for n in r.needs), "needs offered")
        handoffs += [h.handoff_id for n in offered.needs for h in n.handoffs]
    provider_handoffs = [h.handoff_id for referral_id in referrals
                         for n in get_referral(referrer, referral_id).needs for h in n.handoffs
                         if h.provider_org == PROVIDER]
    assert provider_handoffs, f"{PROVIDER} was offered none of the fuzz module's referrals"
    partner(PROVIDER).referral.AcceptHandoff(ref.AcceptHandoffRequest(handoff_id=provider_handoffs[0]),
                                             timeout=RPC_TIMEOUT_S)  # so ReleaseKey can also be granted
    return RealIds(referrals, subjects, consents, handoffs, provider_handoffs)


@dataclass(frozen=True)
class Target:
    """One RPC: who calls it, how, and what requests to draw."""

    org_id: str
    call: Callable[[Partner], Callable[..., Any]]
    requests: SearchStrategy[Message]
    examples: int = EXAMPLES


def targets(ids_: RealIds) -> dict[str, Target]:
    """Every RPC of both services with its caller and request strategy."""
    subject = ids(ids_.subjects, "sub")
    handoff = ids(ids_.provider_handoffs, "hof")
    case_files = st.integers(700, 9_999).map(synthetic_case_file)
    wild_case_files = st.builds(
        intake_pb2.CaseFile, given_names=TEXT, family_names=TEXT, date_of_birth=TEXT, document_type=TEXT,
        document_number=TEXT, nationality=TEXT, languages=st.lists(TEXT, max_size=12),
        narrative=st.text(max_size=3_000), safe_contact=TEXT)
    needs_valid = st.lists(st.builds(intake_pb2.Need, service_type=enum_valid(vocab.ServiceType),
                                     urgency=enum_valid(vocab.Urgency)),
                           min_size=1, max_size=3, unique_by=lambda need: need.service_type)
    needs_wild = st.lists(st.builds(intake_pb2.Need, service_type=enum_any(vocab.ServiceType),
                                    urgency=enum_any(vocab.Urgency)), max_size=12)
    return {
        "SubmitReferral": Target(REFERRER, lambda p: p.intake.SubmitReferral, requests(
            intake_pb2.SubmitReferralRequest,
            valid={"idempotency_key": st.from_regex(r"[A-Za-z0-9_-]{16,64}", fullmatch=True),
                   "subject_id": st.one_of(st.just(""), st.sampled_from(ids_.subjects)), "case_file": case_files,
                   "needs": needs_valid, "region": enum_valid(vocab.Region), "minor": st.booleans(),
                   "exploitation_type": enum_valid(vocab.ExploitationType),
                   "consents": st.lists(valid_grants(), min_size=1, max_size=3)},
            wild={"idempotency_key": TEXT, "subject_id": subject, "case_file": st.one_of(st.none(), wild_case_files),
                  "needs": needs_wild, "region": enum_any(vocab.Region), "minor": st.booleans(),
                  "exploitation_type": enum_any(vocab.ExploitationType),
                  "consents": st.lists(wild_grants(), max_size=25)})),
        "RecordConsent": Target(REFERRER, lambda p: p.intake.RecordConsent, requests(
            intake_pb2.RecordConsentRequest,
            valid={"subject_id": st.sampled_from(ids_.subjects), "grant": valid_grants(),
                   "override_justification": st.just("")},
            wild={"subject_id": st.one_of(st.just(""), subject), "grant": st.one_of(st.none(), wild_grants()),
                  "override_justification": st.one_of(TEXT, st.text(min_size=15, max_size=2_100))})),
        "RevokeConsent": Target(REFERRER, lambda p: p.intake.RevokeConsent, requests(
            intake_pb2.RevokeConsentRequest,
            valid={"subject_id": st.sampled_from(ids_.subjects), "consent_id": st.sampled_from(ids_.consents)},
            wild={"subject_id": subject, "consent_id": ids(ids_.consents, "con")})),
        "ReleaseKey": Target(PROVIDER, lambda p: p.intake.ReleaseKey, requests(
            intake_pb2.ReleaseKeyRequest,
            valid={"subject_id": st.sampled_from(ids_.subjects), "purpose": enum_valid(consent.Purpose),
                   "category": enum_valid(consent.DataCategory)},
            wild={"subject_id": subject, "purpose": enum_any(consent.Purpose),
                  "category": enum_any(consent.DataCategory)})),
        "GetSubjectConsent": Target(REFERRER, lambda p: p.intake.GetSubjectConsent, requests(
            intake_pb2.GetSubjectConsentRequest, valid={"subject_id": st.sampled_from(ids_.subjects)},
            wild={"subject_id": subject})),
        "ListHandoffs": Target(PROVIDER, lambda p: p.referral.ListHandoffs, requests(
            ref.ListHandoffsRequest,
            valid={"states": st.lists(enum_valid(ref.HandoffState), max_size=3, unique=True),
                   "page_size": st.integers(0, 500), "page_token": st.just("")},
            wild={"states": st.lists(enum_any(ref.HandoffState), max_size=10), "page_size": INT32,
                  "page_token": TEXT})),
        "AcceptHandoff": Target(PROVIDER, lambda p: p.referral.AcceptHandoff, requests(
            ref.AcceptHandoffRequest, valid={"handoff_id": st.sampled_from(ids_.provider_handoffs)},
            wild={"handoff_id": handoff})),
        "DeclineHandoff": Target(PROVIDER, lambda p: p.referral.DeclineHandoff, requests(
            ref.DeclineHandoffRequest,
            valid={"handoff_id": st.sampled_from(ids_.provider_handoffs), "reason": enum_valid(ref.DeclineReason),
                   "note": st.text(max_size=80)},
            wild={"handoff_id": handoff, "reason": enum_any(ref.DeclineReason), "note": NOTE})),
        "StartService": Target(PROVIDER, lambda p: p.referral.StartService, requests(
            ref.StartServiceRequest, valid={"handoff_id": st.sampled_from(ids_.provider_handoffs)},
            wild={"handoff_id": handoff})),
        "CompleteService": Target(PROVIDER, lambda p: p.referral.CompleteService, requests(
            ref.CompleteServiceRequest,
            valid={"handoff_id": st.sampled_from(ids_.provider_handoffs),
                   "outcome": enum_valid(ref.ServiceOutcome), "note": st.text(max_size=80)},
            wild={"handoff_id": handoff, "outcome": enum_any(ref.ServiceOutcome), "note": NOTE})),
        "WithdrawHandoff": Target(REFERRER, lambda p: p.referral.WithdrawHandoff, requests(
            ref.WithdrawHandoffRequest,
            valid={"handoff_id": st.sampled_from(ids_.handoffs), "reason": enum_valid(ref.WithdrawReason),
                   "note": st.text(max_size=80)},
            wild={"handoff_id": ids(ids_.handoffs, "hof"), "reason": enum_any(ref.WithdrawReason), "note": NOTE})),
        "GetReferral": Target(REFERRER, lambda p: p.referral.GetReferral, requests(
            ref.GetReferralRequest, valid={"referral_id": st.sampled_from(ids_.referrals)},
            wild={"referral_id": ids(ids_.referrals, "ref")})),
        "UpdateCapacity": Target(PROVIDER, lambda p: p.referral.UpdateCapacity, requests(
            ref.UpdateCapacityRequest,
            valid={"service_type": st.just(vocab.SERVICE_TYPE_LEGAL_AID), "available_places": st.integers(1, 10_000)},
            wild={"service_type": enum_any(vocab.ServiceType), "available_places": INT32})),
    }


RPCS = ("SubmitReferral", "RecordConsent", "RevokeConsent", "ReleaseKey", "GetSubjectConsent", "ListHandoffs",
        "AcceptHandoff", "DeclineHandoff", "StartService", "CompleteService", "WithdrawHandoff", "GetReferral",
        "UpdateCapacity")
_pairs_checked: dict[tuple[str, grpc.StatusCode], int] = {}


@pytest.mark.parametrize("rpc", RPCS)
def test_fuzzed_requests_never_fail_internally(rpc: str, real_ids: RealIds, partner: Callable[[str], Partner]) -> None:
    target = targets(real_ids)[rpc]
    call = target.call(partner(target.org_id))

    @settings(max_examples=target.examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(request=target.requests, language=LANGUAGE_HEADERS)
    def exercise(request: Message, language: tuple[tuple[str, str], ...]) -> None:
        try:
            call(request, metadata=language, timeout=RPC_TIMEOUT_S)
            answers["OK"] += 1
        except grpc.RpcError as error:
            code = error.code()
            answers[code.name] += 1
            assert code in ACTIONABLE, f"{rpc} answered {code.name} ({error.details()!r})"
            if code == grpc.StatusCode.UNAVAILABLE or _pairs_checked.get((rpc, code), 0) < PAIRS_PER_CODE:
                _pairs_checked[(rpc, code)] = _pairs_checked.get((rpc, code), 0) + 1
                check_languages(rpc, call, request, code)

    answers: Counter[str] = Counter()
    exercise()
    print(f"{rpc}: {dict(answers)}")  # how the answers spread (pytest -s shows it)
    if rpc == "UpdateCapacity":  # leave the provider routable for whatever runs next
        call(ref.UpdateCapacityRequest(service_type=vocab.SERVICE_TYPE_LEGAL_AID, available_places=10),
             timeout=RPC_TIMEOUT_S)


def check_languages(rpc: str, call: Callable[..., Any], request: Message, code: grpc.StatusCode) -> None:
    """The same failing request: Spanish by default, English when asked, same code both times."""
    spanish = rpc_error(lambda: call(request, timeout=RPC_TIMEOUT_S))
    english = rpc_error(lambda: call(request, metadata=ENGLISH, timeout=RPC_TIMEOUT_S))
    assert spanish.code() == english.code() == code, f"{rpc}: {code.name} then {spanish.code()}, {english.code()}"
    assert spanish.details() and english.details()
    assert spanish.details() != english.details(), f"{rpc} {code.name}: one message for es and en"


def test_error_messages_follow_accept_language(partner: Callable[[str], Partner]) -> None:
    prosecutor = partner(REFERRER)
    no_needs = referral_request(needs=[], region=vocab.REGION_LIMA, consents=[grant(vocab.ORG_ROLE_LEGAL)])
    spanish = rpc_error(lambda: prosecutor.intake.SubmitReferral(no_needs, timeout=RPC_TIMEOUT_S))
    english = rpc_error(lambda: prosecutor.intake.SubmitReferral(no_needs, metadata=ENGLISH, timeout=RPC_TIMEOUT_S))
    assert spanish.code() == english.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (spanish.details() or "").startswith("needs") and (english.details() or "").startswith("needs")
    assert spanish.details() != english.details()
    bad_page = ref.ListHandoffsRequest(page_size=-1)
    provider = partner(PROVIDER)
    spanish = rpc_error(lambda: provider.referral.ListHandoffs(bad_page, timeout=RPC_TIMEOUT_S))
    english = rpc_error(lambda: provider.referral.ListHandoffs(bad_page, metadata=ENGLISH, timeout=RPC_TIMEOUT_S))
    assert spanish.code() == english.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert spanish.details() != english.details()
