"""The notify API's messages (notify.proto) made from the delivery log's rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from services.core.generated.referralnet.notify.v1 import notify_pb2 as api
from services.notify.adapters.repository import Attempt, Delivery, DeliveryStatus

DELIVERY_STATUSES: dict[DeliveryStatus, api.DeliveryStatus] = {
    DeliveryStatus.PENDING: api.DELIVERY_STATUS_PENDING,
    DeliveryStatus.DELIVERED: api.DELIVERY_STATUS_DELIVERED,
    DeliveryStatus.FAILED: api.DELIVERY_STATUS_FAILED,
}
"""Stored status -> API enum (and back, with ``STATUS_OF``)."""

STATUS_OF: dict[int, DeliveryStatus] = {int(number): status for status, number in DELIVERY_STATUSES.items()}


def delivery_message(delivery: Delivery, attempts: Sequence[Attempt]) -> api.Delivery:
    """A delivery as its organisation sees it: the notice's type, reference and event, where it went, how."""
    return api.Delivery(
        delivery_id=delivery.delivery_id, event_id=delivery.event_id,
        notice_type=cast("api.NoticeType", delivery.notice_type), channel=cast("api.Channel", delivery.channel),
        endpoint=delivery.endpoint, status=DELIVERY_STATUSES[delivery.status], reference=delivery.reference,
        created_at_unix_micros=delivery.created_at_us, delivered_at_unix_micros=delivery.delivered_at_us,
        next_attempt_at_unix_micros=(delivery.next_attempt_at_us if delivery.status == DeliveryStatus.PENDING
                                     else 0),
        attempts=[api.DeliveryAttempt(attempted_at_unix_micros=attempt.attempted_at_us, outcome=attempt.outcome)
                  for attempt in attempts])
