"""How long a provider has to answer an offer, per service type (configuration, docs/adr/0011).

Defaults: shelter 2 h, legal aid 24 h, psychosocial 48 h, medical 4 h, every other service 72 h. The
``OFFER_DEADLINES`` setting overrides some of them, e.g. ``shelter=2h,legal_aid=24h,psychosocial=30s``
(units s, m, h, d; ``others=`` sets the fallback), so tests and demos can make offers expire quickly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import ServiceType
from services.core.identity.vocabulary import SERVICE_TYPES, service_type_word

SECOND_MICROS = 1_000_000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_ITEM = re.compile(r"\s*([a-z_]+)\s*=\s*([0-9]{1,7})\s*([smhd])\s*")
OTHERS = "others"

DEFAULT_DEADLINE_SECONDS: Mapping[str, int] = MappingProxyType({
    "shelter": 2 * 3600,
    "legal_aid": 24 * 3600,
    "psychosocial": 48 * 3600,
    "medical": 4 * 3600,
    OTHERS: 72 * 3600,
})


@dataclass(frozen=True)
class OfferDeadlines:
    """Seconds to answer an offer, by service type word (``shelter``...) plus the ``others`` fallback."""

    seconds: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_DEADLINE_SECONDS))

    def for_service(self, service_type: ServiceType) -> int:
        """The deadline of an offer of ``service_type``, in microseconds."""
        word = service_type_word(service_type)
        return self.seconds.get(word, self.seconds[OTHERS]) * SECOND_MICROS

    def expires_at(self, service_type: ServiceType, offered_at: int) -> int:
        """When an offer of ``service_type`` made at ``offered_at`` expires (Unix microseconds)."""
        return offered_at + self.for_service(service_type)


def parse_offer_deadlines(text: str | None) -> OfferDeadlines:
    """The defaults overridden by ``text`` (``shelter=2h,psychosocial=30s``); ValueError naming a bad item."""
    seconds = dict(DEFAULT_DEADLINE_SECONDS)
    for item in (text or "").split(","):
        if not item.strip():
            continue
        match = _ITEM.fullmatch(item)
        if match is None:
            msg = f"OFFER_DEADLINES: {item.strip()!r} is not <service>=<number><s|m|h|d>"
            raise ValueError(msg)
        word, number, unit = match.groups()
        if word != OTHERS and word not in SERVICE_TYPES:
            msg = f"OFFER_DEADLINES: {word!r} is not a service type ({', '.join(sorted(SERVICE_TYPES))} or {OTHERS})"
            raise ValueError(msg)
        if int(number) == 0:
            msg = f"OFFER_DEADLINES: the deadline of {word} must be longer than 0"
            raise ValueError(msg)
        seconds[word] = int(number) * _UNITS[unit]
    return OfferDeadlines(MappingProxyType(seconds))
