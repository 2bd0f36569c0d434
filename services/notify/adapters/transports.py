"""How notices leave the network: signed webhooks and e-mail (the names the application uses).

``Transports`` is the port the application sends through; ``NetworkTransports`` is the real one (requests and
smtplib); tests may pass a recording one. Every send returns a ``SendOutcome`` and never raises for a network,
HTTP or SMTP failure.
"""

from __future__ import annotations

from typing import Protocol

from services.notify.adapters.mail import EmailSender, SmtpSettings
from services.notify.adapters.outcome import SendOutcome, permanent
from services.notify.adapters.webhook import WebhookSender

__all__ = ["EmailSender", "NetworkTransports", "SendOutcome", "SmtpSettings", "Transports", "WebhookSender"]

SMTP_NOT_CONFIGURED = "smtp_not_configured"


class Transports(Protocol):
    """Sends one attempt of a notice over a channel."""

    def send_webhook(self, url: str, secret: bytes, delivery_id: str, body: bytes) -> SendOutcome:
        """POST ``body`` to ``url``, signed with ``secret``."""
        ...

    def send_email(self, to: str, subject: str, text: str, delivery_id: str) -> SendOutcome:
        """Mail ``text`` to ``to``."""
        ...


class NetworkTransports:
    """``Transports`` over the network; without an SMTP relay every e-mail fails for good (``smtp_not_configured``)."""

    def __init__(self, webhook: WebhookSender, email: EmailSender | None) -> None:
        self._webhook = webhook
        self._email = email

    def send_webhook(self, url: str, secret: bytes, delivery_id: str, body: bytes) -> SendOutcome:
        """POST ``body`` to ``url``, signed with ``secret``."""
        return self._webhook.send(url, secret, delivery_id, body)

    def send_email(self, to: str, subject: str, text: str, delivery_id: str) -> SendOutcome:
        """Mail ``text`` to ``to`` through the relay, if there is one."""
        if self._email is None:
            return permanent(SMTP_NOT_CONFIGURED)
        return self._email.send(to, subject, text, delivery_id)
