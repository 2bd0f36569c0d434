"""The partners' side of notify in the end-to-end tests: the inbox every organisation's endpoints point at.

:class:`RecordingInbox` is deploy/local/inbox.py's ``PartnerInbox`` (a real HTTP receiver and a real SMTP
server on 127.0.0.1) that also keeps each webhook's request headers, so a test can verify the signature the
way a partner would, with the organisation's own copy of its secret. The session's network gives every
provider and coordinator endpoints there (deploy/local/walkthrough.py's ``inbox_endpoints``, as the demo).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from deploy.local.inbox import EMAIL, WEBHOOK, PartnerInbox, ReceivedNotice
from services.core.generated.referralnet.notify.v1 import notify_pb2
from services.notify.domain.signature import HEADER_DELIVERY


@dataclass(frozen=True)
class WebhookRequest:
    """One webhook POST as it reached the receiver: its organisation, headers and raw body."""

    org_id: str
    headers: Mapping[str, str]
    body: bytes


class RecordingInbox(PartnerInbox):
    """A PartnerInbox that also keeps every webhook request's headers (to verify signatures independently)."""

    def __init__(self, secrets: Mapping[str, bytes] | None = None) -> None:
        super().__init__(secrets)
        self._lock = threading.Lock()
        self._requests: list[WebhookRequest] = []

    def take_webhook(self, org_id: str, headers: Mapping[str, str], body: bytes) -> int:
        """Keep the request, then verify and record it as the PartnerInbox does."""
        with self._lock:
            self._requests.append(WebhookRequest(org_id, dict(headers), body))
        return super().take_webhook(org_id, headers, body)

    def requests_for(self, delivery_id: str) -> list[WebhookRequest]:
        """Every webhook request that carried this delivery id, in order."""
        wanted = HEADER_DELIVERY.lower()
        with self._lock:
            return [request for request in self._requests
                    if any(key.lower() == wanted and value == delivery_id for key, value in request.headers.items())]


def offer_notices(notices: list[ReceivedNotice], org_id: str, handoff_id: str) -> dict[str, list[ReceivedNotice]]:
    """The HANDOFF_OFFERED notices of one handoff to one organisation, by channel (verified webhooks only;
    an e-mail is recognised by the handoff id in its text)."""
    found: dict[str, list[ReceivedNotice]] = {WEBHOOK: [], EMAIL: []}
    for notice in notices:
        if notice.org_id != org_id:
            continue
        if notice.channel == WEBHOOK and notice.verified:
            body = notice.notice()
            if body.reference == handoff_id and body.notice_type == notify_pb2.NOTICE_TYPE_HANDOFF_OFFERED:
                found[WEBHOOK].append(notice)
        elif notice.channel == EMAIL and handoff_id in notice.text():
            found[EMAIL].append(notice)
    return found


def has_both(notices: list[ReceivedNotice], org_id: str, handoff_id: str) -> bool:
    """True once the offer's webhook and e-mail have both arrived."""
    found = offer_notices(notices, org_id, handoff_id)
    return bool(found[WEBHOOK]) and bool(found[EMAIL])
