"""The Referral aggregate: a referral's needs, every handoff made for them, and the events that record it.

Each command checks the lifecycle (``handoff.py``), changes the state and records the event that says so
(a message of proto/referralnet/referral/v1/events.proto) in ``pending``; the application appends
``pending`` to the referral's stream in the same transaction as the new state. A need whose offer was
declined, expired or withdrawn because consent was revoked becomes ``UNROUTED``: the application routes
it (a new offer, or an escalation) before the transaction ends, so that state is never stored. The
referral closes when every need is completed or withdrawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from google.protobuf.message import Message

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import (
    ExploitationType,
    Region,
    ServiceType,
    Urgency,
)
from services.core.generated.referralnet.referral.v1 import events_pb2 as ev
from services.core.generated.referralnet.referral.v1.referral_pb2 import (
    WITHDRAW_REASON_CONSENT_REVOKED,
    DeclineReason,
    ServiceOutcome,
    WithdrawReason,
)
from services.referral.domain.handoff import Handoff


class NeedState(StrEnum):
    """Where one need of a referral is (stored as this text)."""

    UNROUTED = "unrouted"  # between a decline/expiry/revocation and the next routing, in one transaction
    OFFERED = "offered"
    ACCEPTED = "accepted"
    IN_SERVICE = "in_service"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"
    ESCALATED = "escalated"


RESOLVED_NEED_STATES = frozenset({NeedState.COMPLETED, NeedState.WITHDRAWN})


@dataclass
class Need:
    """One service the person needs, how urgently, and where it stands."""

    index: int
    service_type: ServiceType
    urgency: Urgency
    state: NeedState = NeedState.UNROUTED
    updated_at: int = 0


@dataclass
class Referral:
    """A referral as the referral service tracks it; ``version`` is its stream's version when loaded."""

    referral_id: str
    subject_id: str
    referrer_org: str
    region: Region
    minor: bool
    exploitation_type: ExploitationType
    submitted_at: int
    submission_event_id: str
    needs: list[Need]
    handoffs: list[Handoff] = field(default_factory=list)
    closed_at: int | None = None
    version: int = 0
    pending: list[Message] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def open(cls, *, referral_id: str, subject_id: str, referrer_org: str,
             needs: Sequence[tuple[ServiceType, Urgency]], region: Region, minor: bool,
             exploitation_type: ExploitationType, submitted_at: int, submission_event_id: str,
             now: int) -> Referral:
        """A new referral with every need unrouted, and its ReferralOpened event pending."""
        referral = cls(referral_id=referral_id, subject_id=subject_id, referrer_org=referrer_org, region=region,
                       minor=minor, exploitation_type=exploitation_type, submitted_at=submitted_at,
                       submission_event_id=submission_event_id,
                       needs=[Need(index, service, urgency, NeedState.UNROUTED, now)
                              for index, (service, urgency) in enumerate(needs)])
        referral.pending.append(ev.ReferralOpened(
            referral_id=referral_id, subject_id=subject_id, referrer_org=referrer_org,
            needs=[ev.ReferralNeed(service_type=need.service_type, urgency=need.urgency) for need in referral.needs],
            region=region, minor=minor, exploitation_type=exploitation_type, submitted_at_unix_micros=submitted_at,
            submission_event_id=submission_event_id))
        return referral

    # -- queries --

    @property
    def closed(self) -> bool:
        """Every need was completed or withdrawn."""
        return self.closed_at is not None

    def handoff(self, handoff_id: str) -> Handoff:
        """The handoff with this id; KeyError when this referral has none."""
        for handoff in self.handoffs:
            if handoff.handoff_id == handoff_id:
                return handoff
        raise KeyError(handoff_id)

    def handoffs_of(self, need_index: int) -> list[Handoff]:
        """The handoffs made for one need, oldest first."""
        return [handoff for handoff in self.handoffs if handoff.need_index == need_index]

    def offered_orgs(self, need_index: int) -> frozenset[str]:
        """Every provider this need was offered to already (whatever became of the offer)."""
        return frozenset(handoff.provider_org for handoff in self.handoffs_of(need_index))

    def unrouted(self) -> list[Need]:
        """The needs waiting for a new offer or an escalation."""
        return [need for need in self.needs if need.state is NeedState.UNROUTED]

    def due_offers(self, now: int) -> list[Handoff]:
        """Offers whose deadline has passed."""
        return [handoff for handoff in self.handoffs if handoff.is_due(now)]

    # -- routing --

    def offer(self, need_index: int, *, handoff_id: str, provider_org: str, consent_id: str, now: int,
              expires_at: int) -> Handoff:
        """Offer an unrouted (or escalated) need to ``provider_org``: HandoffOffered."""
        need = self.needs[need_index]
        if need.state not in (NeedState.UNROUTED, NeedState.ESCALATED):
            msg = f"need {need_index} of {self.referral_id} is {need.state}, not waiting for an offer"
            raise ValueError(msg)
        handoff = Handoff(handoff_id=handoff_id, need_index=need_index, provider_org=provider_org,
                          consent_id=consent_id, attempt=len(self.handoffs_of(need_index)) + 1, offered_at=now,
                          expires_at=expires_at)
        self.handoffs.append(handoff)
        self._need_is(need, NeedState.OFFERED, now)
        self.pending.append(ev.HandoffOffered(
            handoff_id=handoff_id, referral_id=self.referral_id, subject_id=self.subject_id, need_index=need_index,
            service_type=need.service_type, urgency=need.urgency, region=self.region, minor=self.minor,
            provider_org=provider_org, offered_at_unix_micros=now, expires_at_unix_micros=expires_at,
            consent_id=consent_id, attempt=handoff.attempt))
        return handoff

    def escalate(self, need_index: int, now: int) -> None:
        """No provider is left for an unrouted need: ReferralEscalated, for the coordinators."""
        need = self.needs[need_index]
        if need.state is not NeedState.UNROUTED:
            msg = f"need {need_index} of {self.referral_id} is {need.state}, not unrouted"
            raise ValueError(msg)
        self._need_is(need, NeedState.ESCALATED, now)
        self.pending.append(ev.ReferralEscalated(
            referral_id=self.referral_id, subject_id=self.subject_id, need_index=need_index,
            service_type=need.service_type, region=self.region, minor=self.minor, escalated_at_unix_micros=now))

    # -- the provider's and the referrer's moves --

    def accept(self, handoff_id: str, now: int) -> Handoff:
        """The provider accepts an offer before its deadline: HandoffAccepted."""
        handoff = self.handoff(handoff_id)
        handoff.accept(now)
        self._need_is(self.needs[handoff.need_index], NeedState.ACCEPTED, now)
        self.pending.append(ev.HandoffAccepted(**self._ids(handoff), accepted_at_unix_micros=now))
        return handoff

    def decline(self, handoff_id: str, reason: DeclineReason, note: str, now: int) -> Handoff:
        """The provider declines an offer: HandoffDeclined; the need waits for the next provider."""
        handoff = self.handoff(handoff_id)
        handoff.decline(reason, note, now)
        self._need_is(self.needs[handoff.need_index], NeedState.UNROUTED, now)
        self.pending.append(ev.HandoffDeclined(**self._ids(handoff), reason=reason, note=note,
                                               declined_at_unix_micros=now))
        return handoff

    def expire(self, handoff_id: str, now: int) -> Handoff:
        """An offer reached its deadline unanswered: HandoffExpired; the need waits for the next provider."""
        handoff = self.handoff(handoff_id)
        handoff.expire(now)
        self._need_is(self.needs[handoff.need_index], NeedState.UNROUTED, now)
        self.pending.append(ev.HandoffExpired(**self._ids(handoff), expired_at_unix_micros=now))
        return handoff

    def withdraw(self, handoff_id: str, reason: WithdrawReason, note: str, by_org: str, now: int) -> Handoff:
        """Withdraw a handoff: HandoffWithdrawn. Its need is resolved as withdrawn, unless consent was revoked
        (then the need waits for a provider the remaining consent covers), and the referral may close."""
        handoff = self.handoff(handoff_id)
        handoff.withdraw(reason, note, now)
        revoked = reason == WITHDRAW_REASON_CONSENT_REVOKED
        self._need_is(self.needs[handoff.need_index], NeedState.UNROUTED if revoked else NeedState.WITHDRAWN, now)
        self.pending.append(ev.HandoffWithdrawn(**self._ids(handoff), reason=reason, note=note,
                                                withdrawn_by_org=by_org, withdrawn_at_unix_micros=now))
        self._close_if_resolved(now)
        return handoff

    def start(self, handoff_id: str, now: int) -> Handoff:
        """The service of an accepted handoff starts: ServiceStarted."""
        handoff = self.handoff(handoff_id)
        handoff.start(now)
        self._need_is(self.needs[handoff.need_index], NeedState.IN_SERVICE, now)
        self.pending.append(ev.ServiceStarted(**self._ids(handoff), started_at_unix_micros=now))
        return handoff

    def complete(self, handoff_id: str, outcome: ServiceOutcome, note: str, now: int) -> Handoff:
        """The service ended with ``outcome``: ServiceCompleted; the referral may close."""
        handoff = self.handoff(handoff_id)
        handoff.complete(outcome, note, now)
        self._need_is(self.needs[handoff.need_index], NeedState.COMPLETED, now)
        self.pending.append(ev.ServiceCompleted(**self._ids(handoff), outcome=outcome, note=note,
                                                completed_at_unix_micros=now))
        self._close_if_resolved(now)
        return handoff

    # -- internals --

    def _close_if_resolved(self, now: int) -> None:
        if self.closed or not all(need.state in RESOLVED_NEED_STATES for need in self.needs):
            return
        self.closed_at = now
        self.pending.append(ev.ReferralClosed(referral_id=self.referral_id, subject_id=self.subject_id,
                                              closed_at_unix_micros=now))

    @staticmethod
    def _need_is(need: Need, state: NeedState, now: int) -> None:
        need.state, need.updated_at = state, now

    def _ids(self, handoff: Handoff) -> dict[str, str]:
        return {"handoff_id": handoff.handoff_id, "referral_id": self.referral_id, "subject_id": self.subject_id,
                "provider_org": handoff.provider_org}

