"""A partner organisation's inbox for the demo and the tests: a webhook receiver and a mail server on 127.0.0.1.

``PartnerInbox`` runs what a partner would: an HTTP server that takes ``POST /hooks/<org_id>``, verifies the
signature with the organisation's webhook secret (``services.notify.domain.signature.verify``) and answers 401
to anything that does not verify; and an SMTP server (aiosmtpd) that accepts mail for any address. It keeps
every notice it received, in order; a redelivery is kept too (same delivery id), and ``unique()`` drops it as
a real receiver would. Tests can make it answer a failure (``set_webhook_status(503)``,
``set_email_status(451)``) or stop listening altogether (``pause()``, then ``resume()`` on the same ports).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.core.generated.referralnet.notify.v1 import notify_pb2
from services.notify.domain.notices import parse_webhook_body
from services.notify.domain.signature import HEADER_DELIVERY, SignatureError, verify

LOOPBACK = "127.0.0.1"
WEBHOOK = "webhook"
EMAIL = "email"
INBOX_DOMAIN = "inbox.referralnet.invalid"
HOOK_PREFIX = "/hooks/"
MAX_BODY_BYTES = 1 << 20
_STOP_TIMEOUT_S = 10.0
_SMTP_REPLIES = {250: "250 OK", 451: "451 4.3.0 Inbox unavailable, try again later", 550: "550 5.7.1 Refused"}


@dataclass(frozen=True)
class ReceivedNotice:
    """One notice as the inbox got it.

    ``body``: the webhook's raw body, or the e-mail's raw message. ``verified``: the webhook's signature
    verified (always False for an e-mail, which carries no signature).
    """

    channel: str  # "webhook" | "email"
    org_id: str
    delivery_id: str
    body: bytes
    verified: bool
    received_at: float

    def notice(self) -> notify_pb2.Notice:
        """A webhook's body as a ``Notice``; ValueError for an e-mail or a body that is not one."""
        if self.channel != WEBHOOK:
            msg = f"a {self.channel} notice has no webhook body"
            raise ValueError(msg)
        return parse_webhook_body(self.body)

    def email(self) -> EmailMessage:
        """An e-mail's message, parsed; ValueError for a webhook."""
        if self.channel != EMAIL:
            msg = f"a {self.channel} notice is not an e-mail"
            raise ValueError(msg)
        return BytesParser(policy=policy.default).parsebytes(self.body)

    def text(self) -> str:
        """What a person would read: the webhook body as text, or the e-mail's subject and decoded text."""
        if self.channel == WEBHOOK:
            return self.body.decode(errors="replace")
        message = self.email()
        part = message.get_body(preferencelist=("plain",))
        content = part.get_content() if part is not None else ""
        return f"{message['Subject']}\n{content}"


@dataclass(frozen=True)
class InboxAttempt:
    """One request the inbox answered, delivered or not (to count retries)."""

    channel: str
    org_id: str
    delivery_id: str
    status: int  # the HTTP status or SMTP reply code answered


class _WebhookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, inbox: PartnerInbox) -> None:
        self.inbox = inbox
        super().__init__((LOOPBACK, port), _WebhookHandler)


class _WebhookHandler(BaseHTTPRequestHandler):
    timeout = _STOP_TIMEOUT_S  # a client that stalls does not hold a thread forever
    server: _WebhookServer

    def do_POST(self) -> None:
        """Verify and record one webhook."""
        org_id = self.path.removeprefix(HOOK_PREFIX)
        if not self.path.startswith(HOOK_PREFIX) or not org_id or "/" in org_id:
            self._answer(HTTPStatus.NOT_FOUND, {"error": "not_found"})
            return
        length_text = self.headers.get("Content-Length", "")
        if not length_text.isdigit():
            self._answer(HTTPStatus.LENGTH_REQUIRED, {"error": "length_required"})
            return
        if int(length_text) > MAX_BODY_BYTES:
            self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "too_large"})
            return
        body = self.rfile.read(int(length_text))
        status = self.server.inbox.take_webhook(org_id, dict(self.headers.items()), body)
        self._answer(status, {"ok": True} if 200 <= status < 300 else {"error": HTTPStatus(status).phrase})

    def _answer(self, status: int, payload: Mapping[str, object]) -> None:
        data = json.dumps(payload).encode()
        with contextlib.suppress(OSError):  # the sender may have timed out and gone
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the inbox's record is the log."""


