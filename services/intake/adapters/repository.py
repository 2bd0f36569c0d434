"""Reading and writing intake's tables inside a unit of work (the caller's Session and transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import OrgRole
from services.core.generated.referralnet.consent.v1.consent_pb2 import ConsentGiver, DataCategory, Purpose
from services.intake.adapters.tables import consents, handoffs, referrers, releases, subjects, submissions
from services.intake.domain.authorisation import Subject
from services.intake.domain.consent import Consent, ConsentScope
from services.intake.domain.release import HandoffHeld


@dataclass(frozen=True)
class Submission:
    """An earlier submission under an idempotency key: its fingerprint and the answer it got."""

    fingerprint: bytes
    response: bytes


@dataclass(frozen=True)
class Release:
    """A key release as intake records it (the custody record beside the KeyReleased event)."""

    release_id: str
    subject_id: str
    key_id: str
    category: DataCategory
    purpose: Purpose
    recipient_org: str
    recipient_kem_key_id: str
    consent_id: str
    handoff_id: str
    released_at_micros: int


# -- submissions ---------------------------------------------------------------------------------------------

def load_submission(session: Session, submitter_org: str, idempotency_key: str) -> Submission | None:
    """The submission ``submitter_org`` made under ``idempotency_key``, if any."""
    row = session.execute(sa.select(submissions.c.fingerprint, submissions.c.response).where(
        submissions.c.submitter_org == submitter_org, submissions.c.idempotency_key == idempotency_key)).first()
    return None if row is None else Submission(bytes(row.fingerprint), bytes(row.response))


def insert_submission(session: Session, submitter_org: str, idempotency_key: str, fingerprint: bytes, *,
                      referral_id: str, subject_id: str, submitted_at_micros: int, response: bytes) -> None:
    """Claim the idempotency key; IntegrityError (at once, or once a racing claim commits) if it is taken."""
    session.execute(sa.insert(submissions).values(
        submitter_org=submitter_org, idempotency_key=idempotency_key, fingerprint=fingerprint,
        referral_id=referral_id, subject_id=subject_id, submitted_at_us=submitted_at_micros, response=response))


# -- subjects ------------------------------------------------------------------------------------------------

def load_subject(session: Session, subject_id: str) -> Subject | None:
    """The subject and the organisations that referred it, or None for a subject intake does not know."""
    row = session.execute(sa.select(subjects).where(subjects.c.subject_id == subject_id)).first()
    if row is None:
        return None
    orgs = session.execute(sa.select(referrers.c.org_id).where(referrers.c.subject_id == subject_id)).scalars()
    return Subject(subject_id=row.subject_id, minor=bool(row.minor), created_by_org=row.created_by_org,
                   referrers=frozenset(orgs), erased_at_micros=row.erased_at_us, erased_by_org=row.erased_by_org or "")


def is_erased(session: Session, subject_id: str) -> bool:
    """Whether the subject was erased (False for a subject intake does not know)."""
    erased_at = session.execute(sa.select(subjects.c.erased_at_us).where(subjects.c.subject_id == subject_id)).first()
    return erased_at is not None and erased_at[0] is not None


def insert_subject(session: Session, subject_id: str, *, minor: bool, created_by_org: str,
                   created_at_micros: int) -> None:
    """Register a new subject."""
    session.execute(sa.insert(subjects).values(subject_id=subject_id, minor=minor, created_by_org=created_by_org,
                                               created_at_us=created_at_micros))


def update_subject(session: Session, subject_id: str, **values: Any) -> None:  # noqa: ANN401 -- column values
    """Change columns of a subject's row (``minor``, ``override_consent_id``, ``erased_at_us``...)."""
    session.execute(sa.update(subjects).where(subjects.c.subject_id == subject_id).values(**values))


def add_referrer(session: Session, subject_id: str, org_id: str, referral_id: str, at_micros: int) -> None:
    """Record ``org_id`` as a referrer of the subject (once; later referrals keep the first row)."""
    exists = session.execute(sa.select(referrers.c.org_id).where(
        referrers.c.subject_id == subject_id, referrers.c.org_id == org_id)).first()
    if exists is None:
        session.execute(sa.insert(referrers).values(subject_id=subject_id, org_id=org_id,
                                                    first_referral_id=referral_id, referred_at_us=at_micros))


# -- consents ------------------------------------------------------------------------------------------------

def load_consents(session: Session, subject_id: str) -> list[Consent]:
    """Every consent of the subject, in force or not, oldest first."""
    rows = session.execute(sa.select(consents).where(consents.c.subject_id == subject_id)
                           .order_by(consents.c.recorded_at_us, consents.c.consent_id))
    return [_consent(row) for row in rows]


