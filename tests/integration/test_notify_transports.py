"""The notify transports against real servers: signed webhooks over HTTP and e-mail over SMTP.

What is real: an HTTP server (stdlib ``ThreadingHTTPServer`` on 127.0.0.1, a free port) whose answer each
test chooses, ``PartnerInbox`` (the demo's receiver: a webhook HTTP server verifying signatures and an aiosmtpd
SMTP server), requests and smtplib. Replaced: nothing. Every wait is bounded (send timeouts, joins).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from deploy.local.inbox import PartnerInbox
from deploy.local.process import free_ports
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import Region, ServiceType
from services.core.generated.referralnet.notify.v1.notify_pb2 import NoticeType
from services.notify.adapters.transports import (
    EmailSender,
    NetworkTransports,
    SendOutcome,
    SmtpSettings,
    Transports,
    WebhookSender,
)
from services.notify.domain.notices import NoticeFacts, notice_message, webhook_body
from services.notify.domain.signature import HEADER_DELIVERY, signature_headers, verify
from services.notify.domain.templates import render

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SECRET = b"synthetic-webhook-secret-0123456"
CLOCK_S = 1_773_603_000
FACTS = NoticeFacts(
    notice_type=NoticeType.NOTICE_TYPE_HANDOFF_OFFERED,
    event_id="0192f0c4-7a41-7cc3-9f51-2b8e0c1d3e4f",
    reference="0192f0c4-8b52-7dd4-a062-3c9f1d2e4f50",
    referral_id="0192f0c4-6930-7bb2-8e40-1a7dfb0c2d3e",
    service_type=ServiceType.SERVICE_TYPE_PSYCHOSOCIAL,
    region=Region.REGION_CUSCO,
    deadline_us=(CLOCK_S + 7200) * 1_000_000,
    occurred_at_us=CLOCK_S * 1_000_000,
)
NOTICE = notice_message(FACTS, notice_id="notice-1", language="es", act_at="referralnet.referral.v1.ReferralService")
BODY = webhook_body(NOTICE)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Behaviour:
    """What the test server answers: a status, after waiting on ``hold`` (set: answer at once)."""

    status: int = 200
    hold: threading.Event = field(default_factory=threading.Event)
    received: list[Received] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        behaviour = self.server.behaviour
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        behaviour.received.append(Received(self.path, dict(self.headers.items()), body))
        behaviour.hold.wait(30)
        with contextlib.suppress(OSError):  # the client may have given up (the timeout test)
            self.send_response(behaviour.status)
            if 300 <= behaviour.status < 400:
                self.send_header("Location", "/redirected")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        super().__init__(("127.0.0.1", 0), _Handler)


@pytest.fixture
def http_server() -> Iterator[tuple[str, Behaviour]]:
    """A real HTTP server on 127.0.0.1; the test sets its answer."""
    behaviour = Behaviour()
    behaviour.hold.set()
    server = _Server(behaviour)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", behaviour
    behaviour.hold.set()
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def inbox() -> Iterator[PartnerInbox]:
    with PartnerInbox({"shelter-cusco": SECRET}) as running:
        yield running


def sender() -> WebhookSender:
    return WebhookSender(timeout_seconds=2.0, clock=lambda: CLOCK_S)


# --- webhooks against a plain HTTP server -------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 202, 204])
def test_a_2xx_is_delivered_with_a_signature_the_receiver_can_verify(
    http_server: tuple[str, Behaviour], status: int
) -> None:
    base, behaviour = http_server
    behaviour.status = status

    outcome = sender().send(f"{base}/hooks/shelter", SECRET, "delivery-1", BODY)

    assert outcome == SendOutcome(delivered=True, outcome="delivered", permanent=False)
    [request] = behaviour.received
    assert request.path == "/hooks/shelter"
    assert request.body == BODY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers == {**request.headers, **signature_headers(SECRET, CLOCK_S, BODY, "delivery-1")}
    assert verify(SECRET, request.headers, request.body, now=CLOCK_S + 10) == "delivery-1"


@pytest.mark.parametrize("status", [503, 500, 502, 408, 425, 429])
def test_a_5xx_or_throttle_is_retryable(http_server: tuple[str, Behaviour], status: int) -> None:
    base, behaviour = http_server
    behaviour.status = status

    outcome = sender().send(f"{base}/hooks/shelter", SECRET, "delivery-1", BODY)

    assert outcome == SendOutcome(delivered=False, outcome=f"http_{status}", permanent=False)


@pytest.mark.parametrize("status", [404, 400, 401, 403, 410, 413])
def test_another_4xx_is_permanent(http_server: tuple[str, Behaviour], status: int) -> None:
    base, behaviour = http_server
    behaviour.status = status

    outcome = sender().send(f"{base}/hooks/shelter", SECRET, "delivery-1", BODY)

    assert outcome == SendOutcome(delivered=False, outcome=f"http_{status}", permanent=True)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_and_is_permanent(http_server: tuple[str, Behaviour], status: int) -> None:
    base, behaviour = http_server
    behaviour.status = status

    outcome = sender().send(f"{base}/hooks/shelter", SECRET, "delivery-1", BODY)

    assert outcome == SendOutcome(delivered=False, outcome=f"http_{status}", permanent=True)
    assert [request.path for request in behaviour.received] == ["/hooks/shelter"]


def test_a_refused_connection_is_retryable() -> None:
    [port] = free_ports(1)  # nothing listens there

    outcome = sender().send(f"http://127.0.0.1:{port}/hooks/shelter", SECRET, "delivery-1", BODY)

    assert outcome == SendOutcome(delivered=False, outcome="connection_refused", permanent=False)


@pytest.mark.timeout(30)
def test_a_receiver_that_does_not_answer_times_out_and_is_retryable(http_server: tuple[str, Behaviour]) -> None:
    base, behaviour = http_server
    behaviour.hold.clear()  # the server reads the request and then waits: no answer within the timeout

    outcome = WebhookSender(timeout_seconds=0.3).send(f"{base}/hooks/shelter", SECRET, "delivery-1", BODY)

    assert outcome == SendOutcome(delivered=False, outcome="timeout", permanent=False)
    assert len(behaviour.received) == 1


@pytest.mark.parametrize(
    ("url", "secret", "delivery_id", "expected"),
    [
        ("http://partner.example.org/hooks/shelter", SECRET, "d-1", "insecure_url"),
        ("ftp://127.0.0.1/hooks", SECRET, "d-1", "invalid_url"),
        ("https://", SECRET, "d-1", "invalid_url"),
        ("https://127.0.0.1:99999/hooks", SECRET, "d-1", "invalid_url"),
        ("http://127.0.0.1:1/hooks", b"", "d-1", "no_secret"),
        ("http://127.0.0.1:1/hooks", SECRET, "d-1\r\nX-Evil: 1", "invalid_delivery_id"),
    ],
)
def test_what_no_retry_can_fix_fails_permanently_without_sending(
    url: str, secret: bytes, delivery_id: str, expected: str
) -> None:
    outcome = sender().send(url, secret, delivery_id, BODY)

    assert outcome == SendOutcome(delivered=False, outcome=expected, permanent=True)


# --- e-mail against aiosmtpd ---------------------------------------------------------------------------


def mailer(inbox: PartnerInbox) -> EmailSender:
    return EmailSender(SmtpSettings(host=inbox.smtp_host, port=inbox.smtp_port, timeout_seconds=5.0))


def test_an_email_is_delivered_in_utf8_with_a_message_id_from_the_delivery(inbox: PartnerInbox) -> None:
    rendered = render(FACTS, "es", "referralnet.referral.v1.ReferralService")
    to = inbox.email_address("shelter-cusco")

    outcome = mailer(inbox).send(to, rendered.subject, rendered.text, "delivery-2")

    assert outcome == SendOutcome(delivered=True, outcome="delivered", permanent=False)
    [received] = inbox.notices()
    assert (received.channel, received.org_id, received.delivery_id) == ("email", "shelter-cusco", "delivery-2")
    message = received.email()
    assert message["Message-ID"] == "<delivery-2@notify.referralnet>"
    assert message[HEADER_DELIVERY] == "delivery-2"
    assert message["To"] == to
    assert message["From"] == "notificaciones@referralnet.invalid"
    assert message["Subject"] == rendered.subject
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content().replace("\r\n", "\n") == rendered.text
    assert "atención psicosocial" in received.text()


def test_a_4xx_reply_is_retryable_and_a_5xx_permanent(inbox: PartnerInbox) -> None:
    to = inbox.email_address("shelter-cusco")

    inbox.set_email_status(451)
    assert mailer(inbox).send(to, "Aviso", "texto", "d-3") == SendOutcome(False, "smtp_451", permanent=False)
    inbox.set_email_status(550)
    assert mailer(inbox).send(to, "Aviso", "texto", "d-3") == SendOutcome(False, "smtp_550", permanent=True)
    inbox.set_email_status(250)
    assert mailer(inbox).send(to, "Aviso", "texto", "d-3").delivered

    assert [attempt.status for attempt in inbox.attempts()] == [451, 550, 250]
    assert [notice.delivery_id for notice in inbox.notices()] == ["d-3"]


def test_an_smtp_server_that_is_down_is_retryable_until_it_is_back(inbox: PartnerInbox) -> None:
    to, port = inbox.email_address("shelter-cusco"), inbox.smtp_port
    inbox.pause(webhook=False)

    outcome = mailer(inbox).send(to, "Aviso", "texto", "d-4")

    assert outcome == SendOutcome(delivered=False, outcome="connection_refused", permanent=False)
    inbox.resume()
    assert inbox.smtp_port == port
    assert mailer(inbox).send(to, "Aviso", "texto", "d-4").delivered
    assert [notice.delivery_id for notice in inbox.notices()] == ["d-4"]


@pytest.mark.parametrize(
    ("to", "subject", "delivery_id", "expected"),
    [
        ("two@a.example, three@b.example", "Aviso", "d-5", "invalid_address"),
        ("someone@a.example\r\nBcc: x@b.example", "Aviso", "d-5", "invalid_address"),
        ("shelter-cusco@inbox.referralnet.invalid", "Aviso\r\nBcc: x@b.example", "d-5", "invalid_message"),
        ("shelter-cusco@inbox.referralnet.invalid", "Aviso", "d 5", "invalid_delivery_id"),
    ],
)
def test_a_message_that_cannot_be_sent_safely_fails_permanently(
    inbox: PartnerInbox, to: str, subject: str, delivery_id: str, expected: str
) -> None:
    outcome = mailer(inbox).send(to, subject, "texto", delivery_id)

    assert outcome == SendOutcome(delivered=False, outcome=expected, permanent=True)
    assert inbox.attempts() == []


# --- NetworkTransports and PartnerInbox end to end ---------------------------------------------------


def test_network_transports_without_smtp_fail_e_mail_for_good(inbox: PartnerInbox) -> None:
    transports: Transports = NetworkTransports(sender(), None)

    outcome = transports.send_email(inbox.email_address("shelter-cusco"), "Aviso", "texto", "d-6")

    assert outcome == SendOutcome(delivered=False, outcome="smtp_not_configured", permanent=True)
    assert inbox.attempts() == []


def test_a_signed_webhook_and_an_email_reach_the_partner_inbox(inbox: PartnerInbox) -> None:
    transports: Transports = NetworkTransports(WebhookSender(timeout_seconds=5.0), mailer(inbox))
    rendered = render(FACTS, "es", NOTICE.act_at)

    webhook = transports.send_webhook(inbox.webhook_url("shelter-cusco"), SECRET, "delivery-7", BODY)
    email = transports.send_email(inbox.email_address("shelter-cusco"), rendered.subject, rendered.text, "delivery-8")

    assert webhook.delivered
    assert email.delivered
    notices = inbox.wait_for(lambda got: len(got) == 2, timeout_s=10)
    assert [(n.channel, n.org_id, n.delivery_id, n.verified) for n in notices] == [
        ("webhook", "shelter-cusco", "delivery-7", True),
        ("email", "shelter-cusco", "delivery-8", False),
    ]
    assert notices[0].body == BODY
    assert notices[0].notice() == NOTICE


def test_the_partner_inbox_rejects_a_tampered_body_with_401(inbox: PartnerInbox) -> None:
    # the receiver's clock is real: sign with it so that only the body differs
    headers = signature_headers(SECRET, int(time.time()), BODY, "delivery-9")
    tampered = BODY.replace(b"NOTICE_TYPE_HANDOFF_OFFERED", b"NOTICE_TYPE_HANDOFF_EXPIRED")
    url = inbox.webhook_url("shelter-cusco")

    response = requests.post(url, data=tampered, headers=headers, timeout=5, allow_redirects=False)
    genuine = requests.post(url, data=BODY, headers=headers, timeout=5, allow_redirects=False)

    assert response.status_code == 401
    assert json.loads(response.content) == {"error": "Unauthorized"}
    assert genuine.status_code == 200
    assert [(n.delivery_id, n.verified, n.body) for n in inbox.notices()] == [
        ("delivery-9", False, tampered),
        ("delivery-9", True, BODY),
    ]
    assert [n.body for n in inbox.unique()] == [BODY]


def test_a_webhook_signed_with_another_secret_is_refused_for_good(inbox: PartnerInbox) -> None:
    outcome = WebhookSender(timeout_seconds=5.0).send(
        inbox.webhook_url("shelter-cusco"), b"another-org-secret-0123456789abc", "delivery-10", BODY
    )

    assert outcome == SendOutcome(delivered=False, outcome="http_401", permanent=True)
    assert [n.verified for n in inbox.notices()] == [False]


def test_the_inbox_can_be_down_then_up_again_and_dedupes_redeliveries(inbox: PartnerInbox) -> None:
    webhook = WebhookSender(timeout_seconds=5.0)
    url = inbox.webhook_url("shelter-cusco")

    inbox.set_webhook_status(503)
    assert webhook.send(url, SECRET, "delivery-11", BODY) == SendOutcome(False, "http_503", permanent=False)
    inbox.pause(email=False)
    assert webhook.send(url, SECRET, "delivery-11", BODY).outcome == "connection_refused"
    inbox.resume()
    inbox.set_webhook_status(200)
    assert inbox.webhook_url("shelter-cusco") == url
    assert webhook.send(url, SECRET, "delivery-11", BODY).delivered
    assert webhook.send(url, SECRET, "delivery-11", BODY).delivered  # a redelivery after a lost answer

    assert [attempt.status for attempt in inbox.attempts()] == [503, 200, 200]
    assert [n.delivery_id for n in inbox.notices()] == ["delivery-11", "delivery-11"]
    assert [n.delivery_id for n in inbox.unique()] == ["delivery-11"]
