"""Event payload catalogues: type and version in the header, bytes in the section, nothing guessed."""

from __future__ import annotations

import pytest

from services.core.events import EventCatalogue, UnprocessableEvent
from services.core.generated.referralnet.intake.v1 import events_pb2 as intake_events
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral_events

CATALOGUE = EventCatalogue([intake_events.ConsentRevoked, intake_events.ReferralSubmitted])


def test_round_trip_uses_the_message_name_as_event_type() -> None:
    message = intake_events.ConsentRevoked(consent_id="con-1", subject_id="sub-1", revoked_by_org="coo-lim-01",
                                           revoked_at_unix_micros=1)
    event_type, version, payload = CATALOGUE.encode(message)
    assert (event_type, version) == ("ConsentRevoked", 1)
    assert CATALOGUE.decode_as(intake_events.ConsentRevoked, event_type, version, payload) == message


@pytest.mark.parametrize(("event_type", "version", "payload", "reason"), [
    ("HandoffOffered", 1, b"", "unknown_event_type"),
    ("ConsentRevoked", 2, b"", "unsupported_schema_version"),
    ("ConsentRevoked", 1, b"\xff\xff\xff", "malformed_payload"),
])
def test_what_is_not_known_is_unprocessable(event_type: str, version: int, payload: bytes, reason: str) -> None:
    with pytest.raises(UnprocessableEvent) as raised:
        CATALOGUE.decode(event_type, version, payload)
    assert raised.value.reason == reason


def test_a_message_of_another_catalogue_is_not_encoded_and_types_are_unique() -> None:
    with pytest.raises(ValueError, match="not an event of this catalogue"):
        CATALOGUE.encode(referral_events.ReferralClosed(referral_id="ref-1"))
    with pytest.raises(ValueError, match="twice"):
        EventCatalogue([intake_events.ConsentRevoked, intake_events.ConsentRevoked])


def test_decode_as_refuses_another_message_type() -> None:
    _, version, payload = CATALOGUE.encode(intake_events.ConsentRevoked(consent_id="con-1"))
    with pytest.raises(UnprocessableEvent):
        CATALOGUE.decode_as(intake_events.ReferralSubmitted, "ConsentRevoked", version, payload)
