"""Dead-letter headers: why and where from, ids only; and how worker outcomes are classified."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.core.envelope import EnvelopeError, TamperedSectionError, UnknownKeyError
from services.core.events import UnprocessableEvent
from services.core.runtime.dead_letter import (
    DeadLetter,
    Origin,
    dead_letter_headers,
    header_map,
)
from services.core.runtime.dependencies import Settlement
from services.core.runtime.kafka_entrypoint import DONE, FAILED, REJECTED, completion_of
from tests.unit.envelope_support import Network

ORIGIN = Origin(topic="referralnet.intake.events.v1", partition=4, offset=1_234, consumer="referral-worker")
WHEN = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)


def test_headers_say_why_and_where_the_record_came_from():
    letter = DeadLetter.rejected(TamperedSectionError("event 0190-x: the routing section does not decrypt"))
    headers = dead_letter_headers(letter, ORIGIN, attempts=1, now=WHEN)
    assert header_map(headers) == {
        "reason": "tampered_section",
        "error": "event 0190-x: the routing section does not decrypt",
        "original-topic": "referralnet.intake.events.v1",
        "original-partition": "4",
        "original-offset": "1234",
        "consumer": "referral-worker",
        "attempts": "1",
        "time": "2026-03-01T12:30:45.123456Z",
    }
    assert all(isinstance(value, bytes) for _, value in headers)


def test_original_headers_are_kept_but_cannot_pose_as_dead_letter_headers():
    original = [("event-id", b"0190-abc"), ("traceparent", b"00-aa-bb-01"), ("dlq-reason", b"forged")]
    headers = dead_letter_headers(DeadLetter("malformed", "envelope: not a valid Envelope encoding"), ORIGIN,
                                  original, now=WHEN)
    assert headers[:2] == original[:2]
    assert [value for key, value in headers if key == "dlq-reason"] == [b"malformed"]


def test_a_failing_handler_is_reported_by_exception_type_only_never_its_text():
    letter = DeadLetter.handler_failed("ValueError", attempts=3, event_id="0190-abc")
    headers = header_map(dead_letter_headers(letter, ORIGIN, attempts=3, now=WHEN))
    assert headers["reason"] == "handler_failed"
    assert headers["error"] == "event 0190-abc: ValueError in each of 3 attempts"
    assert headers["attempts"] == "3"


def test_long_error_messages_are_truncated():
    headers = header_map(dead_letter_headers(DeadLetter("malformed", "x" * 5_000), ORIGIN, now=WHEN))
    assert len(headers["error"]) == 512


def test_a_garbage_record_is_rejected_with_the_verifiers_reason():
    network = Network.create()
    try:
        with pytest.raises(EnvelopeError) as caught:
            network.verifier.verify(b"\x00garbage, not an envelope\xff")
    finally:
        network.close()
    assert DeadLetter.rejected(caught.value).reason == "malformed"


@pytest.mark.parametrize(("error", "kind", "reason"), [
    (None, DONE, None),
    (UnknownKeyError("data key dk-1 is not held here"), REJECTED, "unknown_key"),
    (UnprocessableEvent("unsupported_version", "event 0190-a: payload v9 unknown"), REJECTED, "unsupported_version"),
    (RuntimeError("name=Persona Sintetica"), FAILED, None),
])
def test_worker_outcomes_are_done_rejected_at_once_or_retried(error, kind, reason):
    completion = completion_of(Settlement.COMMITTED if error is None else Settlement.ROLLED_BACK, error)
    assert completion.kind == kind
    assert (completion.letter.reason if completion.letter else None) == reason
    if kind == FAILED:
        assert completion.error_type == "RuntimeError" and "Persona" not in repr(completion)
