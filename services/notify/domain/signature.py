"""The webhook signature (Stripe-like) and its reference verifier (docs/adr/0014-notify.md).

A webhook carries three headers:

| header | value |
|---|---|
| ``X-Referralnet-Timestamp`` | Unix seconds when it was sent |
| ``X-Referralnet-Signature`` | ``v1=`` + hex HMAC-SHA256(secret, ``"<timestamp>." + body``) |
| ``X-Referralnet-Delivery`` | the delivery id: the same on every retry of one delivery |

A receiver recomputes the HMAC over the raw body, compares in constant time, rejects a timestamp more than
``TOLERANCE_SECONDS`` from its clock, and remembers delivery ids to drop a replay or a redelivery.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

HEADER_TIMESTAMP = "X-Referralnet-Timestamp"
HEADER_SIGNATURE = "X-Referralnet-Signature"
HEADER_DELIVERY = "X-Referralnet-Delivery"
TOLERANCE_SECONDS = 300
SCHEME = "v1"

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_SIGNATURE = re.compile(r"v1=([0-9a-f]{64})")
_MAX_DELIVERY_ID = 200


class SignatureError(ValueError):
    """A webhook that does not verify. ``reason``: ``missing``, ``malformed``, ``stale`` or ``mismatch``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"webhook signature {reason}: {detail}")
        self.reason = reason


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256(``secret``, ``b"<timestamp>." + body``)."""
    mac = hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signature_headers(secret: bytes, timestamp: int, body: bytes, delivery_id: str) -> dict[str, str]:
    """The three headers of a webhook sent at ``timestamp`` (Unix seconds)."""
    return {
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(secret, timestamp, body),
        HEADER_DELIVERY: delivery_id,
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value.strip()
    return ""


def verify(
    secret: bytes, headers: Mapping[str, str], body: bytes, *, now: int, tolerance_seconds: int = TOLERANCE_SECONDS
) -> str:
    """The delivery id of a genuine webhook; SignatureError (with its ``reason``) otherwise.

    ``headers`` are looked up case-insensitively, ``body`` is the raw body as received, ``now`` the receiver's
    clock (Unix seconds). The HMAC is compared in constant time.
    """
    values = {name: _header(headers, name) for name in (HEADER_TIMESTAMP, HEADER_SIGNATURE, HEADER_DELIVERY)}
    absent = [name for name, value in values.items() if not value]
    if absent:
        raise SignatureError("missing", f"no {', '.join(absent)} header")
    timestamp_text, signature, delivery_id = values.values()
    if not _TIMESTAMP.fullmatch(timestamp_text):
        raise SignatureError("malformed", f"{HEADER_TIMESTAMP} is not Unix seconds: {timestamp_text[:40]!r}")
    match = _SIGNATURE.fullmatch(signature)
    if match is None:
        raise SignatureError("malformed", f"{HEADER_SIGNATURE} is not v1=<64 lowercase hex digits>")
    if len(delivery_id) > _MAX_DELIVERY_ID or not delivery_id.isprintable():
        raise SignatureError("malformed", f"{HEADER_DELIVERY} is not a printable id of at most {_MAX_DELIVERY_ID}")
    if not secret:
        raise SignatureError("mismatch", "no secret to verify with")
    timestamp = int(timestamp_text)
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError("stale", f"{HEADER_TIMESTAMP} is {now - timestamp} s from now (> {tolerance_seconds})")
    if not hmac.compare_digest(sign(secret, timestamp, body), f"{SCHEME}={match.group(1)}"):
        raise SignatureError("mismatch", "the HMAC does not match the body")
    return delivery_id
