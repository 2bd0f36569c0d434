"""Dead-letter records: what a consumer could not process, with the reason, never silently skipped.

A dead-letter record carries the original bytes unchanged as its value and says, in headers, why and
where from: reason, error (ids only: never plaintext, which is why a handler's own exception text is
left out), original topic, partition and offset, consumer, time. The original record's headers are
kept (they are cleartext ids), except any that would pose as dead-letter headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.core.envelope.errors import EnvelopeError
from services.core.events.errors import UnprocessableEvent

HANDLER_FAILED = "handler_failed"
PREFIX = "dlq-"
MAX_ERROR_CHARS = 512


@dataclass(frozen=True)
class DeadLetter:
    """Why a record is dead-lettered: a reason code and an ids-only error message."""

    reason: str
    error: str

    @classmethod
    def rejected(cls, error: EnvelopeError | UnprocessableEvent) -> DeadLetter:
        """A record that cannot be verified, opened or parsed: the error's own reason and message."""
        return cls(error.reason, str(error))

    @classmethod
    def handler_failed(cls, error_type: str, attempts: int, event_id: str) -> DeadLetter:
        """A handler that kept failing: the exception's type only (its text may hold plaintext)."""
        return cls(HANDLER_FAILED, f"event {event_id}: {error_type} in each of {attempts} attempts")


@dataclass(frozen=True)
class Origin:
    """Where the dead record was read: its coordinates and the consumer that gave up on it."""

    topic: str
    partition: int
    offset: int
    consumer: str


def dead_letter_headers(letter: DeadLetter, origin: Origin, original: Sequence[tuple[str, bytes]] = (),
                        *, attempts: int = 0, now: datetime | None = None) -> list[tuple[str, bytes]]:
    """The headers of a dead-letter record: the original ones (minus ``dlq-*``), then why and where from."""
    when = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    kept = [(key, value) for key, value in original if not key.startswith(PREFIX)]
    ours = {
        "reason": letter.reason,
        "error": letter.error[:MAX_ERROR_CHARS],
        "original-topic": origin.topic,
        "original-partition": str(origin.partition),
        "original-offset": str(origin.offset),
        "consumer": origin.consumer,
        "attempts": str(attempts),
        "time": when,
    }
    return kept + [(PREFIX + key, value.encode()) for key, value in ours.items()]


def header_map(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    """The ``dlq-*`` headers of a dead-letter record as text, without the prefix (for readers and tests)."""
    return {key.removeprefix(PREFIX): value.decode() for key, value in headers if key.startswith(PREFIX)}
