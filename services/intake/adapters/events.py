"""Intake's event codec: which messages its events carry, how they are sealed, and referral's events it reads.

Intake's events (ADR 11) carry their payload as the routing section, sealed under the network routing key,
so every network service and auditor reads them; ReferralSubmitted and ConsentOverrideRecorded add a
case-file section (the CaseFile, the OverrideJustification) sealed under the subject's case-file key.
"""

from __future__ import annotations

from google.protobuf.message import Message

from services.core.envelope import SectionKind
from services.core.events.catalogues import INTAKE_EVENTS
from services.core.eventstore import NewEvent
from services.core.keyvault.keys import DataKey


def sealed_event(message: Message, routing_key: DataKey, occurred_at_micros: int, *,
                 case_file: tuple[DataKey, Message] | None = None) -> NewEvent:
    """A NewEvent for one of intake's events: the payload under ``routing_key``, and a case-file section
    (key and message) when given."""
    event_type, version, payload = INTAKE_EVENTS.encode(message)
    sections: dict[SectionKind, tuple[DataKey, bytes]] = {SectionKind.ROUTING: (routing_key, payload)}
    if case_file is not None:
        key, content = case_file
        sections[SectionKind.CASE_FILE] = (key, content.SerializeToString(deterministic=True))
    return NewEvent(event_type=event_type, schema_version=version, sections=sections,
                    occurred_at_unix_micros=occurred_at_micros)
