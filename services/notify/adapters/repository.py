"""Reading and writing the notify service's tables within the caller's session (its unit of work).

Three groups of queries: the consents and handoffs notify projects from intake's and referral's events,
the deliveries (added at most once per notice key, channel and endpoint; claimed under a lease; their
outcome recorded only by the lease's holder) and the delivery log an organisation lists.

The guarded writes (``take_reminder``, ``claim``, ``record``) are single ``UPDATE ... WHERE`` statements
whose row count says whether this transaction won: on PostgreSQL a concurrent UPDATE of the same row waits
for the other transaction and then re-checks its WHERE clause, on SQLite writers take turns; either way only
one of two dispatchers gets a row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.notify.adapters.tables import deliveries, delivery_attempts, notify_consents, notify_handoffs


class HandoffState(StrEnum):
    """A projected handoff's state, as referral's events said last."""

    OFFERED = "offered"
    ACCEPTED = "accepted"
    IN_SERVICE = "in_service"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    WITHDRAWN_CONSENT = "consent_revoked"  # withdrawn by referral because a consent was revoked
    COMPLETED = "completed"


ACTIVE_STATES = (HandoffState.OFFERED, HandoffState.ACCEPTED, HandoffState.IN_SERVICE)
"""The states in which a provider holds a handoff (ADR 14: offered, accepted, in service)."""


class DeliveryStatus(StrEnum):
    """Where a delivery is (the API's DeliveryStatus)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class ConsentRecipient:
    """Whom a consent named: an organisation, or (``org_id`` empty) every organisation of a role."""

    org_id: str
    role: int


@dataclass(frozen=True)
class ProjectedHandoff:
    """What notify knows of a handoff: its routing facts, state, deadline and pending reminder."""

    handoff_id: str
    referral_id: str
    subject_id: str
    provider_org: str
    service_type: int
    region: int
    state: HandoffState
    offer_event_id: str
    offered_at_us: int
    expires_at_us: int
    remind_at_us: int | None
    sequence: int
    updated_at_us: int


@dataclass(frozen=True)
class Delivery:
    """One notice to one endpoint of one organisation, with the facts the notice is built from."""

    delivery_id: str
    notice_key: str
    channel: int
    endpoint: str
    org_id: str
    notice_id: str
    language: str
    notice_type: int
    event_id: str
    reference: str
    referral_id: str
    service_type: int
    region: int
    deadline_us: int
    occurred_at_us: int
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    next_attempt_at_us: int = 0
    lease_owner: str = ""
    lease_until_us: int = 0
    last_outcome: str = ""
    created_at_us: int = 0
    updated_at_us: int = 0
    delivered_at_us: int = 0


@dataclass(frozen=True)
class Attempt:
    """One try at a delivery and its outcome (``delivered``, ``http_503``, ``connection_refused``...)."""

    attempt: int
    attempted_at_us: int
    outcome: str


_DELIVERY_FIELDS = tuple(column.name for column in deliveries.columns)
_HANDOFF_FIELDS = tuple(column.name for column in notify_handoffs.columns)

_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _delivery(row: Any) -> Delivery:  # noqa: ANN401 -- a SQLAlchemy Row
    values = {name: getattr(row, name) for name in _DELIVERY_FIELDS}
    values["status"] = DeliveryStatus(values["status"])
    return Delivery(**values)


def _handoff(row: Any) -> ProjectedHandoff:  # noqa: ANN401 -- a SQLAlchemy Row
    values = {name: getattr(row, name) for name in _HANDOFF_FIELDS}
    values["state"] = HandoffState(values["state"])
    return ProjectedHandoff(**values)


def _changed(result: Any) -> bool:  # noqa: ANN401 -- a CursorResult
    return bool(result.rowcount == 1)


class NotifyRepository:
    """The notify service's tables, read and written in one session (the caller commits)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- consents --

    def add_consent(self, consent_id: str, subject_id: str, recipient: ConsentRecipient) -> bool:
        """Record whom a consent named; False (nothing written) when it is known already."""
        return self._insert_new(notify_consents, {
            "consent_id": consent_id, "subject_id": subject_id, "recipient_org": recipient.org_id,
            "recipient_role": recipient.role, "revoked_at_us": None})

    def revoke_consent(self, consent_id: str, revoked_at: int) -> ConsentRecipient | None:
        """Mark a consent revoked; whom it named, or None when it is unknown or was revoked already."""
        result = self.session.execute(
            sa.update(notify_consents)
            .where(notify_consents.c.consent_id == consent_id, notify_consents.c.revoked_at_us.is_(None))
            .values(revoked_at_us=revoked_at))
        if not _changed(result):
            return None
        row = self.session.execute(sa.select(notify_consents.c.recipient_org, notify_consents.c.recipient_role)
                                   .where(notify_consents.c.consent_id == consent_id)).one()
        return ConsentRecipient(row.recipient_org, row.recipient_role)

    # -- handoffs --

    def handoff(self, handoff_id: str) -> ProjectedHandoff | None:
        """The projected handoff, or None."""
        row = self.session.execute(sa.select(notify_handoffs).where(notify_handoffs.c.handoff_id == handoff_id)
                                   ).first()
        return None if row is None else _handoff(row)

    def add_handoff(self, handoff: ProjectedHandoff) -> bool:
        """Project an offered handoff; False (nothing written) when it is known already."""
        values = {name: getattr(handoff, name) for name in _HANDOFF_FIELDS}
        values["state"] = str(handoff.state)
        return self._insert_new(notify_handoffs, values)

    def move_handoff(self, handoff_id: str, state: HandoffState, sequence: int, at: int) -> bool:
        """Set a handoff's state (cancelling its reminder) if ``sequence`` is newer than the last one applied."""
        result = self.session.execute(
            sa.update(notify_handoffs)
            .where(notify_handoffs.c.handoff_id == handoff_id, notify_handoffs.c.sequence < sequence)
            .values(state=str(state), sequence=sequence, updated_at_us=at, remind_at_us=None))
        return _changed(result)

    def handoffs_of_subject(self, subject_id: str, states: Iterable[HandoffState]) -> list[ProjectedHandoff]:
        """A subject's handoffs in ``states``, oldest offer first."""
        query = (sa.select(notify_handoffs)
                 .where(notify_handoffs.c.subject_id == subject_id,
                        notify_handoffs.c.state.in_([str(state) for state in states]))
                 .order_by(notify_handoffs.c.offered_at_us, notify_handoffs.c.handoff_id))
        return [_handoff(row) for row in self.session.execute(query)]

    def due_reminders(self, now: int, limit: int) -> list[ProjectedHandoff]:
        """Up to ``limit`` handoffs whose reminder time has come, earliest first."""
        query = (sa.select(notify_handoffs)
                 .where(notify_handoffs.c.remind_at_us.is_not(None), notify_handoffs.c.remind_at_us <= now)
                 .order_by(notify_handoffs.c.remind_at_us, notify_handoffs.c.handoff_id).limit(limit))
        return [_handoff(row) for row in self.session.execute(query)]

    def take_reminder(self, handoff_id: str) -> bool:
        """Clear a handoff's pending reminder; True only for the one transaction that cleared it."""
        result = self.session.execute(
            sa.update(notify_handoffs)
            .where(notify_handoffs.c.handoff_id == handoff_id, notify_handoffs.c.remind_at_us.is_not(None))
            .values(remind_at_us=None))
        return _changed(result)

    # -- deliveries --

    def add_delivery(self, delivery: Delivery) -> bool:
        """Insert a delivery unless one exists for its (notice key, channel, endpoint); True if inserted."""
        values = {name: getattr(delivery, name) for name in _DELIVERY_FIELDS}
        values["status"] = str(delivery.status)
        return self._insert_new(deliveries, values, [deliveries.c.notice_key, deliveries.c.channel,
                                                     deliveries.c.endpoint])

    def _insert_new(self, table: sa.Table, values: dict[str, Any],
                    unique: Sequence[sa.Column[Any]] | None = None) -> bool:
        """INSERT ... ON CONFLICT (``unique``, else the primary key) DO NOTHING; True if the row is new.

        A concurrent transaction inserting the same key makes PostgreSQL wait for its outcome, so two workers
        applying one event never both insert, and neither fails. RETURNING, not rowcount: psycopg 3 reports
        rowcount -1 for this statement under the ORM.
        """
        dialect = self.session.get_bind().dialect.name
        insert = _INSERTS.get(dialect)
        if insert is None:
            msg = f"INSERT ... ON CONFLICT DO NOTHING is needed: SQLite and PostgreSQL only, not {dialect}"
            raise ValueError(msg)
        elements = list(unique) if unique is not None else list(table.primary_key.columns)
        statement = insert(table).values(values).on_conflict_do_nothing(index_elements=elements)
        return self.session.execute(statement.returning(elements[0])).first() is not None

    def delivery(self, delivery_id: str) -> Delivery | None:
        """One delivery, or None."""
        row = self.session.execute(sa.select(deliveries).where(deliveries.c.delivery_id == delivery_id)).first()
        return None if row is None else _delivery(row)

    def claim(self, now: int, owner: str, lease_until: int, limit: int) -> list[Delivery]:
        """Lease up to ``limit`` due, pending, unleased (or lease lapsed) deliveries to ``owner``.

        Candidates are read first, then each is taken with an UPDATE that repeats every condition: a row
        another dispatcher took meanwhile is not changed here (row count 0) and is left out. On PostgreSQL the
        candidates are read ``FOR UPDATE SKIP LOCKED``, so a dispatcher claiming at the same moment as another
        gets the next due rows rather than waiting for, and then losing, the same ones (SQLite has no row
        locks: its writers take turns).
        """
        due = (deliveries.c.status == str(DeliveryStatus.PENDING), deliveries.c.next_attempt_at_us <= now,
               deliveries.c.lease_until_us <= now)
        candidates = self.session.execute(
            sa.select(deliveries.c.delivery_id).where(*due)
            .order_by(deliveries.c.next_attempt_at_us, deliveries.c.delivery_id).limit(limit)
            .with_for_update(skip_locked=True)).scalars().all()
        claimed = []
        for delivery_id in candidates:
            result = self.session.execute(sa.update(deliveries).where(deliveries.c.delivery_id == delivery_id, *due)
                                          .values(lease_owner=owner, lease_until_us=lease_until))
            if _changed(result):
                claimed.append(delivery_id)
        if not claimed:
            return []
        rows = self.session.execute(sa.select(deliveries).where(deliveries.c.delivery_id.in_(claimed))
                                    .order_by(deliveries.c.next_attempt_at_us, deliveries.c.delivery_id))
        return [_delivery(row) for row in rows]

    def record(self, delivery: Delivery, owner: str, *, at: int, outcome: str, status: DeliveryStatus,
               next_attempt_at: int) -> bool:
        """Record attempt ``delivery.attempts + 1`` and its outcome, releasing the lease.

        Only while ``owner`` still holds the lease on the pending row: False (nothing written) when the lease
        lapsed and another dispatcher took the delivery, whose record then counts.
        """
        attempt = delivery.attempts + 1
        result = self.session.execute(
            sa.update(deliveries)
            .where(deliveries.c.delivery_id == delivery.delivery_id, deliveries.c.lease_owner == owner,
                   deliveries.c.status == str(DeliveryStatus.PENDING), deliveries.c.attempts == delivery.attempts)
            .values(status=str(status), attempts=attempt, next_attempt_at_us=next_attempt_at, lease_owner="",
                    lease_until_us=0, last_outcome=outcome, updated_at_us=at,
                    delivered_at_us=at if status == DeliveryStatus.DELIVERED else 0))
        if not _changed(result):
            return False
        self.session.execute(sa.insert(delivery_attempts).values(
            delivery_id=delivery.delivery_id, attempt=attempt, attempted_at_us=at, outcome=outcome))
        return True

    # -- the delivery log --

    def deliveries_of(self, org_id: str, *, statuses: Sequence[DeliveryStatus] = (), event_id: str = "",
                      after: tuple[int, str] | None = None, limit: int = 100) -> list[Delivery]:
        """An organisation's deliveries, newest first, optionally filtered and after a page position."""
        query = sa.select(deliveries).where(deliveries.c.org_id == org_id)
        if statuses:
            query = query.where(deliveries.c.status.in_([str(status) for status in statuses]))
        if event_id:
            query = query.where(deliveries.c.event_id == event_id)
        if after is not None:
            created_at, delivery_id = after
            query = query.where(sa.or_(deliveries.c.created_at_us < created_at,
                                       sa.and_(deliveries.c.created_at_us == created_at,
                                               deliveries.c.delivery_id < delivery_id)))
        query = query.order_by(deliveries.c.created_at_us.desc(), deliveries.c.delivery_id.desc()).limit(limit)
        return [_delivery(row) for row in self.session.execute(query)]

    def attempts_of(self, delivery_ids: Sequence[str]) -> dict[str, list[Attempt]]:
        """Every attempt of each delivery, in order (deliveries never tried are absent)."""
        if not delivery_ids:
            return {}
        query = (sa.select(delivery_attempts).where(delivery_attempts.c.delivery_id.in_(delivery_ids))
                 .order_by(delivery_attempts.c.delivery_id, delivery_attempts.c.attempt))
        found: dict[str, list[Attempt]] = {}
        for row in self.session.execute(query):
            found.setdefault(row.delivery_id, []).append(Attempt(row.attempt, row.attempted_at_us, row.outcome))
        return found
