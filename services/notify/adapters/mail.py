"""E-mail notices through the network's SMTP relay, one SMTP session per attempt.

The Message-ID is derived from the delivery id (``<delivery_id@notify.referralnet>``) and the delivery id is
also in ``X-Referralnet-Delivery``, so a mail client sees a redelivery as the same message. An SMTP 2xx is
delivered, a 4xx or a connection failure is retried, a 5xx is permanent.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from services.notify.adapters.outcome import DELIVERED, SendOutcome, permanent, retryable, valid_delivery_id
from services.notify.domain.signature import HEADER_DELIVERY

MESSAGE_ID_DOMAIN = "notify.referralnet"
DEFAULT_SENDER = "notificaciones@referralnet.invalid"
_ADDRESS = re.compile(r"[^@\s<>,;:\"()\[\]\\]{1,64}@[^@\s<>,;:\"()\[\]\\]{1,253}")
_MAX_ADDRESS = 254


@dataclass(frozen=True)
class SmtpSettings:
    """The SMTP relay notices are sent through (``NOTIFY_SMTP_*``, services/notify/config.py)."""

    host: str
    port: int = 25
    sender: str = DEFAULT_SENDER
    starttls: bool = False
    username: str = ""
    password: str = field(default="", repr=False)
    timeout_seconds: float = 10.0


def valid_address(address: str) -> bool:
    """True for one plain ``local@domain`` address (no display name, spaces or line breaks), <= 254 chars."""
    return len(address) <= _MAX_ADDRESS and _ADDRESS.fullmatch(address) is not None


def message_id(delivery_id: str) -> str:
    """The Message-ID of every attempt of one delivery: ``<delivery_id@notify.referralnet>``."""
    return f"<{delivery_id}@{MESSAGE_ID_DOMAIN}>"


def build_message(*, sender: str, to: str, subject: str, text: str, delivery_id: str, sent_at: float) -> EmailMessage:
    """A UTF-8 text/plain message; ValueError if a header value holds a line break."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.fromtimestamp(sent_at, UTC))
    message["Message-ID"] = message_id(delivery_id)
    message[HEADER_DELIVERY] = delivery_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders must not answer it
    message.set_content(text, charset="utf-8", cte="quoted-printable")
    return message


class EmailSender:
    """Sends notices by SMTP; never raises for a network or SMTP failure (it returns the outcome)."""

    def __init__(self, settings: SmtpSettings, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock

    def send(self, to: str, subject: str, text: str, delivery_id: str) -> SendOutcome:
        """Send one e-mail to ``to``; the attempt's outcome (``delivered``, ``smtp_451``, ``timeout``...)."""
        if not valid_address(to):
            return permanent("invalid_address")
        if not valid_delivery_id(delivery_id):
            return permanent("invalid_delivery_id")
        try:
            message = build_message(
                sender=self._settings.sender,
                to=to,
                subject=subject,
                text=text,
                delivery_id=delivery_id,
                sent_at=self._clock(),
            )
        except ValueError:
            return permanent("invalid_message")
        try:
            self._deliver(message, to)
        except OSError as exc:  # smtplib's errors are OSErrors too
            return _failure(exc)
        return DELIVERED

    def _deliver(self, message: EmailMessage, to: str) -> None:
        settings = self._settings
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds) as smtp:
            smtp.ehlo()
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, settings.password)
            smtp.send_message(message, from_addr=settings.sender, to_addrs=[to])


# Checked in order: the first kind the error is an instance of decides.
_FAILURES: tuple[tuple[type[OSError], SendOutcome], ...] = (
    (smtplib.SMTPNotSupportedError, permanent("smtp_not_supported")),  # STARTTLS or AUTH not offered
    (smtplib.SMTPServerDisconnected, retryable("smtp_disconnected")),
    (smtplib.SMTPException, retryable("smtp_error")),
    (ssl.SSLError, retryable("tls_error")),
    (TimeoutError, retryable("timeout")),
    (ConnectionRefusedError, retryable("connection_refused")),
)


def _failure(exc: OSError) -> SendOutcome:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return smtp_reply(codes[0] if codes else -1)
    if isinstance(exc, smtplib.SMTPResponseException):  # refused greeting, sender, data or login
        return smtp_reply(exc.smtp_code)
    return next((outcome for kind, outcome in _FAILURES if isinstance(exc, kind)), retryable("connection_error"))


def smtp_reply(code: int) -> SendOutcome:
    """An SMTP reply code as an outcome: 2xx delivered, 5xx permanent, anything else (4xx...) retryable."""
    if 200 <= code < 300:
        return DELIVERED
    outcome = f"smtp_{code}"
    return permanent(outcome) if 500 <= code < 600 else retryable(outcome)
