"""What one attempt at sending a notice came to (shared by the webhook and e-mail senders)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A delivery id travels in a header (webhook) and in the Message-ID (e-mail): no spaces, no line breaks.
_DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,200}")


@dataclass(frozen=True)
class SendOutcome:
    """One attempt's result: ``outcome`` is ``"delivered"`` or why not (``http_503``, ``timeout``, ``smtp_550``...).

    ``permanent``: trying again cannot help (a 4xx other than 408/425/429, an SMTP 5xx, a missing secret...).
    """

    delivered: bool
    outcome: str
    permanent: bool = False


DELIVERED = SendOutcome(delivered=True, outcome="delivered")


def retryable(outcome: str) -> SendOutcome:
    """A failure worth another try later."""
    return SendOutcome(delivered=False, outcome=outcome)


def permanent(outcome: str) -> SendOutcome:
    """A failure no retry can fix."""
    return SendOutcome(delivered=False, outcome=outcome, permanent=True)


def valid_delivery_id(delivery_id: str) -> bool:
    """True for an id that can go into a header and a Message-ID (``[A-Za-z0-9._:-]``, 1-200 characters)."""
    return _DELIVERY_ID.fullmatch(delivery_id) is not None


def caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """True when ``exc`` or anything it wraps (cause, context, urllib3's ``reason``, args) is a ``kind``."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return True
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None), *current.args])
    return False
