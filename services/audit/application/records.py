"""What the ledger takes in: source records as read from Kafka, and what one of them turned out to be.

Kept free of kafka-python so the application can be tested without a broker: the worker's batch
entrypoint turns each ConsumerRecord into a :class:`SourceRecord`.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.core.envelope import EnvelopeError, EventHeader, parse_envelope
from services.core.envelope.header import IDENTIFIER_PATTERN
from services.core.runtime.dead_letter import PREFIX as DEAD_LETTER_PREFIX

NULL_VALUE = "null_value"
"""The rejection reason of a record with no value at all (a tombstone: no envelope to verify)."""

EVENT_ID_HEADER = "event-id"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One Kafka record: where it was read, its value (None for a null value) and its headers."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def position(self) -> str:
        """``topic[partition]@offset``, how a record without an event id is named."""
        return f"{self.topic}[{self.partition}]@{self.offset}"

    def header(self, name: str) -> str | None:
        """The text of the first Kafka header ``name`` (None when absent or not UTF-8)."""
        for key, value in self.headers:
            if key == name:
                try:
                    return value.decode()
                except UnicodeDecodeError:
                    return None
        return None


@dataclass(frozen=True, slots=True)
class DeadLetterFacts:
    """What a dead-letter record's ``dlq-*`` headers say: why, by whom, where the original was read."""

    reason: str
    error: str
    consumer: str
    original_topic: str
    original_partition: int
    original_offset: int


def dead_letter_facts(record: SourceRecord) -> DeadLetterFacts:
    """The ``dlq-*`` headers of a dead-letter record (missing ones: ``unknown``, empty, or -1)."""
    found: dict[str, str] = {}
    for key, value in record.headers:
        if key.startswith(DEAD_LETTER_PREFIX):
            found.setdefault(key.removeprefix(DEAD_LETTER_PREFIX), value.decode(errors="replace"))

    def number(name: str) -> int:
        try:
            return int(found.get(name, ""))
        except ValueError:
            return -1

    return DeadLetterFacts(reason=found.get("reason", "") or "unknown", error=found.get("error", ""),
                           consumer=found.get("consumer", ""), original_topic=found.get("original-topic", ""),
                           original_partition=number("original-partition"),
                           original_offset=number("original-offset"))


def claimed_event_id(record: SourceRecord) -> str | None:
    """The event id a record that did not verify claims: its envelope header's, else its Kafka ``event-id``.

    Not trusted (nothing verified it); used only to name the record in a report.
    """
    if record.value:
        try:
            return EventHeader.decode(parse_envelope(record.value).header_bytes).event_id
        except EnvelopeError:
            pass
    from_header = record.header(EVENT_ID_HEADER)
    if from_header and IDENTIFIER_PATTERN.fullmatch(from_header):
        return from_header
    return None
