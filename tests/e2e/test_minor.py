"""A minor's referral: refused without guardian consent; a coordinator's override makes it possible.

ong-cus-01 (NGO, Cusco) refers a minor with consent given only by the child: FAILED_PRECONDITION naming
``consents``. Only a coordinator may record an override (with a justification); coo-lim-01 does, which
registers a new subject; the NGO's referral for that subject is then accepted (ADR 11: an overridden
subject may be referred by any organisation that submits). Its shelter need is offered only to shelters
that serve minors, one after the other as each declines, and is escalated when none is left. The override
is its own ConsentOverrideRecorded event on intake's topic, its justification sealed, never in clear.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from services.core.envelope import Opener, SectionKind
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.consent.v1 import consent_pb2 as consent
from services.core.generated.referralnet.intake.v1 import events_pb2, intake_pb2
from services.core.generated.referralnet.referral.v1 import referral_pb2 as ref
from services.core.identity.directory import Directory
from services.core.keyvault.routing_keys import load_routing_keys
from services.core.messaging.topics import events_topic
from tests.e2e.support import (
    ENGLISH,
    RPC_TIMEOUT_S,
    Partner,
    RawEvent,
    events_of,
    grant,
    known_referral,
    need_of,
    new_idempotency_key,
    read_topic,
    referral_request,
    referral_when,
    rpc_error,
    status_code,
    trail,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SHELTER = vocab.SERVICE_TYPE_SHELTER
JUSTIFICATION = ("Justificación sintética de prueba: la tutora legal está implicada en la captación y la niña "
                 "necesita albergue esta misma noche.")


def test_minor_needs_guardian_consent_or_a_coordinator_override(
        partner: Callable[[str], Partner], directory: Directory, network_dir: Path, kafka_bootstrap: str) -> None:
    ngo, coordinator = partner("ong-cus-01"), partner("coo-lim-01")
    request = referral_request(
        needs=[(SHELTER, vocab.URGENCY_IMMEDIATE)], region=vocab.REGION_CUSCO, minor=True,
        exploitation_type=vocab.EXPLOITATION_TYPE_SEXUAL_EXPLOITATION, case_file_number=201,
        consents=[grant(vocab.ORG_ROLE_SHELTER)])  # given by the child only

    refused = rpc_error(lambda: ngo.intake.SubmitReferral(request, timeout=RPC_TIMEOUT_S))
    refused_en = rpc_error(lambda: ngo.intake.SubmitReferral(request, metadata=ENGLISH, timeout=RPC_TIMEOUT_S))
    assert refused.code() == refused_en.code() == grpc.StatusCode.FAILED_PRECONDITION
    spanish, english = refused.details() or "", refused_en.details() or ""
    assert spanish.startswith("consents") and english.startswith("consents")
    assert spanish != english  # Spanish by default, English when asked

    override = intake_pb2.RecordConsentRequest(
        subject_id="", grant=grant(vocab.ORG_ROLE_SHELTER, given_by=consent.CONSENT_GIVER_COORDINATOR_OVERRIDE,
                                   days=90),
        override_justification=JUSTIFICATION)
    assert status_code(lambda: ngo.intake.RecordConsent(override, timeout=RPC_TIMEOUT_S)
                       ) == grpc.StatusCode.PERMISSION_DENIED  # only a coordinator overrides
    recorded = coordinator.intake.RecordConsent(override, timeout=RPC_TIMEOUT_S).consent
    subject_id = recorded.subject_id
    assert subject_id.startswith("sub-") and recorded.consent_id.startswith("con-")
    assert (recorded.recorded_by_org, recorded.grant.given_by) == ("coo-lim-01",
                                                                   consent.CONSENT_GIVER_COORDINATOR_OVERRIDE)

    retry = intake_pb2.SubmitReferralRequest()
    retry.CopyFrom(request)
    retry.subject_id, retry.idempotency_key = subject_id, new_idempotency_key()
    submitted = ngo.intake.SubmitReferral(retry, timeout=RPC_TIMEOUT_S)
    assert submitted.subject_id == subject_id and submitted.referral_id.startswith("ref-")

    # Offered only to shelters that serve minors, in turn; none left: escalated to the coordinators.
    serving_minors = {org.org_id for org in directory.organisations
                      if SHELTER in org.services and org.age_group != "adults"}
    adults_only = {org.org_id for org in directory.organisations
                   if SHELTER in org.services and org.age_group == "adults"}
    assert serving_minors and adults_only  # the seed network has both kinds, or this test proves nothing
    offered: list[str] = []
    for _ in serving_minors:
        def next_offer() -> ref.Handoff | None:
            referral = known_referral(ngo, submitted.referral_id)
            handoffs = need_of(referral, SHELTER).handoffs if referral is not None else []
            return next((h for h in handoffs if h.state == ref.HANDOFF_STATE_OFFERED), None)
        handoff = wait_for(next_offer, 30, f"the next shelter offer of {submitted.referral_id}")
        assert handoff.minor and handoff.provider_org in serving_minors
        offered.append(handoff.provider_org)
        partner(handoff.provider_org).referral.DeclineHandoff(ref.DeclineHandoffRequest(
            handoff_id=handoff.handoff_id, reason=ref.DECLINE_REASON_NO_CAPACITY), timeout=RPC_TIMEOUT_S)
    escalated = need_of(referral_when(
        ngo, submitted.referral_id, lambda r: need_of(r, SHELTER).state == ref.NEED_STATE_ESCALATED,
        "shelter need escalated"), SHELTER)
    assert sorted(offered) == sorted(serving_minors)
    assert trail(escalated) == [(org, "HANDOFF_STATE_DECLINED") for org in offered]

    # The override is its own event on intake's topic, signed by intake, its justification sealed.
    def override_events() -> list[RawEvent]:
        events = read_topic(kafka_bootstrap, events_topic("intake"), directory)
        return events_of(events, "ConsentOverrideRecorded", f"subject-{subject_id}")
    found = wait_for(override_events, 30, "ConsentOverrideRecorded on the intake topic", interval_s=0.5)
    assert len(found) == 1
    event = found[0]
    envelope = event.envelope
    assert (envelope.header.producer_org, envelope.header.producer_service) == ("svc:intake", "intake")
    routing_keys = load_routing_keys(network_dir)
    routing = envelope.section(SectionKind.ROUTING)
    payload = events_pb2.ConsentOverrideRecorded.FromString(
        Opener().open(envelope, SectionKind.ROUTING, routing_keys.key(routing.key_id)))
    assert (payload.consent_id, payload.subject_id, payload.recorded_by_org) == (
        recorded.consent_id, subject_id, "coo-lim-01")
    assert envelope.section(SectionKind.CASE_FILE).key_id not in routing_keys.key_ids
    assert JUSTIFICATION.encode() not in event.wire