def insert_consent(session: Session, consent: Consent) -> None:
    """Store a newly recorded consent."""
    scope = consent.scope
    session.execute(sa.insert(consents).values(
        consent_id=consent.consent_id, subject_id=consent.subject_id, recipient_role=scope.recipient_role,
        recipient_org=scope.recipient_org, purposes=_numbers(scope.purposes), categories=_numbers(scope.categories),
        given_by=consent.given_by, expires_at_us=consent.expires_at_micros, recorded_by_org=consent.recorded_by_org,
        recorded_at_us=consent.recorded_at_micros, revoked_at_us=consent.revoked_at_micros,
        revoked_by_org=consent.revoked_by_org))


def revoke_consent(session: Session, consent_id: str, revoked_at_micros: int, revoked_by_org: str) -> None:
    """Mark a consent revoked (only one not revoked yet: the first revocation stands)."""
    session.execute(sa.update(consents).where(consents.c.consent_id == consent_id, consents.c.revoked_at_us.is_(None))
                    .values(revoked_at_us=revoked_at_micros, revoked_by_org=revoked_by_org))


def _numbers(values: frozenset[int]) -> str:
    return ",".join(str(value) for value in sorted(values))


def _parse_numbers(text: str) -> frozenset[int]:
    return frozenset(int(part) for part in text.split(",") if part)


def _consent(row: sa.Row[Any]) -> Consent:
    scope = ConsentScope(
        recipient_role=None if row.recipient_role is None else cast("OrgRole", row.recipient_role),
        recipient_org=row.recipient_org,
        purposes=cast("frozenset[Purpose]", _parse_numbers(row.purposes)),
        categories=cast("frozenset[DataCategory]", _parse_numbers(row.categories)),
    )
    return Consent(consent_id=row.consent_id, subject_id=row.subject_id, scope=scope,
                   given_by=cast("ConsentGiver", row.given_by), expires_at_micros=row.expires_at_us,
                   recorded_by_org=row.recorded_by_org, recorded_at_micros=row.recorded_at_us,
                   revoked_at_micros=row.revoked_at_us, revoked_by_org=row.revoked_by_org)


# -- handoffs ------------------------------------------------------------------------------------------------

def handoffs_held(session: Session, subject_id: str, provider_org: str) -> list[HandoffHeld]:
    """The handoffs ``provider_org`` holds (or held) for the subject, oldest update first."""
    rows = session.execute(sa.select(handoffs.c.handoff_id, handoffs.c.state).where(
        handoffs.c.subject_id == subject_id, handoffs.c.provider_org == provider_org)
        .order_by(handoffs.c.updated_at_us, handoffs.c.handoff_id))
    return [HandoffHeld(row.handoff_id, row.state) for row in rows]


def handoff_sequence(session: Session, handoff_id: str) -> int | None:
    """The referral-stream sequence of the last event applied to this handoff, or None if it is new here."""
    query = sa.select(handoffs.c.last_sequence).where(handoffs.c.handoff_id == handoff_id)
    value = session.execute(query).scalar_one_or_none()
    return None if value is None else int(value)


def put_handoff(session: Session, *, handoff_id: str, subject_id: str, referral_id: str, provider_org: str,
                state: str, sequence: int, at_micros: int, exists: bool) -> None:
    """Insert the handoff's row, or move an existing one to ``state`` as of referral-stream ``sequence``."""
    values = {"state": state, "last_sequence": sequence, "updated_at_us": at_micros}
    if exists:
        session.execute(sa.update(handoffs).where(handoffs.c.handoff_id == handoff_id).values(**values))
    else:
        session.execute(sa.insert(handoffs).values(handoff_id=handoff_id, subject_id=subject_id,
                                                   referral_id=referral_id, provider_org=provider_org, **values))


# -- releases ------------------------------------------------------------------------------------------------

def insert_release(session: Session, release: Release) -> None:
    """Record a key release."""
    session.execute(sa.insert(releases).values(
        release_id=release.release_id, subject_id=release.subject_id, key_id=release.key_id,
        category=release.category, purpose=release.purpose, recipient_org=release.recipient_org,
        recipient_kem_key_id=release.recipient_kem_key_id, consent_id=release.consent_id,
        handoff_id=release.handoff_id, released_at_us=release.released_at_micros))


def count_rows(session: Session, table: sa.Table, **where: object) -> int:
    """How many rows of ``table`` match ``where`` (column = value); for tests and diagnostics."""
    clauses: Sequence[sa.ColumnElement[bool]] = [table.c[name] == value for name, value in where.items()]
    return int(session.execute(sa.select(sa.func.count()).select_from(table).where(*clauses)).scalar_one())
