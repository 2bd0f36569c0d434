"""The error a handler raises for a verified event it can never process (kept free of nameko and kafka)."""

from __future__ import annotations


class UnprocessableEvent(Exception):
    """Raised by a handler for a verified event it can never process (e.g. an unknown payload version).

    It goes to the dead-letter topic at once, without retries. ``reason`` is a short code; the message,
    like an EnvelopeError's, names ids only.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
