"""Reading and writing the referral service's tables within the caller's session (its unit of work).

``ReferralRepository.get`` loads a Referral aggregate and remembers what it loaded; ``save`` writes back only
what changed (new handoffs inserted; changed needs, handoffs and the referral row updated). The other
methods are the queries the use cases need: a provider's inbox, due offers, escalated needs, consents and
capacity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import (
    ExploitationType,
    Region,
    ServiceType,
    Urgency,
)
from services.referral.adapters.tables import capacity, handoffs, needs, referral_consents, referrals
from services.referral.domain.handoff import Handoff, HandoffState
from services.referral.domain.referral import Need, NeedState, Referral
from services.referral.domain.routing import ConsentFact


@dataclass(frozen=True)
class InboxEntry:
    """A handoff with the routing facts of its referral and need, as a provider's inbox lists it."""

    handoff: Handoff
    referral_id: str
    subject_id: str
    service_type: ServiceType
    urgency: Urgency
    region: Region
    minor: bool
    exploitation_type: ExploitationType


@dataclass(frozen=True)
class _Loaded:
    version: int
    closed_at: int | None
    needs: dict[int, Need]
    handoffs: dict[str, Handoff]


def _handoff(row: Any) -> Handoff:  # noqa: ANN401 -- a SQLAlchemy Row
    return Handoff(handoff_id=row.handoff_id, need_index=row.need_index, provider_org=row.provider_org,
                   consent_id=row.consent_id, attempt=row.attempt, offered_at=row.offered_at_us,
                   expires_at=row.expires_at_us, state=HandoffState(row.state), updated_at=row.updated_at_us,
                   decline_reason=row.decline_reason, outcome=row.outcome, withdraw_reason=row.withdraw_reason,
                   note=row.note)


def _handoff_values(referral_id: str, handoff: Handoff) -> dict[str, object]:
    return {"handoff_id": handoff.handoff_id, "referral_id": referral_id, "need_index": handoff.need_index,
            "provider_org": handoff.provider_org, "consent_id": handoff.consent_id, "attempt": handoff.attempt,
            "state": str(handoff.state), "offered_at_us": handoff.offered_at, "expires_at_us": handoff.expires_at,
            "updated_at_us": handoff.updated_at, "decline_reason": handoff.decline_reason,
            "outcome": handoff.outcome, "withdraw_reason": handoff.withdraw_reason, "note": handoff.note}


def _numbers(values: Iterable[int]) -> str:
    return ",".join(str(value) for value in sorted(set(values)))


def _parse_numbers(text: str) -> frozenset[int]:
    return frozenset(int(part) for part in text.split(",") if part)


