"""A submission retried many times at once creates one referral, and one ReferralSubmitted event.

fis-lim-01 (prosecutor, Lima) sends the same SubmitReferral, same idempotency key and body, from 20
threads released together. Every call answers the same referral and subject; exactly one of them is the
original (``replayed`` false). Intake's topic, read raw to its end once the event has appeared (and again
after the relay had time to publish any duplicate), holds exactly one ReferralSubmitted for that referral.
The same key with another body is ALREADY_EXISTS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from services.core.envelope import Opener, SectionKind
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.intake.v1 import events_pb2, intake_pb2
from services.core.identity.directory import Directory
from services.core.keyvault.routing_keys import load_routing_keys
from services.core.messaging.topics import events_topic
from tests.e2e.support import (
    RPC_TIMEOUT_S,
    Partner,
    events_of,
    grant,
    read_topic,
    referral_request,
    status_code,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CALLS = 20
RELAY_GRACE_S = 3.0


def test_same_idempotency_key_twenty_times_at_once_makes_one_referral(
        partner: Callable[[str], Partner], directory: Directory, kafka_bootstrap: str, network_dir: Path) -> None:
    prosecutor = partner("fis-lim-01")
    request = referral_request(needs=[(vocab.SERVICE_TYPE_LEGAL_AID, vocab.URGENCY_PRIORITY)],
                               region=vocab.REGION_LIMA, case_file_number=501,
                               exploitation_type=vocab.EXPLOITATION_TYPE_FORCED_LABOUR_AGRICULTURE,
                               consents=[grant(vocab.ORG_ROLE_LEGAL)])
    start = threading.Barrier(CALLS)

    def submit(_: int) -> intake_pb2.SubmitReferralResponse:
        start.wait(timeout=30)
        response: intake_pb2.SubmitReferralResponse = prosecutor.intake.SubmitReferral(request, timeout=30)
        return response

    with ThreadPoolExecutor(CALLS) as pool:
        responses = list(pool.map(submit, range(CALLS)))
    assert len({(r.referral_id, r.subject_id) for r in responses}) == 1
    assert sorted(r.replayed for r in responses) == [False] + [True] * (CALLS - 1)
    referral_id, subject_id = responses[0].referral_id, responses[0].subject_id
    assert len({tuple(r.consent_ids) for r in responses}) == 1

    changed = intake_pb2.SubmitReferralRequest()
    changed.CopyFrom(request)
    changed.region = vocab.REGION_CUSCO
    assert status_code(lambda: prosecutor.intake.SubmitReferral(changed, timeout=RPC_TIMEOUT_S)
                       ) == grpc.StatusCode.ALREADY_EXISTS

    routing_keys, opener = load_routing_keys(network_dir), Opener()

    def submitted_for_referral() -> list[str]:
        events = events_of(read_topic(kafka_bootstrap, events_topic("intake"), directory), "ReferralSubmitted",
                           f"subject-{subject_id}")
        ids = []
        for event in events:
            section = event.envelope.section(SectionKind.ROUTING)
            payload = events_pb2.ReferralSubmitted.FromString(
                opener.open(event.envelope, SectionKind.ROUTING, routing_keys.key(section.key_id)))
            ids.append(payload.referral_id)
        return [found for found in ids if found == referral_id]

    wait_for(submitted_for_referral, 30, f"ReferralSubmitted of {referral_id} on the topic", interval_s=0.5)
    time.sleep(RELAY_GRACE_S)  # a duplicate would be published right after the original: give it the time
    assert submitted_for_referral() == [referral_id]
