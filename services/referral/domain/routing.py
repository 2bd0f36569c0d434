"""Routing: which providers may be offered a need, best first (docs/adr/0011, "Routing").

A provider is a candidate for a need when it offers the service type, serves the person's age group
(``minors`` or ``all`` for a minor, ``adults`` or ``all`` otherwise), is covered by a consent of the
subject at that instant (naming its org or its role, for PURPOSE_SERVICE_DELIVERY and
DATA_CATEGORY_ROUTING, neither expired nor revoked), was not offered this need already, and has
capacity (none published counts as available; 0 does not).

Candidates are ranked by ring (serving the referral's department, then a neighbouring department, then
any other), then by most places published (a provider that published none ranks after those that did),
then by org id, so the order is total and the same on every run.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import Region, ServiceType
from services.core.generated.referralnet.consent.v1.consent_pb2 import (
    DATA_CATEGORY_ROUTING,
    PURPOSE_SERVICE_DELIVERY,
    DataCategory,
    Purpose,
)
from services.core.identity.records import Organisation
from services.referral.domain.adjacency import neighbours


class Ring(IntEnum):
    """How near a provider is to the referral's department (lower is nearer)."""

    SAME_REGION = 0
    NEIGHBOUR = 1
    ELSEWHERE = 2


@dataclass(frozen=True)
class ConsentFact:
    """What the referral service knows of one consent of a subject (the routing facts of intake's events).

    The recipient is an org (``recipient_org``) or every org of a role (``recipient_role``, an OrgRole
    number; 0 when the consent names an org). Times are Unix microseconds.
    """

    consent_id: str
    subject_id: str
    recipient_org: str
    recipient_role: int
    purposes: frozenset[int]
    categories: frozenset[int]
    expires_at: int
    revoked_at: int | None = None

    def in_force(self, at: int) -> bool:
        """Neither expired nor revoked at ``at``."""
        return at < self.expires_at and (self.revoked_at is None or at < self.revoked_at)

    def names(self, org: Organisation) -> bool:
        """Whether the consent's recipient is ``org``, by id or by role."""
        if self.recipient_org:
            return self.recipient_org == org.org_id
        return self.recipient_role != 0 and self.recipient_role == org.role

    def covers(self, org: Organisation, purpose: Purpose, category: DataCategory, at: int) -> bool:
        """Whether sharing ``category`` data with ``org`` for ``purpose`` at ``at`` is consented to."""
        return (self.in_force(at) and self.names(org) and purpose in self.purposes
                and category in self.categories)


def covering_consent(org: Organisation, consents: Iterable[ConsentFact], at: int) -> ConsentFact | None:
    """The consent that covers offering routing facts to ``org`` at ``at``, or None.

    When several do, one naming the org itself is preferred to one naming its role, then the one that
    lasts longest, then the lowest consent id (so the choice is the same on every run).
    """
    covering = [consent for consent in consents
                if consent.covers(org, PURPOSE_SERVICE_DELIVERY, DATA_CATEGORY_ROUTING, at)]
    if not covering:
        return None
    return min(covering, key=lambda consent: (not consent.recipient_org, -consent.expires_at, consent.consent_id))


@dataclass(frozen=True)
class Candidate:
    """A provider that may be offered the need: the consent that covers it, its ring and its places."""

    org_id: str
    consent_id: str
    ring: Ring
    places: int | None


def ring_of(org: Organisation, region: Region) -> Ring:
    """The nearest ring any of the org's regions puts it in."""
    if region in org.regions:
        return Ring.SAME_REGION
    if neighbours(region) & set(org.regions):
        return Ring.NEIGHBOUR
    return Ring.ELSEWHERE


def serves_age_group(org: Organisation, minor: bool) -> bool:
    """Whether the org serves minors (``minors``/``all``) or adults (``adults``/``all``) as needed."""
    return org.age_group in ("all", "minors" if minor else "adults")


def rank_candidates(organisations: Iterable[Organisation], *, service_type: ServiceType, region: Region,
                    minor: bool, consents: Iterable[ConsentFact], capacity: Mapping[str, int],
                    already_offered: Collection[str], at: int) -> list[Candidate]:
    """Every provider the need may be offered to at ``at``, best first.

    ``capacity`` maps org id -> places published for this service type (absent: none published);
    ``already_offered`` holds the orgs this need was offered to before.
    """
    consents = list(consents)
    found = []
    for org in organisations:
        if (service_type not in org.services or not serves_age_group(org, minor)
                or org.org_id in already_offered or capacity.get(org.org_id, 1) <= 0):
            continue
        consent = covering_consent(org, consents, at)
        if consent is None:
            continue
        found.append(Candidate(org.org_id, consent.consent_id, ring_of(org, region), capacity.get(org.org_id)))
    return sorted(found, key=lambda candidate: (candidate.ring, -(candidate.places or 0), candidate.org_id))
