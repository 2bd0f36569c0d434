"""Notify end to end: a handoff offer reaches the provider as one signed webhook and one e-mail, in its language,
and nothing of the case file ever leaves intake's keeping, in a notice, a log line or a span.

The session's network (tests/e2e/conftest.py) gives every provider and coordinator a webhook and an e-mail
address at the session's ``partner_inbox``, and runs every process with ``OTEL_TRACES_EXPORTER=console``, so
each process's spans are in its log file. Each test submits its own referral (pol-mdd-01, the referrer) and
follows its own handoff: other tests' notices are in the same inbox and are ignored.

- a shelter offer in Madre de Dios: alb-mdd-01 gets exactly one webhook and one e-mail, both delivered once
  (its delivery log says so); the signature verifies with alb-mdd-01's own copy of its secret, and the same
  body with one character changed fails verification, at the partner's receiver too (401);
- a canary name and document number in the case file appear in no webhook body, no e-mail, no line of any
  process's log and no span;
- the same offer in Spanish to alb-mdd-01 (language es) and in English to ong-lor-01 (language en, an
  interpretation need in Loreto).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from deploy.local.inbox import EMAIL, WEBHOOK, ReceivedNotice
from deploy.local.network import LocalNetwork
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.notify.v1 import notify_pb2, notify_pb2_grpc
from services.core.identity.webhook_secrets import org_webhook_secret_path, read_webhook_secret
from services.notify.domain.signature import HEADER_SIGNATURE, HEADER_TIMESTAMP, SignatureError, verify
from tests.e2e.notify_support import RecordingInbox, has_both, offer_notices
from tests.e2e.support import RPC_TIMEOUT_S, Partner, grant, referral_request, wait_for, wait_for_handoff

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

REFERRER = "pol-mdd-01"
NOTICE_WAIT_S = 60.0
CANARY_GIVEN, CANARY_FAMILY = "Zorvanka", "Quetzilbrandt"
CANARY_DOCUMENT = "CANARY-7Q4X9Z2W"


def _offer(partner: Callable[[str], Partner], provider: str, need: vocab.ServiceType, region: vocab.Region,
           role: vocab.OrgRole, *, case_file_number: int, canary: bool = False) -> tuple[str, str]:
    """Submit a referral with one immediate need; ``(referral_id, handoff_id)`` once ``provider`` is offered it."""
    request = referral_request(needs=[(need, vocab.URGENCY_IMMEDIATE)], region=region, consents=[grant(role)],
                               case_file_number=case_file_number)
    if canary:
        request.case_file.given_names = CANARY_GIVEN
        request.case_file.family_names = CANARY_FAMILY
        request.case_file.document_number = CANARY_DOCUMENT
    submitted = partner(REFERRER).intake.SubmitReferral(request, timeout=RPC_TIMEOUT_S)
    handoff = wait_for_handoff(partner(provider), submitted.referral_id, timeout_s=NOTICE_WAIT_S)
    return submitted.referral_id, handoff.handoff_id


def _both(inbox: RecordingInbox, org_id: str, handoff_id: str) -> dict[str, list[ReceivedNotice]]:
    """The offer's webhook and e-mail, once both arrived."""
    inbox.wait_for(lambda notices: has_both(notices, org_id, handoff_id), NOTICE_WAIT_S)
    return offer_notices(inbox.notices(), org_id, handoff_id)


def _deliveries(network: LocalNetwork, org_id: str, handoff_id: str) -> list[notify_pb2.Delivery]:
    """``org_id``'s deliveries about the handoff, from notify's delivery log (as that organisation)."""
    stub = notify_pb2_grpc.NotifyServiceStub(network.channel(org_id, "notify"))
    answer = stub.ListDeliveries(notify_pb2.ListDeliveriesRequest(page_size=500), timeout=RPC_TIMEOUT_S)
    return [delivery for delivery in answer.deliveries if delivery.reference == handoff_id]


def _tampered(body: bytes, handoff_id: str) -> bytes:
    """The body with the reference's last character changed: still a well-formed notice, not the one signed."""
    last = handoff_id[-1]
    forged = handoff_id[:-1] + ("0" if last != "0" else "1")
    return body.replace(handoff_id.encode(), forged.encode())


def _post(url: str, headers: dict[str, str], body: bytes) -> int:
    """POST as notify would, with the given headers; the status the receiver answered."""
    return requests.post(url, data=body, headers=headers, timeout=10, allow_redirects=False).status_code


