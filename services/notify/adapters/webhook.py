"""Signed webhooks: one HTTPS POST per attempt, its answer classified as delivered, retryable or permanent.

2xx is delivered. 408, 425, 429 and 5xx, timeouts, refused connections and TLS failures are retried. A
redirect is not followed (the directory names the exact URL) and, like any other 4xx, is permanent. The
timeout bounds the connection and each wait for bytes; the answer's body is never read.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

from services.notify.adapters.outcome import (
    DELIVERED,
    SendOutcome,
    caused_by,
    permanent,
    retryable,
    valid_delivery_id,
)
from services.notify.domain.signature import signature_headers

RETRYABLE_STATUSES = frozenset({408, 425, 429})
USER_AGENT = "referralnet-notify/1"
_LOOPBACK_NAMES = frozenset({"localhost"})


def _url_problem(url: str) -> str:
    """Why ``url`` cannot be posted to ("" when it can): https, or http only to a loopback host."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # ValueError for a port out of range
    except ValueError:
        return "invalid_url"
    if not host or parts.scheme not in {"https", "http"}:
        return "invalid_url"
    if parts.scheme == "http" and host not in _LOOPBACK_NAMES:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            return "insecure_url"
    return ""


class WebhookSender:
    """POSTs signed notices; never raises for a network or HTTP failure (it returns the outcome)."""

    def __init__(self, timeout_seconds: float = 5.0, clock: Callable[[], float] = time.time) -> None:
        if not timeout_seconds > 0:
            msg = f"timeout_seconds must be > 0, not {timeout_seconds}"
            raise ValueError(msg)
        self._timeout = timeout_seconds
        self._clock = clock
        self._session = requests.Session()

    def send(self, url: str, secret: bytes, delivery_id: str, body: bytes) -> SendOutcome:
        """POST ``body`` (JSON) to ``url`` signed with ``secret``, timestamped now; the attempt's outcome."""
        problem = _url_problem(url)
        if problem:
            return permanent(problem)
        if not secret:
            return permanent("no_secret")
        if not valid_delivery_id(delivery_id):
            return permanent("invalid_delivery_id")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **signature_headers(secret, int(self._clock()), body, delivery_id),
        }
        try:
            response = self._session.post(
                url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False, stream=True
            )
        except requests.exceptions.RequestException as exc:
            return _network_failure(exc)
        status = response.status_code
        response.close()  # the body is not needed: the status says it all
        return classify_status(status)

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()


def classify_status(status: int) -> SendOutcome:
    """An HTTP status as an outcome: 2xx delivered; 408/425/429/5xx retryable; anything else permanent."""
    if 200 <= status < 300:
        return DELIVERED
    outcome = f"http_{status}"
    if status in RETRYABLE_STATUSES or 500 <= status < 600:
        return retryable(outcome)
    return permanent(outcome)


def _network_failure(exc: requests.exceptions.RequestException) -> SendOutcome:
    if isinstance(exc, requests.exceptions.Timeout) or caused_by(exc, TimeoutError):
        return retryable("timeout")
    if isinstance(exc, requests.exceptions.SSLError):
        return retryable("tls_error")
    if caused_by(exc, ConnectionRefusedError):
        return retryable("connection_refused")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema):
        return permanent("invalid_url")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return retryable("connection_error")
    return retryable("request_error")
