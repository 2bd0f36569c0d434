"""Consent as intake reasons about it: whom it names, for what, until when, and whether it covers a disclosure.

Pure: no I/O, no clock. Instants are Unix microseconds. The vocabulary (roles, purposes, data categories,
givers) is the proto enums', which are the words every service and auditor agrees on.

A consent covers a disclosure at an instant when it is recorded by then, not revoked by then, not expired
then, and names the recipient (its org, or its role), the purpose and the data category (ADR 11).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.core.application import FailedPrecondition
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import OrgRole
from services.core.generated.referralnet.consent.v1.consent_pb2 import ConsentGiver, DataCategory, Purpose

GUARDIAN = ConsentGiver.CONSENT_GIVER_GUARDIAN
CHILD_PROTECTION_AUTHORITY = ConsentGiver.CONSENT_GIVER_CHILD_PROTECTION_AUTHORITY
COORDINATOR_OVERRIDE = ConsentGiver.CONSENT_GIVER_COORDINATOR_OVERRIDE

MINOR_GIVERS = frozenset({GUARDIAN, CHILD_PROTECTION_AUTHORITY})
"""Who may consent for a minor with a referral (besides an override already recorded on the subject)."""


@dataclass(frozen=True, slots=True)
class ConsentScope:
    """Whom a consent lets receive data (one role, or one organisation), for which purposes and categories."""

    recipient_role: OrgRole | None
    recipient_org: str | None
    purposes: frozenset[Purpose]
    categories: frozenset[DataCategory]

    def __post_init__(self) -> None:
        """A scope names exactly one recipient: a role or an organisation."""
        if (self.recipient_role is None) == (self.recipient_org is None):
            raise ValueError("a consent scope names a recipient role or a recipient org, not both or neither")

    def names(self, org_id: str, role: OrgRole) -> bool:
        """Whether this scope's recipient is the organisation ``org_id`` or its role ``role``."""
        if self.recipient_org is not None:
            return self.recipient_org == org_id
        return self.recipient_role == role


@dataclass(frozen=True, slots=True)
class Consent:
    """A recorded consent of one subject: its scope, who gave it, when it was recorded, expires, was revoked."""

    consent_id: str
    subject_id: str
    scope: ConsentScope
    given_by: ConsentGiver
    expires_at_micros: int
    recorded_by_org: str
    recorded_at_micros: int
    revoked_at_micros: int | None = None
    revoked_by_org: str | None = None

    def in_force(self, at_micros: int) -> bool:
        """Recorded by ``at_micros``, not yet expired then, and not revoked by then."""
        if not self.recorded_at_micros <= at_micros < self.expires_at_micros:
            return False
        return self.revoked_at_micros is None or at_micros < self.revoked_at_micros

    @property
    def revoked(self) -> bool:
        """Whether the consent was revoked (at any instant)."""
        return self.revoked_at_micros is not None


def covers(  # noqa: PLR0917 -- the signature ADR 11's rule reads in
    consent: Consent,
    recipient_org: str,
    recipient_role: OrgRole,
    purpose: Purpose,
    category: DataCategory,
    at_micros: int,
) -> bool:
    """Whether ``consent`` covers disclosing ``category`` data to ``recipient_org`` (of ``recipient_role``)
    for ``purpose`` at the instant ``at_micros``."""
    return (
        consent.in_force(at_micros)
        and consent.scope.names(recipient_org, recipient_role)
        and purpose in consent.scope.purposes
        and category in consent.scope.categories
    )


def covering(  # noqa: PLR0917 -- as covers()
    consents: Iterable[Consent],
    recipient_org: str,
    recipient_role: OrgRole,
    purpose: Purpose,
    category: DataCategory,
    at_micros: int,
) -> Consent | None:
    """The first of ``consents`` (in the order given) that covers the disclosure, or None."""
    for consent in consents:
        if covers(consent, recipient_org, recipient_role, purpose, category, at_micros):
            return consent
    return None


def minor_may_be_referred(new_givers: Iterable[ConsentGiver], recorded: Iterable[Consent], at_micros: int) -> bool:
    """Whether a minor's referral has the consent it needs.

    A consent given with the referral by a guardian or the child-protection authority, or one already
    recorded on the subject and in force: given by either of them, or a coordinator's override.
    """
    if any(giver in MINOR_GIVERS for giver in new_givers):
        return True
    return any(
        consent.in_force(at_micros) and (consent.given_by in MINOR_GIVERS or consent.given_by == COORDINATOR_OVERRIDE)
        for consent in recorded
    )


def require_minor_consent(
    minor: bool, new_givers: Iterable[ConsentGiver], recorded: Iterable[Consent], at_micros: int
) -> None:
    """FailedPrecondition (field ``consents``) for a minor without the consent a minor's referral needs."""
    if minor and not minor_may_be_referred(new_givers, recorded, at_micros):
        raise FailedPrecondition(
            field="consents",
            es="una persona menor de edad necesita el consentimiento de su madre, padre o tutor, o de la "
            "autoridad de protección de la niñez, o una excepción registrada por la coordinación",
            en="a minor needs consent given by a guardian or the child-protection authority, or a "
            "coordinator override already recorded for the subject",
        )


def has_override_in_force(recorded: Iterable[Consent], at_micros: int) -> bool:
    """Whether a coordinator's override on the subject is in force at ``at_micros``."""
    return any(c.given_by == COORDINATOR_OVERRIDE and c.in_force(at_micros) for c in recorded)