def test_a_handoff_offer_sends_one_signed_webhook_and_one_email_and_a_tampered_body_fails(
        partner: Callable[[str], Partner], e2e_network: LocalNetwork, partner_inbox: RecordingInbox) -> None:
    provider = "alb-mdd-01"
    _, handoff_id = _offer(partner, provider, vocab.SERVICE_TYPE_SHELTER, vocab.REGION_MADRE_DE_DIOS,
                           vocab.ORG_ROLE_SHELTER, case_file_number=701)

    arrived = _both(partner_inbox, provider, handoff_id)
    delivered = wait_for(lambda: [d for d in _deliveries(e2e_network, provider, handoff_id)
                                  if d.status == notify_pb2.DELIVERY_STATUS_DELIVERED][1:] or None,
                         NOTICE_WAIT_S, f"both deliveries of {handoff_id} logged as delivered")

    offered = [d for d in _deliveries(e2e_network, provider, handoff_id)
               if d.notice_type == notify_pb2.NOTICE_TYPE_HANDOFF_OFFERED]
    assert sorted(d.channel for d in offered) == [notify_pb2.CHANNEL_WEBHOOK, notify_pb2.CHANNEL_EMAIL]
    assert all(d.status == notify_pb2.DELIVERY_STATUS_DELIVERED and len(d.attempts) == 1 for d in offered), delivered
    by_channel = {d.channel: d.delivery_id for d in offered}
    assert [n.delivery_id for n in arrived[WEBHOOK]] == [by_channel[notify_pb2.CHANNEL_WEBHOOK]]
    assert [n.delivery_id for n in arrived[EMAIL]] == [by_channel[notify_pb2.CHANNEL_EMAIL]]
    for delivery_id in by_channel.values():  # not even a redelivery of either
        assert [n.delivery_id for n in partner_inbox.notices()].count(delivery_id) == 1

    webhook, email = arrived[WEBHOOK][0], arrived[EMAIL][0]
    assert webhook.notice().reference == handoff_id and webhook.notice().service_type == vocab.SERVICE_TYPE_SHELTER
    assert email.email()["X-Referralnet-Delivery"] == email.delivery_id
    # The partner verifies with its own copy of the secret (orgs/<org>/webhook.key), as the receiver did.
    secret = read_webhook_secret(org_webhook_secret_path(e2e_network.network_dir, provider))
    [request] = partner_inbox.requests_for(webhook.delivery_id)
    assert request.body == webhook.body
    assert verify(secret, request.headers, request.body, now=int(time.time())) == webhook.delivery_id
    assert {HEADER_TIMESTAMP.lower(), HEADER_SIGNATURE.lower()} <= {key.lower() for key in request.headers}

    tampered = _tampered(request.body, handoff_id)
    assert tampered != request.body
    with pytest.raises(SignatureError) as refused:
        verify(secret, request.headers, tampered, now=int(time.time()))
    assert refused.value.reason == "mismatch"
    with pytest.raises(SignatureError):
        verify(b"\x00" * 32, request.headers, request.body, now=int(time.time()))  # another org's secret
    headers = {key: value for key, value in request.headers.items()
               if key.lower() not in {"host", "content-length", "connection", "accept-encoding"}}
    assert _post(partner_inbox.webhook_url(provider), headers, tampered) == 401
    assert [n.verified for n in partner_inbox.notices() if n.body == tampered] == [False]


def test_the_case_file_never_reaches_a_notice_a_log_line_or_a_span(
        partner: Callable[[str], Partner], e2e_network: LocalNetwork, partner_inbox: RecordingInbox) -> None:
    provider = "alb-mdd-01"
    referral_id, handoff_id = _offer(partner, provider, vocab.SERVICE_TYPE_SHELTER, vocab.REGION_MADRE_DE_DIOS,
                                     vocab.ORG_ROLE_SHELTER, case_file_number=702, canary=True)
    arrived = _both(partner_inbox, provider, handoff_id)
    assert any(referral_id in notice.text() for notices in arrived.values() for notice in notices)

    canaries = [CANARY_GIVEN, CANARY_FAMILY, CANARY_DOCUMENT]
    for notice in partner_inbox.notices():
        for text in (notice.body.decode(errors="replace"), notice.text()):
            leaked = [canary for canary in canaries if canary.lower() in text.lower()]
            assert not leaked, f"{notice.channel} notice {notice.delivery_id} to {notice.org_id} holds {leaked}"
    logs = sorted(e2e_network.logs_dir.glob("*.log"))
    assert {path.stem for path in logs} >= set(e2e_network.process_names)
    spans_in = set()
    for path in logs:
        text = path.read_text(errors="replace")
        leaked = [canary for canary in canaries if canary.lower() in text.lower()]
        assert not leaked, f"{path.name} holds {leaked}"
        if '"trace_id"' in text and '"span_id"' in text:
            spans_in.add(path.stem)
    # the spans are there to be searched: the edge that took the case file, and notify's worker that sent it
    assert {"intake-edge", "notify-worker"} <= spans_in, sorted(spans_in)


def test_notices_arrive_in_the_organisations_language_spanish_and_english(
        partner: Callable[[str], Partner], partner_inbox: RecordingInbox, e2e_network: LocalNetwork) -> None:
    _, spanish_handoff = _offer(partner, "alb-mdd-01", vocab.SERVICE_TYPE_SHELTER, vocab.REGION_MADRE_DE_DIOS,
                                vocab.ORG_ROLE_SHELTER, case_file_number=703)
    _, english_handoff = _offer(partner, "ong-lor-01", vocab.SERVICE_TYPE_INTERPRETATION, vocab.REGION_LORETO,
                                vocab.ORG_ROLE_NGO, case_file_number=704)

    spanish = _both(partner_inbox, "alb-mdd-01", spanish_handoff)
    english = _both(partner_inbox, "ong-lor-01", english_handoff)

    es_notice, en_notice = spanish[WEBHOOK][0].notice(), english[WEBHOOK][0].notice()
    assert (es_notice.language, en_notice.language) == ("es", "en")
    assert "alojamiento" in es_notice.text and "alojamiento" in spanish[EMAIL][0].text()
    assert "interpretation" in en_notice.text and "interpretation" in english[EMAIL][0].text()
    assert "interpretación" not in en_notice.text and "interpretación" not in english[EMAIL][0].text()
    assert es_notice.text != en_notice.text
    act_at = f"{e2e_network.endpoint('referral')} (referralnet.referral.v1.ReferralService)"  # where to act
    for notice in (es_notice, en_notice):
        assert notice.act_at == act_at and act_at in notice.text
        assert notice.deadline_unix_micros > notice.occurred_at_unix_micros > 0
