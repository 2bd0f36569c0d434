"""Who may call which of intake's RPCs (ADR 11): by role from the signed directory, and by relationship.

Pure. A subject's relationship is who referred it; a coordinator's override, while in force, opens it to
referrals from any organisation that may submit. Every refusal is PermissionDenied, worded the same
whether or not the subject exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.core.application import PermissionDenied
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import OrgRole
from services.intake.domain.consent import Consent, has_override_in_force

POLICE, NGO, PROSECUTOR = OrgRole.ORG_ROLE_POLICE, OrgRole.ORG_ROLE_NGO, OrgRole.ORG_ROLE_PROSECUTOR
COORDINATOR = OrgRole.ORG_ROLE_COORDINATOR

SUBMITTER_ROLES = frozenset({POLICE, PROSECUTOR, NGO})
"""The roles that submit referrals."""

CONSENT_ROLES = SUBMITTER_ROLES | {COORDINATOR}
"""The roles that can ever manage a subject's consent (referrers have a submitter role)."""


@dataclass(frozen=True)
class Subject:
    """A person intake knows by pseudonymous id: whether a minor, who registered and who referred them."""

    subject_id: str
    minor: bool
    created_by_org: str
    referrers: frozenset[str]
    erased_at_micros: int | None = None
    erased_by_org: str = ""

    @property
    def erased(self) -> bool:
        """Whether the subject was erased (its keys crypto-shredded)."""
        return self.erased_at_micros is not None


def denied() -> PermissionDenied:
    """The one refusal every RPC gives a caller whose role or relationship does not allow the call."""
    return PermissionDenied(es="su organización no tiene permiso para esta operación",
                            en="your organisation is not allowed to do this")


def require_role(role: OrgRole, allowed: Iterable[OrgRole]) -> None:
    """PermissionDenied unless ``role`` is one of ``allowed``."""
    if role not in frozenset(allowed):
        raise denied()


def may_refer(subject: Subject, org_id: str, recorded: Iterable[Consent], at_micros: int) -> bool:
    """Whether ``org_id`` (of a submitting role) may submit a referral for this existing subject."""
    return org_id in subject.referrers or has_override_in_force(recorded, at_micros)


def may_manage_consent(subject: Subject, org_id: str, role: OrgRole) -> bool:
    """Whether the caller may record, revoke or read the subject's consent: its referrers and coordinators."""
    return role == COORDINATOR or org_id in subject.referrers
