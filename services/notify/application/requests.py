"""Checking ListDeliveries requests: every problem is an InvalidArgument naming the field, in es and en."""

from __future__ import annotations

import re
from collections.abc import Iterable

from services.core.application import InvalidArgument
from services.notify.adapters.api import STATUS_OF
from services.notify.adapters.repository import DeliveryStatus

_EVENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def statuses(values: Iterable[int]) -> list[DeliveryStatus]:
    """The statuses to list (none: all); each a DeliveryStatus value other than UNSPECIFIED."""
    found = []
    for index, value in enumerate(values):
        if value not in STATUS_OF:
            raise InvalidArgument(f"statuses[{index}]", es="no es un estado de entrega válido",
                                  en="not a valid delivery status")
        found.append(STATUS_OF[value])
    return list(dict.fromkeys(found))


def event_id(value: str) -> str:
    """Empty (any event), or an event id as the network assigns them (a UUID in lower-case hex)."""
    if value and _EVENT_ID.fullmatch(value) is None:
        raise InvalidArgument("event_id", es="no es un identificador de evento (UUID en minúsculas)",
                              en="not an event id (a lower-case UUID)")
    return value
