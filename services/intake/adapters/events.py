"""Intake's event codec: which messages its events carry, how they are sealed, and referral's events it reads.

Intake's events (ADR 11) carry their payload as the routing section, sealed under the network routing key,
so every network service and auditor reads them; ReferralSubmitted and ConsentOverrideRecorded add a
case-file section (the CaseFile, the OverrideJustification) sealed under the subject's case-file key.
"""

from __future__ import annotations

from google.protobuf.message import Message

from services.core.envelope import SectionKind
from services.core.events import EventCatalogue
from services.core.eventstore import NewEvent
from services.core.generated.referralnet.intake.v1 import events_pb2 as intake_events
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral_events
from services.core.keyvault.keys import DataKey

INTAKE_EVENTS = EventCatalogue([
    intake_events.ConsentRecorded,
    intake_events.ConsentOverrideRecorded,
    intake_events.ConsentRevoked,
    intake_events.ReferralSubmitted,
    intake_events.KeyReleased,
    intake_events.SubjectErased,
])
"""Intake's events (topic ``referralnet.intake.events.v1``), schema version 1."""

REFERRAL_EVENTS = EventCatalogue([
    referral_events.ReferralOpened,
    referral_events.HandoffOffered,
    referral_events.HandoffAccepted,
    referral_events.HandoffDeclined,
    referral_events.HandoffExpired,
    referral_events.HandoffWithdrawn,
    referral_events.ServiceStarted,
    referral_events.ServiceCompleted,
    referral_events.ReferralEscalated,
    referral_events.ReferralClosed,
    referral_events.CapacityUpdated,
])
"""Referral's events (topic ``referralnet.referral.events.v1``), which the intake worker decodes."""


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
