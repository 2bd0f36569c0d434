"""The referral API's messages (referral.proto) made from the domain: handoffs, needs, referrals."""

from __future__ import annotations

from typing import cast

from google.protobuf.timestamp_pb2 import Timestamp

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import (
    ExploitationType,
    Region,
    ServiceType,
    Urgency,
)
from services.core.generated.referralnet.referral.v1 import referral_pb2 as api
from services.referral.adapters.repository import InboxEntry
from services.referral.domain.handoff import Handoff, HandoffState
from services.referral.domain.referral import NeedState, Referral

HANDOFF_STATES: dict[HandoffState, api.HandoffState] = {
    HandoffState.OFFERED: api.HANDOFF_STATE_OFFERED,
    HandoffState.ACCEPTED: api.HANDOFF_STATE_ACCEPTED,
    HandoffState.DECLINED: api.HANDOFF_STATE_DECLINED,
    HandoffState.EXPIRED: api.HANDOFF_STATE_EXPIRED,
    HandoffState.WITHDRAWN: api.HANDOFF_STATE_WITHDRAWN,
    HandoffState.IN_SERVICE: api.HANDOFF_STATE_IN_SERVICE,
    HandoffState.COMPLETED: api.HANDOFF_STATE_COMPLETED,
}
"""Domain state -> API enum (and back, with ``STATE_OF``)."""

STATE_OF: dict[int, HandoffState] = {int(number): state for state, number in HANDOFF_STATES.items()}

NEED_STATES: dict[NeedState, api.NeedState] = {
    NeedState.UNROUTED: api.NEED_STATE_UNSPECIFIED,  # never stored: routed in the transaction that made it
    NeedState.OFFERED: api.NEED_STATE_OFFERED,
    NeedState.ACCEPTED: api.NEED_STATE_ACCEPTED,
    NeedState.IN_SERVICE: api.NEED_STATE_IN_SERVICE,
    NeedState.COMPLETED: api.NEED_STATE_COMPLETED,
    NeedState.WITHDRAWN: api.NEED_STATE_WITHDRAWN,
    NeedState.ESCALATED: api.NEED_STATE_ESCALATED,
}


def timestamp(unix_micros: int) -> Timestamp:
    """A protobuf Timestamp of Unix microseconds."""
    stamp = Timestamp()
    stamp.FromMicroseconds(unix_micros)
    return stamp


def handoff_message(handoff: Handoff, *, referral_id: str, subject_id: str, service_type: ServiceType,
                    urgency: Urgency, region: Region, minor: bool,
                    exploitation_type: ExploitationType) -> api.Handoff:
    """A handoff as the API shows it: its own fields and the routing facts of its referral and need."""
    return api.Handoff(
        handoff_id=handoff.handoff_id, referral_id=referral_id, subject_id=subject_id, service_type=service_type,
        urgency=urgency, region=region, minor=minor, exploitation_type=exploitation_type,
        provider_org=handoff.provider_org, state=HANDOFF_STATES[handoff.state],
        offered_at=timestamp(handoff.offered_at), offer_expires_at=timestamp(handoff.expires_at),
        updated_at=timestamp(handoff.updated_at), decline_reason=cast("api.DeclineReason", handoff.decline_reason),
        outcome=cast("api.ServiceOutcome", handoff.outcome),
        withdraw_reason=cast("api.WithdrawReason", handoff.withdraw_reason), note=handoff.note)


def referral_handoff(referral: Referral, handoff: Handoff) -> api.Handoff:
    """One of a referral's handoffs as the API shows it."""
    need = referral.needs[handoff.need_index]
    return handoff_message(handoff, referral_id=referral.referral_id, subject_id=referral.subject_id,
                           service_type=need.service_type, urgency=need.urgency, region=referral.region,
                           minor=referral.minor, exploitation_type=referral.exploitation_type)


def inbox_handoff(entry: InboxEntry) -> api.Handoff:
    """An inbox entry as the API shows it."""
    return handoff_message(entry.handoff, referral_id=entry.referral_id, subject_id=entry.subject_id,
                           service_type=entry.service_type, urgency=entry.urgency, region=entry.region,
                           minor=entry.minor, exploitation_type=entry.exploitation_type)


def referral_message(referral: Referral) -> api.Referral:
    """A referral's whole status: every need, every handoff made for it (oldest first), open or closed."""
    message = api.Referral(
        referral_id=referral.referral_id, subject_id=referral.subject_id, referrer_org=referral.referrer_org,
        region=referral.region, minor=referral.minor, exploitation_type=referral.exploitation_type,
        state=api.REFERRAL_STATE_CLOSED if referral.closed else api.REFERRAL_STATE_OPEN,
        submitted_at=timestamp(referral.submitted_at),
        needs=[api.NeedStatus(service_type=need.service_type, urgency=need.urgency, state=NEED_STATES[need.state],
                              handoffs=[referral_handoff(referral, handoff)
                                        for handoff in referral.handoffs_of(need.index)])
               for need in referral.needs])
    if referral.closed_at is not None:
        message.closed_at.CopyFrom(timestamp(referral.closed_at))
    return message
