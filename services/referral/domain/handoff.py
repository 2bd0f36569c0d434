"""A handoff: one offer of one need to one provider, and the lifecycle it follows (like FHIR Task).

    offered -> accepted | declined | expired | withdrawn
    accepted -> in_service | withdrawn
    in_service -> completed | withdrawn

Declined, expired, withdrawn and completed are final. Any other move raises FailedPrecondition, in
Spanish and English, naming the move and the state the handoff is in (e.g. accepting an expired offer).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.core.application.errors import FailedPrecondition


class HandoffState(StrEnum):
    """Where a handoff is in its lifecycle (stored as this text)."""

    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    IN_SERVICE = "in_service"
    COMPLETED = "completed"


LEGAL_MOVES: dict[HandoffState, frozenset[HandoffState]] = {
    HandoffState.OFFERED: frozenset({HandoffState.ACCEPTED, HandoffState.DECLINED, HandoffState.EXPIRED,
                                     HandoffState.WITHDRAWN}),
    HandoffState.ACCEPTED: frozenset({HandoffState.IN_SERVICE, HandoffState.WITHDRAWN}),
    HandoffState.IN_SERVICE: frozenset({HandoffState.COMPLETED, HandoffState.WITHDRAWN}),
    HandoffState.DECLINED: frozenset(),
    HandoffState.EXPIRED: frozenset(),
    HandoffState.WITHDRAWN: frozenset(),
    HandoffState.COMPLETED: frozenset(),
}
"""The states each state may move to; the final states move nowhere."""

ACTIVE_STATES = frozenset({HandoffState.OFFERED, HandoffState.ACCEPTED, HandoffState.IN_SERVICE})
"""A need has at most one handoff in these states at a time."""

_STATE_WORDS: dict[HandoffState, tuple[str, str]] = {
    HandoffState.OFFERED: ("ofrecida", "offered"),
    HandoffState.ACCEPTED: ("aceptada", "accepted"),
    HandoffState.DECLINED: ("rechazada", "declined"),
    HandoffState.EXPIRED: ("vencida", "expired"),
    HandoffState.WITHDRAWN: ("retirada", "withdrawn"),
    HandoffState.IN_SERVICE: ("en servicio", "in service"),
    HandoffState.COMPLETED: ("completada", "completed"),
}

_MOVE_WORDS: dict[HandoffState, tuple[str, str]] = {
    HandoffState.OFFERED: ("ofrecer", "offer"),
    HandoffState.ACCEPTED: ("aceptar", "accept"),
    HandoffState.DECLINED: ("rechazar", "decline"),
    HandoffState.EXPIRED: ("dar por vencida", "expire"),
    HandoffState.WITHDRAWN: ("retirar", "withdraw"),
    HandoffState.IN_SERVICE: ("iniciar el servicio de", "start the service of"),
    HandoffState.COMPLETED: ("completar", "complete"),
}


def illegal_move(current: HandoffState, target: HandoffState) -> FailedPrecondition:
    """The error for moving a handoff in ``current`` to ``target``: names both, in es and en."""
    state_es, state_en = _STATE_WORDS[current]
    move_es, move_en = _MOVE_WORDS[target]
    return FailedPrecondition(
        es=f"No se puede {move_es} una derivación en estado «{state_es}».",
        en=f"Cannot {move_en} a handoff that is {state_en}.",
    )


def move(current: HandoffState, target: HandoffState) -> HandoffState:
    """``target`` when the lifecycle allows ``current -> target``; FailedPrecondition otherwise."""
    if target not in LEGAL_MOVES[current]:
        raise illegal_move(current, target)
    return target


@dataclass
class Handoff:
    """One offer of a need to a provider, with where it is now and how it ended (enum numbers of the API).

    Times are Unix microseconds. ``consent_id`` is the consent that covered sharing the routing facts with
    the provider when it was offered; ``attempt`` counts the providers offered this need (1 = the first).
    """

    handoff_id: str
    need_index: int
    provider_org: str
    consent_id: str
    attempt: int
    offered_at: int
    expires_at: int
    state: HandoffState = HandoffState.OFFERED
    updated_at: int = 0
    decline_reason: int = 0
    outcome: int = 0
    withdraw_reason: int = 0
    note: str = ""

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.offered_at

    @property
    def active(self) -> bool:
        """Offered, accepted or in service: the need is in this handoff's hands."""
        return self.state in ACTIVE_STATES

    def is_due(self, now: int) -> bool:
        """An offer whose deadline has passed (it can no longer be accepted)."""
        return self.state is HandoffState.OFFERED and now >= self.expires_at

    def accept(self, now: int) -> None:
        """Offered -> accepted, only before the deadline (an offer past it counts as expired)."""
        if self.is_due(now):
            raise illegal_move(HandoffState.EXPIRED, HandoffState.ACCEPTED)
        self._move(HandoffState.ACCEPTED, now)

    def decline(self, reason: int, note: str, now: int) -> None:
        """Offered -> declined, with the reason (a DeclineReason) and an optional note."""
        self._move(HandoffState.DECLINED, now)
        self.decline_reason, self.note = reason, note

    def expire(self, now: int) -> None:
        """Offered -> expired (its deadline passed unanswered)."""
        self._move(HandoffState.EXPIRED, now)

    def withdraw(self, reason: int, note: str, now: int) -> None:
        """Offered, accepted or in service -> withdrawn, with the reason (a WithdrawReason)."""
        self._move(HandoffState.WITHDRAWN, now)
        self.withdraw_reason, self.note = reason, note

    def start(self, now: int) -> None:
        """Accepted -> in service."""
        self._move(HandoffState.IN_SERVICE, now)

    def complete(self, outcome: int, note: str, now: int) -> None:
        """In service -> completed, with the outcome (a ServiceOutcome)."""
        self._move(HandoffState.COMPLETED, now)
        self.outcome, self.note = outcome, note

    def _move(self, target: HandoffState, now: int) -> None:
        self.state = move(self.state, target)
        self.updated_at = now