class _SmtpHandler:
    """aiosmtpd's handler: accepts any recipient, records each message once per recipient."""

    def __init__(self, inbox: PartnerInbox) -> None:
        self._inbox = inbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Record the message (or refuse it with the configured reply)."""
        raw = envelope.original_content or b""
        recipients = [str(address) for address in envelope.rcpt_tos]
        return self._inbox.take_email(recipients, raw)


class _BoundController(Controller):
    """aiosmtpd's Controller on a socket bound beforehand: no race for a free port, and the same port again."""

    def __init__(self, handler: _SmtpHandler, sock: socket.socket) -> None:
        self._sock = sock
        super().__init__(handler, hostname=LOOPBACK, port=sock.getsockname()[1], ready_timeout=_STOP_TIMEOUT_S)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


def _bound_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((LOOPBACK, port))
    except OSError:
        sock.close()
        raise
    return sock


class PartnerInbox:
    """A webhook receiver and an SMTP server on 127.0.0.1 (free ports), recording every notice received."""

    def __init__(self, secrets: Mapping[str, bytes] | None = None) -> None:
        self._secrets = dict(secrets or {})
        self._changed = threading.Condition()
        self._notices: list[ReceivedNotice] = []
        self._attempts: list[InboxAttempt] = []
        self._webhook_status = 200
        self._email_status = 250
        self._http: _WebhookServer | None = None
        self._http_thread: threading.Thread | None = None
        self._smtp: _BoundController | None = None
        self.webhook_port = 0
        self.smtp_host = LOOPBACK
        self.smtp_port = 0

    # lifecycle

    def start(self) -> PartnerInbox:
        """Start both servers (on free ports the first time, on the same ports after ``stop``)."""
        self._start_http()
        self._start_smtp()
        return self

    def stop(self) -> None:
        """Stop both servers; what they received stays readable."""
        self._stop_http()
        self._stop_smtp()

    def pause(self, *, webhook: bool = True, email: bool = True) -> None:
        """Stop listening (connections are refused), as a partner's system that is down."""
        if webhook:
            self._stop_http()
        if email:
            self._stop_smtp()

    def resume(self) -> None:
        """Listen again on the same ports."""
        self.start()

    def __enter__(self) -> PartnerInbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # addresses and behaviour

    def webhook_url(self, org_id: str) -> str:
        """Where ``org_id``'s webhooks go: ``http://127.0.0.1:<port>/hooks/<org_id>``."""
        self._require_started()
        return f"http://{LOOPBACK}:{self.webhook_port}{HOOK_PREFIX}{org_id}"

    @staticmethod
    def email_address(org_id: str) -> str:
        """``org_id``'s address: ``<org_id>@inbox.referralnet.invalid`` (the server accepts any address)."""
        return f"{org_id}@{INBOX_DOMAIN}"

    def set_secrets(self, secrets: Mapping[str, bytes]) -> None:
        """The webhook secrets to verify with, by organisation id (replaces the previous ones)."""
        with self._changed:
            self._secrets = dict(secrets)

    def set_webhook_status(self, status: int) -> None:
        """Answer genuine webhooks with ``status`` (e.g. 503: down; 200 again: up). Forged ones still get 401."""
        HTTPStatus(status)  # ValueError for a number that is no HTTP status
        with self._changed:
            self._webhook_status = status

    def set_email_status(self, code: int) -> None:
        """Answer mail with SMTP reply ``code``: 250 (accept), 451 (try later) or 550 (refuse)."""
        if code not in _SMTP_REPLIES:
            msg = f"email status must be one of {sorted(_SMTP_REPLIES)}, not {code}"
            raise ValueError(msg)
        with self._changed:
            self._email_status = code

    # what was received

    def notices(self) -> list[ReceivedNotice]:
        """Every notice received, in order, redeliveries included (same ``delivery_id``)."""
        with self._changed:
            return list(self._notices)

    def unique(self) -> list[ReceivedNotice]:
        """What a receiver deduping on the delivery id keeps: the first of each (channel, delivery id).

        Webhooks that did not verify are left out.
        """
        seen: set[tuple[str, str]] = set()
        kept = []
        for notice in self.notices():
            key = (notice.channel, notice.delivery_id)
            if (notice.channel == WEBHOOK and not notice.verified) or key in seen:
                continue
            seen.add(key)
            kept.append(notice)
        return kept

    def attempts(self) -> list[InboxAttempt]:
        """Every request answered, in order, with the status answered (failures simulated included)."""
        with self._changed:
            return list(self._attempts)

    def wait_for(self, predicate: Callable[[list[ReceivedNotice]], bool], timeout_s: float) -> list[ReceivedNotice]:
        """The notices once ``predicate(notices)`` holds; TimeoutError after ``timeout_s`` with what came."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not predicate(list(self._notices)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = [(notice.channel, notice.org_id, notice.delivery_id) for notice in self._notices]
                    msg = f"the inbox did not get the expected notices within {timeout_s} s; it got {got}"
                    raise TimeoutError(msg)
                self._changed.wait(remaining)
            return list(self._notices)

    # called by the servers' threads

    def take_webhook(self, org_id: str, headers: Mapping[str, str], body: bytes) -> int:
        """Verify and record one webhook; the HTTP status to answer (401 when it does not verify)."""
        with self._changed:
            secret, status = self._secrets.get(org_id, b""), self._webhook_status
        try:
            delivery_id, verified = verify(secret, headers, body, now=int(time.time())), True
        except SignatureError:
            delivery_id, verified, status = _header(headers, HEADER_DELIVERY), False, int(HTTPStatus.UNAUTHORIZED)
        # A forged webhook is recorded (verified=False); a genuine one only when the inbox is "up" (2xx).
        kept = not verified or 200 <= status < 300
        notice = ReceivedNotice(WEBHOOK, org_id, delivery_id, body, verified, time.time()) if kept else None
        self._record(InboxAttempt(WEBHOOK, org_id, delivery_id, status), notice)
        return status

    def take_email(self, recipients: list[str], raw: bytes) -> str:
        """Record one message for each recipient; the SMTP reply to answer."""
        headers = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
        delivery_id = str(headers.get(HEADER_DELIVERY, ""))
        with self._changed:
            code = self._email_status
        for address in recipients:
            local, _, domain = address.partition("@")
            org_id = local if domain.lower() == INBOX_DOMAIN else address
            notice = ReceivedNotice(EMAIL, org_id, delivery_id, raw, verified=False, received_at=time.time())
            self._record(InboxAttempt(EMAIL, org_id, delivery_id, code), notice if code == 250 else None)
        return _SMTP_REPLIES[code]

    def _record(self, attempt: InboxAttempt, notice: ReceivedNotice | None) -> None:
        with self._changed:
            self._attempts.append(attempt)
            if notice is not None:
                self._notices.append(notice)
            self._changed.notify_all()

    # servers

    def _require_started(self) -> None:
        if not self.webhook_port:
            msg = "the inbox is not started: call start() (or use it as a context manager) first"
            raise RuntimeError(msg)

    def _start_http(self) -> None:
        if self._http is not None:
            return
        server = _WebhookServer(self.webhook_port, self)
        self.webhook_port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self._http, self._http_thread = server, thread

    def _stop_http(self) -> None:
        server, thread, self._http, self._http_thread = self._http, self._http_thread, None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(_STOP_TIMEOUT_S)

    def _start_smtp(self) -> None:
        if self._smtp is not None:
            return
        sock = _bound_socket(self.smtp_port)
        controller = _BoundController(_SmtpHandler(self), sock)
        try:
            controller.start()
        except BaseException:
            with contextlib.suppress(Exception):
                controller.stop(no_assert=True)
            sock.close()
            raise
        self.smtp_port = sock.getsockname()[1]
        self._smtp = controller

    def _stop_smtp(self) -> None:
        controller, self._smtp = self._smtp, None
        if controller is not None:
            controller.stop()


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), "")
