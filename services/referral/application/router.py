"""Offering needs to providers inside a use case's transaction: the next offer, or an escalation."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from services.core.identity.directory import Directory
from services.referral.adapters.repository import ReferralRepository
from services.referral.domain.deadlines import OfferDeadlines
from services.referral.domain.ids import new_handoff_id
from services.referral.domain.referral import Need, Referral
from services.referral.domain.routing import Candidate, ConsentFact, rank_candidates


class Router:
    """Routes a referral's needs with the directory's providers, the subject's consents and published capacity."""

    def __init__(self, directory: Directory, deadlines: OfferDeadlines,
                 new_id: Callable[[], str] = new_handoff_id) -> None:
        self._directory = directory
        self._deadlines = deadlines
        self._new_id = new_id

    def candidates(self, repository: ReferralRepository, referral: Referral, need: Need, at: int,
                   consents: Sequence[ConsentFact] | None = None) -> list[Candidate]:
        """Every provider the need may be offered to at ``at``, best first (``consents``: the subject's, if
        already read)."""
        if consents is None:
            consents = repository.consents_of(referral.subject_id)
        return rank_candidates(
            self._directory.organisations, service_type=need.service_type, region=referral.region,
            minor=referral.minor, consents=consents, capacity=repository.capacity_for(need.service_type),
            already_offered=referral.offered_orgs(need.index), at=at)

    def route_unrouted(self, repository: ReferralRepository, referral: Referral, now: int) -> None:
        """Offer each unrouted need to its best candidate, or escalate it when there is none."""
        unrouted = referral.unrouted()
        consents = repository.consents_of(referral.subject_id) if unrouted else []
        for need in unrouted:
            ranked = self.candidates(repository, referral, need, now, consents)
            if ranked:
                self.offer(referral, need, ranked[0], now)
            else:
                referral.escalate(need.index, now)

    def offer(self, referral: Referral, need: Need, candidate: Candidate, now: int) -> None:
        """Offer ``need`` to ``candidate``, with the deadline of its service type."""
        referral.offer(need.index, handoff_id=self._new_id(), provider_org=candidate.org_id,
                       consent_id=candidate.consent_id, now=now,
                       expires_at=self._deadlines.expires_at(need.service_type, now))
