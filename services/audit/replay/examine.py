"""What one record read from Kafka is, for the ledger and the compliance checks, judged on its own.

A record of a source topic is verified (then it carries its leaf input, the envelope's canonical hash, and
its decoded routing payload when that opens and decodes) or not (then it carries the reason and the event
id it claims). A record of a dead-letter topic is never a leaf (audit service's rule, ADR 12): it carries
its ``dlq-*`` facts, and its verified header when its envelope verifies. Whether a verified source record
becomes a leaf, or is a duplicate, depends on the order the checkpoints give, which :mod:`.ledger` decides.

Routing sections are opened with the network routing keys (auditors hold them, ADR 11), case files never.
The rules and the naming are the audit service's own (``services.audit.application.records``), so the
replay judges every record as the worker did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import Message

from services.audit.adapters.source import read_source_event
from services.audit.application.records import (
    NULL_VALUE,
    DeadLetterFacts,
    SourceRecord,
    claimed_event_id,
    dead_letter_facts,
)
from services.audit.replay.log_reader import Position, position_name
from services.core.envelope import EnvelopeError, EventHeader, Opener, VerifiedEnvelope, Verifier
from services.core.events import UnprocessableEvent
from services.core.keyvault.routing_keys import NetworkRoutingKeys


@dataclass(frozen=True, slots=True)
class Examined:
    """One record, examined.

    ``leaf_input`` is set exactly when the envelope verified (it is its canonical hash) and ``problem`` (the
    error's reason) when it did not. ``event_id`` is the verified id, or the id a record that did not verify
    claims, or None when it names none. ``message`` is the decoded routing payload of a verified event and
    ``undecodable`` the reason it could not be had. ``dead_letter`` is set for a record of a dead-letter topic.
    """

    position: Position
    event_id: str | None = None
    leaf_input: bytes | None = None
    header: EventHeader | None = None
    message: Message | None = None
    problem: str | None = None
    undecodable: str | None = None
    dead_letter: DeadLetterFacts | None = None

    @property
    def verified(self) -> bool:
        """True when the envelope verified against the directory."""
        return self.leaf_input is not None

    @property
    def name(self) -> str:
        """How reports name the record: its event id, else ``topic[partition]@offset``."""
        return self.event_id or position_name(self.position)

    @property
    def subject_id(self) -> str:
        """The subject the decoded payload names (empty when none, or when nothing decoded)."""
        return str(getattr(self.message, "subject_id", "") or "") if self.message is not None else ""


class Examiner:
    """Verifies and decodes batches of records (``verify_many`` spreads the Ed25519 work over the cores)."""

    def __init__(self, verifier: Verifier, routing_keys: NetworkRoutingKeys,
                 dead_letter_topics: frozenset[str]) -> None:
        self._verifier = verifier
        self._keys = routing_keys
        self._dead_letter_topics = dead_letter_topics
        self._opener = Opener()

    def examine(self, records: Sequence[SourceRecord]) -> list[Examined]:
        """Each record examined, in the same order."""
        results = self._verifier.verify_many([record.value or b"" for record in records])
        return [self._examined(record, result) for record, result in zip(records, results, strict=True)]

    def _examined(self, record: SourceRecord, result: VerifiedEnvelope | EnvelopeError) -> Examined:
        position = (record.topic, record.partition, record.offset)
        letter = dead_letter_facts(record) if record.topic in self._dead_letter_topics else None
        if record.value is None or isinstance(result, EnvelopeError):
            problem = result.reason if isinstance(result, EnvelopeError) and record.value is not None else NULL_VALUE
            return Examined(position, event_id=claimed_event_id(record), problem=problem, dead_letter=letter)
        try:
            message, undecodable = read_source_event(result, self._keys, self._opener), None
        except (EnvelopeError, UnprocessableEvent) as error:
            message, undecodable = None, error.reason
        return Examined(position, event_id=result.header.event_id, leaf_input=result.canonical_hash(),
                        header=result.header, message=message, undecodable=undecodable, dead_letter=letter)
