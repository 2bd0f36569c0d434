"""Whether a key release is granted now, refused now, or must wait for the worker (ADR 11).

Pure. A release needs an accepted or in-service handoff of the caller for the subject and a consent in
force covering the caller (its org or role), the purpose and the category. Consent is intake's own state,
always current, so without a covering consent the answer is at once (a revocation takes effect at once):
FailedPrecondition for an organisation that holds some handoff for the subject, PermissionDenied for one
that never held any (it is not involved). Handoffs reach intake through its worker, so with a covering
consent but no active handoff the acceptance may simply not have arrived yet: the application waits,
boundedly, then refuses in the same two ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from services.core.application import ApplicationError, FailedPrecondition
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import OrgRole
from services.core.generated.referralnet.consent.v1.consent_pb2 import DataCategory, Purpose
from services.intake.domain.authorisation import denied
from services.intake.domain.consent import Consent, covering
from services.intake.domain.handoffs import is_active


@dataclass(frozen=True)
class HandoffHeld:
    """A handoff an organisation holds or held for a subject, and its latest state."""

    handoff_id: str
    state: str


class Outcome(Enum):
    """What to do with a release request now."""

    GRANT = "grant"
    REFUSE = "refuse"
    WAIT = "wait"


@dataclass(frozen=True)
class ReleaseDecision:
    """The outcome and, for a grant, the handoff and consent it rests on; for a refusal, the error."""

    outcome: Outcome
    handoff_id: str = ""
    consent: Consent | None = None
    error: ApplicationError | None = None

    def refusal(self) -> ApplicationError:
        """The error to answer a refused or timed-out request with."""
        if self.error is None:
            raise RuntimeError("a granted release carries no refusal")
        return self.error


def decide_release(  # noqa: PLR0917 -- the facts of one request, in the order ADR 11 states them
    held: Sequence[HandoffHeld],
    consents: Sequence[Consent],
    org_id: str,
    role: OrgRole,
    purpose: Purpose,
    category: DataCategory,
    at_micros: int,
) -> ReleaseDecision:
    """Grant, refuse or wait, from the caller's handoffs for the subject and the subject's consents."""
    consent = covering(consents, org_id, role, purpose, category, at_micros)
    if consent is None:
        return ReleaseDecision(Outcome.REFUSE, error=no_covering_consent() if held else denied())
    active = next((handoff for handoff in held if is_active(handoff.state)), None)
    if active is not None:
        return ReleaseDecision(Outcome.GRANT, handoff_id=active.handoff_id, consent=consent)
    return ReleaseDecision(Outcome.WAIT, error=no_active_handoff() if held else denied())


def no_covering_consent() -> FailedPrecondition:
    """No consent in force covers this organisation, purpose and category (e.g. it was revoked)."""
    return FailedPrecondition(
        es="ningún consentimiento vigente cubre a su organización para este propósito y esta categoría de datos",
        en="no consent in force covers your organisation for this purpose and data category")


def no_active_handoff() -> FailedPrecondition:
    """The caller holds no accepted or in-service handoff for the subject."""
    return FailedPrecondition(
        es="su organización no tiene una derivación aceptada o en servicio para esta persona",
        en="your organisation holds no accepted or in-service handoff for this subject")
