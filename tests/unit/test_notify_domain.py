"""The notify domain: templates (Spanish and English, facts only), the webhook signature, retries, settings.

What is real: everything here is pure (no servers); the HMAC is checked against Python's hmac directly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import Region, ServiceType
from services.core.generated.referralnet.notify.v1.notify_pb2 import Notice, NoticeType
from services.notify.config import DEFAULT_ACT_AT, PORT, SERVICE, notify_settings
from services.notify.domain.notices import NoticeFacts, notice_message, parse_webhook_body, webhook_body
from services.notify.domain.retry import RetryPolicy
from services.notify.domain.signature import (
    HEADER_DELIVERY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    TOLERANCE_SECONDS,
    SignatureError,
    sign,
    signature_headers,
    verify,
)
from services.notify.domain.templates import deadline_words, region_name, render, service_type_name

SENDABLE = [value for _, value in NoticeType.items() if value != NoticeType.NOTICE_TYPE_UNSPECIFIED]
LANGUAGES = ["es", "en"]
ACT_AT = "referralnet.referral.v1.ReferralService @ referral.red.example:50052"
# 2026-03-15T19:30:00Z, which is 14:30 in Lima
DEADLINE_US = 1_773_603_000_000_000
RPCS: dict[int, list[str]] = {
    NoticeType.NOTICE_TYPE_HANDOFF_OFFERED: ["AcceptHandoff", "DeclineHandoff"],
    NoticeType.NOTICE_TYPE_OFFER_REMINDER: ["AcceptHandoff", "DeclineHandoff"],
    NoticeType.NOTICE_TYPE_HANDOFF_EXPIRED: ["ListHandoffs"],
    NoticeType.NOTICE_TYPE_REFERRAL_ESCALATED: ["GetReferral"],
    NoticeType.NOTICE_TYPE_CONSENT_REVOKED: ["ListHandoffs"],
    NoticeType.NOTICE_TYPE_DELIVERY_FAILED: ["GetReferral"],
}


def make_facts(notice_type: int = NoticeType.NOTICE_TYPE_HANDOFF_OFFERED, **changes: object) -> NoticeFacts:
    facts = NoticeFacts(
        notice_type=notice_type,
        event_id="0192f0c4-7a41-7cc3-9f51-2b8e0c1d3e4f",
        reference="0192f0c4-8b52-7dd4-a062-3c9f1d2e4f50",
        referral_id="0192f0c4-6930-7bb2-8e40-1a7dfb0c2d3e",
        service_type=ServiceType.SERVICE_TYPE_SHELTER,
        region=Region.REGION_MADRE_DE_DIOS,
        deadline_us=DEADLINE_US,
        occurred_at_us=DEADLINE_US - 7_200_000_000,
    )
    return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]


# --- templates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("notice_type", SENDABLE, ids=NoticeType.Name)
def test_every_notice_type_renders_its_facts_in_both_languages(notice_type: int, language: str) -> None:
    facts = make_facts(notice_type)
    rendered = render(facts, language, ACT_AT)

    assert facts.reference in rendered.subject
    assert service_type_name(facts.service_type, language) in rendered.subject
    for fact in (
        facts.reference,
        facts.referral_id,
        service_type_name(facts.service_type, language),
        region_name(facts.region),
        deadline_words(facts.deadline_us, language),
        "2026-03-15T19:30:00Z",
        ACT_AT,
        *RPCS[notice_type],
    ):
        assert fact in rendered.text
    assert "\r" not in rendered.subject + rendered.text
    assert "\n" not in rendered.subject


@pytest.mark.parametrize("notice_type", SENDABLE, ids=NoticeType.Name)
def test_spanish_and_english_differ_and_use_their_own_words(notice_type: int) -> None:
    facts = make_facts(notice_type, service_type=ServiceType.SERVICE_TYPE_LEGAL_AID)
    spanish, english = render(facts, "es", ACT_AT), render(facts, "en", ACT_AT)

    assert spanish.subject != english.subject
    assert "asistencia legal" in spanish.text
    assert "Plazo: 15/03/2026 14:30 (hora de Perú, UTC-5); 2026-03-15T19:30:00Z" in spanish.text
    assert "legal aid" in english.text
    assert "Deadline: 2026-03-15 14:30 (Peru time, UTC-5); 2026-03-15T19:30:00Z" in english.text
    assert "asistencia legal" not in english.text


def _skeleton(facts: NoticeFacts, language: str, act_at: str) -> str:
    """The rendered notice with every fact replaced by a placeholder."""
    rendered = render(facts, language, act_at)
    text = f"{rendered.subject}\n{rendered.text}"
    replacements = {
        deadline_words(facts.deadline_us, language): "<DEADLINE>",
        service_type_name(facts.service_type, language): "<SERVICE>",
        region_name(facts.region): "<REGION>",
        act_at: "<ACT_AT>",
        facts.referral_id: "<REFERRAL>",
        facts.reference: "<REFERENCE>",
    }
    for value, placeholder in replacements.items():
        text = text.replace(value, placeholder)
    return text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("notice_type", SENDABLE, ids=NoticeType.Name)
def test_a_notice_says_nothing_but_its_facts(notice_type: int, language: str) -> None:
    """Two notices with every fact different read the same once the facts are blanked out: no other input."""
    first = make_facts(notice_type)
    second = make_facts(
        notice_type,
        event_id="event-two",
        reference="handoff-two",
        referral_id="referral-two",
        service_type=ServiceType.SERVICE_TYPE_INTERPRETATION,
        region=Region.REGION_PUNO,
        deadline_us=DEADLINE_US + 86_400_000_000 * 40,
        occurred_at_us=1,
    )
    skeleton = _skeleton(first, language, ACT_AT)

    assert skeleton == _skeleton(second, language, "other.Service")
    # every number in a notice is one of its facts (ids, the deadline): none comes from anywhere else
    assert not re.search(r"[0-9]", skeleton.replace("UTC-5", ""))


def test_notice_facts_have_no_room_for_anything_else() -> None:
    assert [field.name for field in dataclasses.fields(NoticeFacts)] == [
        "notice_type",
        "event_id",
        "reference",
        "referral_id",
        "service_type",
        "region",
        "deadline_us",
        "occurred_at_us",
    ]


def test_unset_service_region_deadline_and_same_referral_leave_their_lines_out() -> None:
    facts = make_facts(
        NoticeType.NOTICE_TYPE_REFERRAL_ESCALATED,
        reference="ref-1",
        referral_id="ref-1",
        service_type=0,
        region=0,
        deadline_us=0,
    )
    rendered = render(facts, "en", ACT_AT)

    assert rendered.subject == "ReferralNet: Referral escalated (ref-1)"
    assert "Reference: ref-1" in rendered.text
    for label in ("Referral:", "Service:", "Department:", "Deadline:"):
        assert label not in rendered.text


def test_every_service_type_and_department_has_words_in_both_languages() -> None:
    for _, service_type in ServiceType.items():
        if service_type:
            assert service_type_name(service_type, "es") != service_type_name(service_type, "en")
    names = {region_name(region) for _, region in Region.items() if region}
    assert len(names) == len(Region.items()) - 1
    assert {"Áncash", "Madre de Dios", "San Martín", "Callao"} <= names


@pytest.mark.parametrize(
    ("facts", "language", "act_at", "named"),
    [
        (make_facts(), "fr", ACT_AT, "language"),
        (make_facts(), "", ACT_AT, "language"),
        (make_facts(NoticeType.NOTICE_TYPE_UNSPECIFIED), "es", ACT_AT, "notice_type"),
        (make_facts(99), "es", ACT_AT, "notice_type"),
        (make_facts(service_type=99), "es", ACT_AT, "service_type"),
        (make_facts(region=99), "en", ACT_AT, "region"),
        (make_facts(reference=""), "es", ACT_AT, "reference"),
        (make_facts(reference="h-1\nBcc: someone@example.org"), "es", ACT_AT, "reference"),
        (make_facts(), "es", "svc\r\nX-Evil: 1", "act_at"),
        (make_facts(deadline_us=-1), "es", ACT_AT, "deadline_us"),
    ],
)
def test_what_cannot_be_said_is_a_value_error_naming_the_field(
    facts: NoticeFacts, language: str, act_at: str, named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        render(facts, language, act_at)


# --- the Notice message and the webhook body -------------------------------------------------------------


def test_notice_message_carries_the_facts_and_the_rendered_text() -> None:
    facts = make_facts(NoticeType.NOTICE_TYPE_OFFER_REMINDER)
    notice = notice_message(facts, notice_id="notice-1", language="en", act_at=ACT_AT)

    assert notice == Notice(
        notice_id="notice-1",
        notice_type=NoticeType.NOTICE_TYPE_OFFER_REMINDER,
        reference=facts.reference,
        referral_id=facts.referral_id,
        service_type=ServiceType.SERVICE_TYPE_SHELTER,
        region=Region.REGION_MADRE_DE_DIOS,
        deadline_unix_micros=DEADLINE_US,
        act_at=ACT_AT,
        language="en",
        text=render(facts, "en", ACT_AT).text,
        event_id=facts.event_id,
        occurred_at_unix_micros=facts.occurred_at_us,
    )


def test_webhook_body_is_compact_sorted_utf8_proto_json_that_parses_back() -> None:
    notice = notice_message(make_facts(), notice_id="notice-1", language="es", act_at=ACT_AT)
    body = webhook_body(notice)
    decoded = json.loads(body)

    assert body == json.dumps(decoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert list(decoded) == sorted(decoded)
    assert "organización".encode() in body
    assert decoded["notice_type"] == "NOTICE_TYPE_HANDOFF_OFFERED"
    assert decoded["deadline_unix_micros"] == str(DEADLINE_US)
    assert "referral_id" in decoded
    assert parse_webhook_body(body) == notice


@pytest.mark.parametrize("body", [b"not json", b'{"unknown_field": 1}', b"\xff\xfe"])
def test_a_body_that_is_no_notice_is_a_value_error(body: bytes) -> None:
    with pytest.raises(ValueError, match="Notice"):
        parse_webhook_body(body)


# --- signature -------------------------------------------------------------------------------------------

SECRET = bytes(range(32))
BODY = b'{"notice_id":"n-1","text":"Plazo: ma\xc3\xb1ana"}'
NOW = 1_773_603_000


def test_sign_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET, b"1773603000." + BODY, hashlib.sha256).hexdigest()

    assert sign(SECRET, NOW, BODY) == f"v1={expected}"
    assert signature_headers(SECRET, NOW, BODY, "d-1") == {
        HEADER_TIMESTAMP: "1773603000",
        HEADER_SIGNATURE: f"v1={expected}",
        HEADER_DELIVERY: "d-1",
    }


def test_a_genuine_webhook_verifies_with_any_header_case() -> None:
    headers = signature_headers(SECRET, NOW, BODY, "delivery-7")
    lowered = {key.lower(): value for key, value in headers.items()}

    assert verify(SECRET, headers, BODY, now=NOW) == "delivery-7"
    assert verify(SECRET, lowered, BODY, now=NOW + TOLERANCE_SECONDS) == "delivery-7"
    assert verify(SECRET, lowered, BODY, now=NOW - TOLERANCE_SECONDS) == "delivery-7"


def _reason(secret: bytes, headers: dict[str, str], body: bytes, now: int = NOW) -> str:
    with pytest.raises(SignatureError) as caught:
        verify(secret, headers, body, now=now)
    assert isinstance(caught.value, ValueError)
    assert caught.value.reason in str(caught.value)
    return caught.value.reason


def test_a_tampered_body_or_wrong_secret_is_a_mismatch() -> None:
    headers = signature_headers(SECRET, NOW, BODY, "d-1")

    assert _reason(SECRET, headers, BODY.replace(b"n-1", b"n-2")) == "mismatch"
    assert _reason(SECRET, headers, BODY + b" ") == "mismatch"
    assert _reason(bytes(32), headers, BODY) == "mismatch"
    assert _reason(b"", headers, BODY) == "mismatch"
    # a signature of the same body at another timestamp does not verify with this timestamp
    replayed = {**headers, HEADER_TIMESTAMP: str(NOW + 1)}
    assert _reason(SECRET, replayed, BODY) == "mismatch"


@pytest.mark.parametrize("skew", [TOLERANCE_SECONDS + 1, -(TOLERANCE_SECONDS + 1), 86_400])
def test_a_timestamp_too_far_from_the_clock_is_stale(skew: int) -> None:
    headers = signature_headers(SECRET, NOW, BODY, "d-1")

    assert _reason(SECRET, headers, BODY, now=NOW + skew) == "stale"


@pytest.mark.parametrize("header", [HEADER_TIMESTAMP, HEADER_SIGNATURE, HEADER_DELIVERY])
def test_a_missing_or_empty_header_is_missing(header: str) -> None:
    headers = signature_headers(SECRET, NOW, BODY, "d-1")
    without = {key: value for key, value in headers.items() if key != header}

    assert _reason(SECRET, without, BODY) == "missing"
    assert _reason(SECRET, {**headers, header: "  "}, BODY) == "missing"
    assert _reason(SECRET, {}, BODY) == "missing"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (HEADER_TIMESTAMP, "yesterday"),
        (HEADER_TIMESTAMP, "-1773603000"),
        (HEADER_TIMESTAMP, "1773603000.5"),
        (HEADER_TIMESTAMP, "9" * 40),
        (HEADER_SIGNATURE, "v0=" + "0" * 64),
        (HEADER_SIGNATURE, "0" * 64),
        (HEADER_SIGNATURE, "v1=" + "0" * 63),
        (HEADER_SIGNATURE, "v1=" + "G" * 64),
        (HEADER_SIGNATURE, "v1=" + "A" * 64),
        (HEADER_DELIVERY, "d" * 201),
        (HEADER_DELIVERY, "d-1\x00"),
    ],
)
def test_a_malformed_header_is_malformed(header: str, value: str) -> None:
    headers = {**signature_headers(SECRET, NOW, BODY, "d-1"), header: value}

    assert _reason(SECRET, headers, BODY) == "malformed"


# --- retry ----------------------------------------------------------------------------------------------


def test_the_default_policy_doubles_up_to_the_cap_and_allows_eight_tries() -> None:
    policy = RetryPolicy()

    assert [policy.ceiling_seconds(n) for n in range(1, 10)] == [2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert policy.ceiling_seconds(10_000) == 300
    assert not policy.exhausted(7)
    assert policy.exhausted(8)
    assert policy.exhausted(9)


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=1.5, cap_seconds=10)

    assert policy.delay_seconds(3, random=lambda: 0.0) == 0.0
    assert policy.delay_seconds(3, random=lambda: 0.5) == 3.0
    assert policy.delay_seconds(3, random=lambda: 0.999_999) < 6.0
    assert policy.delay_seconds(50, random=lambda: 0.5) == 5.0


@given(failed=st.integers(min_value=1, max_value=2_000))
def test_every_delay_lies_within_the_full_jitter_range(failed: int) -> None:
    policy = RetryPolicy()
    delay = policy.delay_seconds(failed)

    assert 0 <= delay < min(300, 2 * 2 ** min(failed - 1, 20))


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"base_seconds": 0}, "base_seconds"),
        ({"cap_seconds": 1.0}, "cap_seconds"),
    ],
)
def test_a_policy_out_of_bounds_is_refused(changes: dict[str, float], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        RetryPolicy(**changes)  # type: ignore[arg-type]


def test_delay_needs_at_least_one_failure() -> None:
    with pytest.raises(ValueError, match="failed_attempts"):
        RetryPolicy().delay_seconds(0)


# --- settings ---------------------------------------------------------------------------------------------


def test_settings_default_without_smtp() -> None:
    settings = notify_settings({}, {})

    assert (SERVICE, PORT) == ("notify", 50054)
    assert settings.retry == RetryPolicy(max_attempts=8, base_seconds=2.0, cap_seconds=300.0)
    assert settings.smtp is None
    assert settings.act_at == DEFAULT_ACT_AT == "referralnet.referral.v1.ReferralService"
    assert settings.reminder_before_seconds == 3600
    assert settings.dispatch_interval_seconds == 1.0
    assert settings.dispatch_batch == 50
    assert settings.send_timeout_seconds == 5


def test_settings_come_from_the_nameko_config_before_the_environment() -> None:
    config = {"NOTIFY_MAX_ATTEMPTS": 3, "NOTIFY_SMTP_HOST": "127.0.0.1", "NOTIFY_SMTP_STARTTLS": True}
    environ = {
        "NOTIFY_MAX_ATTEMPTS": "5",
        "NOTIFY_RETRY_BASE_SECONDS": "0.5",
        "NOTIFY_RETRY_CAP_SECONDS": "4",
        "NOTIFY_SMTP_PORT": "2525",
        "NOTIFY_SMTP_FROM": "avisos@red.example",
        "NOTIFY_SMTP_USERNAME": "notify",
        "NOTIFY_SMTP_PASSWORD": "synthetic-password",
        "NOTIFY_ACT_AT": ACT_AT,
        "NOTIFY_REMINDER_BEFORE_SECONDS": "0",
        "NOTIFY_DISPATCH_INTERVAL_SECONDS": "0.2",
        "NOTIFY_DISPATCH_BATCH": "7",
        "NOTIFY_SEND_TIMEOUT_SECONDS": "1.5",
    }
    settings = notify_settings(config, environ)

    assert settings.retry == RetryPolicy(max_attempts=3, base_seconds=0.5, cap_seconds=4)
    assert settings.smtp is not None
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.sender) == ("127.0.0.1", 2525, "avisos@red.example")
    assert settings.smtp.starttls
    assert (settings.smtp.username, settings.smtp.password) == ("notify", "synthetic-password")
    assert "synthetic-password" not in repr(settings)
    assert settings.smtp.timeout_seconds == 1.5
    assert settings.act_at == ACT_AT
    assert settings.reminder_before_seconds == 0
    assert (settings.dispatch_interval_seconds, settings.dispatch_batch) == (0.2, 7)


@pytest.mark.parametrize("value", ["false", "no", "0", "", False])
def test_starttls_off(value: object) -> None:
    smtp = notify_settings({"NOTIFY_SMTP_HOST": "mail", "NOTIFY_SMTP_STARTTLS": value}, {}).smtp

    assert smtp is not None
    assert not smtp.starttls


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("NOTIFY_MAX_ATTEMPTS", "0"),
        ("NOTIFY_MAX_ATTEMPTS", "eight"),
        ("NOTIFY_MAX_ATTEMPTS", "2.5"),
        ("NOTIFY_MAX_ATTEMPTS", True),
        ("NOTIFY_RETRY_BASE_SECONDS", "0"),
        ("NOTIFY_RETRY_BASE_SECONDS", "nan"),
        ("NOTIFY_RETRY_CAP_SECONDS", "1"),
        ("NOTIFY_RETRY_CAP_SECONDS", "inf"),
        ("NOTIFY_SMTP_PORT", "0"),
        ("NOTIFY_SMTP_PORT", "70000"),
        ("NOTIFY_SMTP_PORT", "smtp"),
        ("NOTIFY_SMTP_FROM", "not an address"),
        ("NOTIFY_SMTP_STARTTLS", "maybe"),
        ("NOTIFY_ACT_AT", "line\nbreak"),
        ("NOTIFY_REMINDER_BEFORE_SECONDS", "-1"),
        ("NOTIFY_DISPATCH_INTERVAL_SECONDS", "0"),
        ("NOTIFY_DISPATCH_BATCH", "0"),
        ("NOTIFY_SEND_TIMEOUT_SECONDS", "-5"),
        ("NOTIFY_SEND_TIMEOUT_SECONDS", "soon"),
    ],
)
def test_a_bad_value_is_a_value_error_naming_the_key(key: str, value: object) -> None:
    config = {"NOTIFY_SMTP_HOST": "mail.red.example", key: value}

    with pytest.raises(ValueError, match=key):
        notify_settings(config, {})
    if isinstance(value, str):
        with pytest.raises(ValueError, match=key):
            notify_settings(None, {"NOTIFY_SMTP_HOST": "mail.red.example", key: value})
