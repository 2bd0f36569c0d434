"""The catalogue of each events topic, defined once: what its producer writes and every consumer decodes.

A catalogue is the topic's contract (like its .proto): intake, referral and notify seal with their own, and
every service that reads another's topic (referral and notify read intake's, intake and notify read
referral's, audit reads all three) decodes with the same object, so a new event type is added in one place.
"""

from __future__ import annotations

from services.core.events.codec import EventCatalogue
from services.core.generated.referralnet.intake.v1 import events_pb2 as intake_events
from services.core.generated.referralnet.notify.v1 import events_pb2 as notify_events
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral_events

INTAKE_EVENTS = EventCatalogue([
    intake_events.ConsentRecorded, intake_events.ConsentOverrideRecorded, intake_events.ConsentRevoked,
    intake_events.ReferralSubmitted, intake_events.KeyReleased, intake_events.SubjectErased,
])
"""Intake's events (topic ``referralnet.intake.events.v1``), schema version 1."""

REFERRAL_EVENTS = EventCatalogue([
    referral_events.ReferralOpened, referral_events.HandoffOffered, referral_events.HandoffAccepted,
    referral_events.HandoffDeclined, referral_events.HandoffExpired, referral_events.HandoffWithdrawn,
    referral_events.ServiceStarted, referral_events.ServiceCompleted, referral_events.ReferralEscalated,
    referral_events.ReferralClosed, referral_events.CapacityUpdated,
])
"""Referral's events (topic ``referralnet.referral.events.v1``), schema version 1."""

NOTIFY_EVENTS = EventCatalogue([notify_events.NoticeUndeliverable])
"""Notify's events (topic ``referralnet.notify.events.v1``), schema version 1."""