class ReferralRepository:
    """The referral service's tables, read and written in one session (the caller commits)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._loaded: dict[str, _Loaded] = {}

    # -- the aggregate --

    def get(self, referral_id: str) -> Referral | None:
        """The referral with its needs and handoffs, or None.

        The referral row (and its version) is read first: a change committed while its needs and handoffs are
        read has a later version, so appending with the loaded version fails and the use case retries.
        """
        row = self.session.execute(sa.select(referrals).where(referrals.c.referral_id == referral_id)).first()
        if row is None:
            return None
        need_rows = self.session.execute(
            sa.select(needs).where(needs.c.referral_id == referral_id).order_by(needs.c.need_index))
        loaded_needs = [Need(index=n.need_index, service_type=cast("ServiceType", n.service_type),
                             urgency=cast("Urgency", n.urgency), state=NeedState(n.state), updated_at=n.updated_at_us)
                        for n in need_rows]
        handoff_rows = self.session.execute(
            sa.select(handoffs).where(handoffs.c.referral_id == referral_id)
            .order_by(handoffs.c.offered_at_us, handoffs.c.handoff_id))
        loaded_handoffs = [_handoff(h) for h in handoff_rows]
        referral = Referral(
            referral_id=row.referral_id, subject_id=row.subject_id, referrer_org=row.referrer_org,
            region=cast("Region", row.region), minor=row.minor,
            exploitation_type=cast("ExploitationType", row.exploitation_type), submitted_at=row.submitted_at_us,
            submission_event_id=row.submission_event_id, needs=loaded_needs, handoffs=loaded_handoffs,
            closed_at=row.closed_at_us, version=row.version)
        self._loaded[referral_id] = _Loaded(
            row.version, row.closed_at_us, {n.index: dataclasses.replace(n) for n in loaded_needs},
            {h.handoff_id: dataclasses.replace(h) for h in loaded_handoffs})
        return referral

    def exists(self, referral_id: str) -> bool:
        """Whether the referral was opened already."""
        query = sa.select(referrals.c.referral_id).where(referrals.c.referral_id == referral_id)
        return self.session.execute(query).first() is not None

    def referral_id_of(self, handoff_id: str) -> str | None:
        """The referral a handoff belongs to, or None for an unknown handoff."""
        query = sa.select(handoffs.c.referral_id).where(handoffs.c.handoff_id == handoff_id)
        return self.session.execute(query).scalar_one_or_none()

    def save(self, referral: Referral, version: int) -> None:
        """Write what changed since ``get`` (or all of a new referral), recording stream ``version``."""
        loaded = self._loaded.get(referral.referral_id)
        if loaded is None:
            self._insert(referral, version)
        else:
            self._update(referral, loaded, version)
        self._loaded[referral.referral_id] = _Loaded(
            version, referral.closed_at, {n.index: dataclasses.replace(n) for n in referral.needs},
            {h.handoff_id: dataclasses.replace(h) for h in referral.handoffs})

    def _insert(self, referral: Referral, version: int) -> None:
        self.session.execute(sa.insert(referrals).values(
            referral_id=referral.referral_id, subject_id=referral.subject_id, referrer_org=referral.referrer_org,
            region=referral.region, minor=referral.minor, exploitation_type=referral.exploitation_type,
            submitted_at_us=referral.submitted_at, submission_event_id=referral.submission_event_id,
            closed_at_us=referral.closed_at, version=version))
        self.session.execute(sa.insert(needs), [
            {"referral_id": referral.referral_id, "need_index": need.index, "service_type": need.service_type,
             "urgency": need.urgency, "state": str(need.state), "updated_at_us": need.updated_at}
            for need in referral.needs])
        if referral.handoffs:
            self.session.execute(sa.insert(handoffs),
                                 [_handoff_values(referral.referral_id, h) for h in referral.handoffs])

    def _update(self, referral: Referral, loaded: _Loaded, version: int) -> None:
        result = self.session.execute(
            sa.update(referrals)
            .where(referrals.c.referral_id == referral.referral_id, referrals.c.version == loaded.version)
            .values(closed_at_us=referral.closed_at, version=version))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            msg = f"referral {referral.referral_id} changed under this transaction (expected version {loaded.version})"
            raise RuntimeError(msg)
        for need in referral.needs:
            if loaded.needs.get(need.index) != need:
                self.session.execute(
                    sa.update(needs).where(needs.c.referral_id == referral.referral_id,
                                           needs.c.need_index == need.index)
                    .values(state=str(need.state), updated_at_us=need.updated_at))
        for handoff in referral.handoffs:
            before = loaded.handoffs.get(handoff.handoff_id)
            if before is None:
                self.session.execute(sa.insert(handoffs).values(_handoff_values(referral.referral_id, handoff)))
            elif before != handoff:
                values = _handoff_values(referral.referral_id, handoff)
                self.session.execute(sa.update(handoffs).where(handoffs.c.handoff_id == handoff.handoff_id)
                                     .values(values))

    # -- queries for the use cases --

    def inbox(self, provider_org: str, states: Sequence[HandoffState], after: tuple[int, str] | None,
              limit: int) -> list[InboxEntry]:
        """A provider's handoffs, newest offer first, optionally in ``states`` and after a page position."""
        query = (sa.select(handoffs, needs.c.service_type, needs.c.urgency, referrals.c.subject_id,
                           referrals.c.region, referrals.c.minor, referrals.c.exploitation_type)
                 .join(needs, sa.and_(needs.c.referral_id == handoffs.c.referral_id,
                                      needs.c.need_index == handoffs.c.need_index))
                 .join(referrals, referrals.c.referral_id == handoffs.c.referral_id)
                 .where(handoffs.c.provider_org == provider_org))
        if states:
            query = query.where(handoffs.c.state.in_([str(state) for state in states]))
        if after is not None:
            offered_at, handoff_id = after
            query = query.where(sa.or_(handoffs.c.offered_at_us < offered_at,
                                       sa.and_(handoffs.c.offered_at_us == offered_at,
                                               handoffs.c.handoff_id < handoff_id)))
        query = query.order_by(handoffs.c.offered_at_us.desc(), handoffs.c.handoff_id.desc()).limit(limit)
        return [InboxEntry(handoff=_handoff(row), referral_id=row.referral_id, subject_id=row.subject_id,
                           service_type=cast("ServiceType", row.service_type), urgency=cast("Urgency", row.urgency),
                           region=cast("Region", row.region), minor=row.minor,
                           exploitation_type=cast("ExploitationType", row.exploitation_type))
                for row in self.session.execute(query)]

    def referrals_with_due_offers(self, now: int, limit: int) -> list[str]:
        """The referrals of up to ``limit`` offers past their deadline at ``now``, most overdue first."""
        query = (sa.select(handoffs.c.referral_id)
                 .where(handoffs.c.state == str(HandoffState.OFFERED), handoffs.c.expires_at_us <= now)
                 .order_by(handoffs.c.expires_at_us, handoffs.c.handoff_id).limit(limit))
        return list(dict.fromkeys(self.session.execute(query).scalars()))

    def escalated_needs(self, service_type: ServiceType, limit: int) -> list[tuple[str, int]]:
        """(referral id, need index) of up to ``limit`` escalated needs of a service type, oldest first."""
        query = (sa.select(needs.c.referral_id, needs.c.need_index)
                 .where(needs.c.state == str(NeedState.ESCALATED), needs.c.service_type == service_type)
                 .order_by(needs.c.updated_at_us, needs.c.referral_id, needs.c.need_index).limit(limit))
        return [(row.referral_id, row.need_index) for row in self.session.execute(query)]

    def open_referrals_of(self, subject_id: str) -> list[str]:
        """The ids of the subject's referrals that are not closed, oldest first."""
        query = (sa.select(referrals.c.referral_id)
                 .where(referrals.c.subject_id == subject_id, referrals.c.closed_at_us.is_(None))
                 .order_by(referrals.c.submitted_at_us, referrals.c.referral_id))
        return list(self.session.execute(query).scalars())

    def offered_under_consent(self, consent_id: str) -> list[tuple[str, str]]:
        """(referral id, handoff id) of the offers still open that a consent covered when they were made."""
        query = (sa.select(handoffs.c.referral_id, handoffs.c.handoff_id)
                 .where(handoffs.c.consent_id == consent_id, handoffs.c.state == str(HandoffState.OFFERED))
                 .order_by(handoffs.c.referral_id, handoffs.c.handoff_id))
        return [(row.referral_id, row.handoff_id) for row in self.session.execute(query)]

    # -- consents --

    def consents_of(self, subject_id: str) -> list[ConsentFact]:
        """Every consent of a subject known here (revoked ones included, with their revocation time)."""
        query = (sa.select(referral_consents).where(referral_consents.c.subject_id == subject_id)
                 .order_by(referral_consents.c.consent_id))
        return [ConsentFact(consent_id=row.consent_id, subject_id=row.subject_id, recipient_org=row.recipient_org,
                            recipient_role=row.recipient_role, purposes=_parse_numbers(row.purposes),
                            categories=_parse_numbers(row.categories), expires_at=row.expires_at_us,
                            revoked_at=row.revoked_at_us)
                for row in self.session.execute(query)]

    def add_consent(self, fact: ConsentFact, *, given_by: int, override: bool, recorded_by_org: str,
                    recorded_at: int) -> bool:
        """Record a consent; False (and nothing written) when it is known already."""
        known = self.session.execute(sa.select(referral_consents.c.consent_id)
                                     .where(referral_consents.c.consent_id == fact.consent_id)).first()
        if known is not None:
            return False
        self.session.execute(sa.insert(referral_consents).values(
            consent_id=fact.consent_id, subject_id=fact.subject_id, recipient_org=fact.recipient_org,
            recipient_role=fact.recipient_role, purposes=_numbers(fact.purposes),
            categories=_numbers(fact.categories), given_by=given_by, override=override,
            recorded_by_org=recorded_by_org, recorded_at_us=recorded_at, expires_at_us=fact.expires_at,
            revoked_at_us=fact.revoked_at, revoked_by_org=None))
        return True

    def revoke_consent(self, consent_id: str, revoked_at: int, revoked_by_org: str) -> bool:
        """Mark a consent revoked from ``revoked_at`` on; False when unknown or revoked already."""
        result = self.session.execute(
            sa.update(referral_consents)
            .where(referral_consents.c.consent_id == consent_id, referral_consents.c.revoked_at_us.is_(None))
            .values(revoked_at_us=revoked_at, revoked_by_org=revoked_by_org))
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    # -- capacity --

    def capacity_for(self, service_type: ServiceType) -> dict[str, int]:
        """org id -> places published for ``service_type`` (orgs that published none are absent)."""
        query = sa.select(capacity.c.org_id, capacity.c.available_places).where(
            capacity.c.service_type == service_type)
        return {row.org_id: row.available_places for row in self.session.execute(query)}

    def set_capacity(self, org_id: str, service_type: ServiceType, places: int, at: int) -> None:
        """Record an org's available places for a service."""
        result = self.session.execute(
            sa.update(capacity).where(capacity.c.org_id == org_id, capacity.c.service_type == service_type)
            .values(available_places=places, updated_at_us=at))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            self.session.execute(sa.insert(capacity).values(org_id=org_id, service_type=service_type,
                                                            available_places=places, updated_at_us=at))
