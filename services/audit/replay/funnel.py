"""The referral funnel and the time to acceptance, from referral's decoded events (pure; no I/O).

A **need** of a referral (``referral_id``, ``need_index``) is *offered* once any provider was offered it,
*accepted* once a provider accepted one of its offers, and *completed* once that service ended
(ServiceCompleted). Needs are counted per service type and per region (the referral's region, as the
offer carries it). The **time to acceptance** of a need is the time from its first offer to the first
acceptance of any of its offers, whatever happened in between (declines, expiries, re-offers).

Events are matched by ids only (handoff, referral); nothing else is read, so the figures hold no personal
data. Events may arrive in any order across topics and partitions; the figures do not depend on it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf.message import Message

from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral_events

Need = tuple[str, int]
STAGES = ("offered", "accepted", "completed")


@dataclass(frozen=True)
class _Offer:
    need: Need
    service_type: str
    region: str
    offered_at_us: int


@dataclass
class FunnelRow:
    """How many needs reached each stage, for one service type or one region; ``offers`` counts every offer."""

    label: str
    offered: int = 0
    accepted: int = 0
    completed: int = 0
    offers: int = 0

    def as_dict(self) -> dict[str, int | str]:
        """The row for report.json."""
        return {"label": self.label, "offered": self.offered, "accepted": self.accepted,
                "completed": self.completed, "offers": self.offers}


@dataclass
class FunnelFigures:
    """The funnel per service type and per region, and every need's time from first offer to acceptance."""

    by_service_type: list[FunnelRow] = field(default_factory=list)
    by_region: list[FunnelRow] = field(default_factory=list)
    acceptance_seconds: list[float] = field(default_factory=list)

    def acceptance_summary(self) -> dict[str, float | int]:
        """Count, median, 90th percentile and maximum of the time to acceptance, in seconds."""
        values = sorted(self.acceptance_seconds)
        if not values:
            return {"needs": 0}
        p90 = values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
        return {"needs": len(values), "median_s": round(statistics.median(values), 3), "p90_s": round(p90, 3),
                "max_s": round(values[-1], 3)}


class FunnelBuilder:
    """Collects referral events (:meth:`add`) and gives the figures (:meth:`figures`)."""

    def __init__(self) -> None:
        self._offers: dict[str, _Offer] = {}
        self._accepted: dict[str, int] = {}
        self._completed: set[str] = set()

    def add(self, message: Message) -> None:
        """Take one decoded event; anything but offers, acceptances and completions is ignored."""
        if isinstance(message, referral_events.HandoffOffered):
            need = (message.referral_id, message.need_index)
            self._offers[message.handoff_id] = _Offer(
                need, _word(vocab.ServiceType, message.service_type, "SERVICE_TYPE_"),
                _word(vocab.Region, message.region, "REGION_"), message.offered_at_unix_micros)
        elif isinstance(message, referral_events.HandoffAccepted):
            self._accepted[message.handoff_id] = message.accepted_at_unix_micros
        elif isinstance(message, referral_events.ServiceCompleted):
            self._completed.add(message.handoff_id)

    def add_all(self, messages: Iterable[Message]) -> FunnelBuilder:
        """:meth:`add` each message; returns self."""
        for message in messages:
            self.add(message)
        return self

    def figures(self) -> FunnelFigures:
        """The funnel rows (sorted by label) and the acceptance times (sorted)."""
        first_offer: dict[Need, _Offer] = {}
        offers_per_need: Counter[Need] = Counter()
        for offer in self._offers.values():
            offers_per_need[offer.need] += 1
            known = first_offer.get(offer.need)
            if known is None or offer.offered_at_us < known.offered_at_us:
                first_offer[offer.need] = offer
        accepted_at: dict[Need, int] = {}
        completed: set[Need] = set()
        for handoff_id, at_us in self._accepted.items():
            if (accepted := self._offers.get(handoff_id)) is not None:
                accepted_at[accepted.need] = min(at_us, accepted_at.get(accepted.need, at_us))
        for handoff_id in self._completed:
            if (done := self._offers.get(handoff_id)) is not None:
                completed.add(done.need)
        by_type: dict[str, FunnelRow] = {}
        by_region: dict[str, FunnelRow] = {}
        for need, offer in first_offer.items():
            for rows, label in ((by_type, offer.service_type), (by_region, offer.region)):
                row = rows.setdefault(label, FunnelRow(label))
                row.offered += 1
                row.offers += offers_per_need[need]
                row.accepted += need in accepted_at
                row.completed += need in completed
        seconds = sorted(max(0, accepted_at[need] - first_offer[need].offered_at_us) / 1e6 for need in accepted_at
                         if need in first_offer)
        return FunnelFigures(sorted(by_type.values(), key=lambda row: row.label),
                             sorted(by_region.values(), key=lambda row: row.label), seconds)


def _word(enum: object, value: int, prefix: str) -> str:
    """The lower-case word of an enum value (``legal_aid``), or ``unknown_<n>`` for a number it does not name."""
    try:
        name: str = enum.Name(value)  # type: ignore[attr-defined]
    except ValueError:
        return f"unknown_{value}"
    return name.removeprefix(prefix).lower()
