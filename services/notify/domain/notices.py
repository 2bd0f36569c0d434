"""What a notice may say: ``NoticeFacts``, the ``Notice`` message built from them, and the webhook body.

PII-free by construction (docs/adr/0014-notify.md): ``NoticeFacts`` holds only ids, a service type, a
department, a deadline and times, all read from events' routing sections. There is no free-text field, so no
later change can slip a name, a document or a narrative into a notice without changing this type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from google.protobuf import json_format

from services.core.generated.referralnet.notify.v1 import notify_pb2
from services.notify.domain.templates import render


@dataclass(frozen=True)
class NoticeFacts:
    """Everything a notice may say. No other field, by design (ADR 14)."""

    notice_type: int  # notify_pb2.NoticeType
    event_id: str
    reference: str  # the handoff id (the referral id for REFERRAL_ESCALATED)
    referral_id: str
    service_type: int  # ServiceType (0 = none)
    region: int  # Region (0 = none)
    deadline_us: int  # 0 = no deadline
    occurred_at_us: int


def notice_message(facts: NoticeFacts, *, notice_id: str, language: str, act_at: str) -> notify_pb2.Notice:
    """The ``Notice`` (the webhook body) of ``facts`` in ``language`` (``es``/``en``); ValueError if unrenderable.

    ``act_at`` is copied as configured (``NOTIFY_ACT_AT``: the service, and the edge's address when it has one);
    ``text`` names the RPC to call there.
    """
    rendered = render(facts, language, act_at)
    return notify_pb2.Notice(
        notice_id=notice_id,
        notice_type=facts.notice_type,  # type: ignore[arg-type]  # validated by render
        reference=facts.reference,
        referral_id=facts.referral_id,
        service_type=facts.service_type,  # type: ignore[arg-type]
        region=facts.region,  # type: ignore[arg-type]
        deadline_unix_micros=facts.deadline_us,
        act_at=act_at,
        language=language,
        text=rendered.text,
        event_id=facts.event_id,
        occurred_at_unix_micros=facts.occurred_at_us,
    )


def webhook_body(notice: notify_pb2.Notice) -> bytes:
    """``notice`` as proto3 JSON with the original field names, compact, keys sorted, UTF-8.

    Fields at their default (0, "") are omitted, as the proto3 JSON mapping does; int64 values are strings.
    """
    as_dict = json_format.MessageToDict(notice, preserving_proto_field_name=True)
    return json.dumps(as_dict, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def parse_webhook_body(body: bytes) -> notify_pb2.Notice:
    """A webhook body back into a ``Notice`` (for receivers and tests); ValueError if it is not one."""
    notice = notify_pb2.Notice()
    try:
        json_format.Parse(body.decode(), notice)
    except (UnicodeDecodeError, json_format.ParseError) as exc:
        msg = f"webhook body is not a referralnet.notify.v1.Notice: {exc}"
        raise ValueError(msg) from None
    return notice
