"""The fingerprint of a request, which tells a retry (same bytes) from a different request under one key."""

from __future__ import annotations

import hashlib

from google.protobuf.message import Message

FINGERPRINT_DOMAIN = b"referralnet/intake/request-fingerprint/v1\x00"


def request_fingerprint(request: Message) -> bytes:
    """SHA-256 over a domain label and the request's deterministic serialization, all of it.

    Every field counts, the idempotency key included: a retry sends exactly what it sent before. Unknown
    fields (from a newer client) are part of the bytes too, so they cannot make two requests look alike.
    """
    return hashlib.sha256(FINGERPRINT_DOMAIN + request.SerializeToString(deterministic=True)).digest()
