"""The event catalogues the referral service writes and reads, its stream names, and sealing its events.

Every referral event's payload is its routing section, sealed under the current network routing key
(docs/adr/0011): notify, audit and the auditors read it without any subject key. Intake's events are read
the same way: only their routing sections, with the network routing keys.
"""

from __future__ import annotations

from google.protobuf.message import Message

from services.core.envelope import SectionKind
from services.core.events import EventCatalogue
from services.core.eventstore import NewEvent
from services.core.generated.referralnet.intake.v1 import events_pb2 as intake_events
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral_events
from services.core.keyvault.routing_keys import NetworkRoutingKeys

REFERRAL_EVENTS = EventCatalogue([
    referral_events.ReferralOpened, referral_events.HandoffOffered, referral_events.HandoffAccepted,
    referral_events.HandoffDeclined, referral_events.HandoffExpired, referral_events.HandoffWithdrawn,
    referral_events.ServiceStarted, referral_events.ServiceCompleted, referral_events.ReferralEscalated,
    referral_events.ReferralClosed, referral_events.CapacityUpdated,
])
"""What the referral service publishes on ``referralnet.referral.events.v1`` (schema version 1)."""

INTAKE_EVENTS = EventCatalogue([
    intake_events.ConsentRecorded, intake_events.ConsentOverrideRecorded, intake_events.ConsentRevoked,
    intake_events.ReferralSubmitted, intake_events.KeyReleased, intake_events.SubjectErased,
])
"""What the referral worker reads from ``referralnet.intake.events.v1`` (their routing sections)."""


def referral_stream(referral_id: str) -> str:
    """The stream of a referral's events: ``referral-<referral_id>``."""
    return f"referral-{referral_id}"


def capacity_stream(org_id: str) -> str:
    """The stream of a provider's capacity updates: ``capacity-<org_id>``."""
    return f"capacity-{org_id}"


def subject_stream(subject_id: str) -> str:
    """Intake's stream of a subject's events: ``subject-<subject_id>``."""
    return f"subject-{subject_id}"


def sealed_event(message: Message, keys: NetworkRoutingKeys, occurred_at: int) -> NewEvent:
    """A referral event to append: ``message`` as its routing section under the current routing key."""
    event_type, schema_version, payload = REFERRAL_EVENTS.encode(message)
    return NewEvent(event_type=event_type, schema_version=schema_version,
                    sections={SectionKind.ROUTING: (keys.current(), payload)}, occurred_at_unix_micros=occurred_at)
