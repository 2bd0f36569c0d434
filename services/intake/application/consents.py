"""RecordConsent, RevokeConsent and GetSubjectConsent: a subject's consent, kept by its referrers and coordinators.

A coordinator's override (for a minor without guardian consent) carries a justification, sealed under the
subject's case-file key in its own event (ConsentOverrideRecorded), and may register a new subject.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.orm import Session

from services.core.application import FailedPrecondition, NotFound
from services.core.envelope import ShreddedSubjectError
from services.core.eventstore import NewEvent
from services.core.generated.referralnet.intake.v1 import events_pb2
from services.core.generated.referralnet.intake.v1.intake_pb2 import (
    GetSubjectConsentRequest,
    GetSubjectConsentResponse,
    RecordConsentRequest,
    RecordConsentResponse,
    RevokeConsentRequest,
    RevokeConsentResponse,
)
from services.core.grpcedge.caller import Caller
from services.core.keyvault.keys import DataKey
from services.intake.adapters import repository as repo
from services.intake.adapters.events import sealed_event
from services.intake.adapters.messages import consent_message, consent_of
from services.intake.application.context import IntakeContext, subject_erased, subject_unknown
from services.intake.domain.authorisation import (
    CONSENT_ROLES,
    COORDINATOR,
    Subject,
    denied,
    may_manage_consent,
    require_role,
)
from services.intake.domain.consent import COORDINATOR_OVERRIDE, Consent
from services.intake.domain.ids import new_consent_id, new_subject_id
from services.intake.domain.validation import validate_get_consent, validate_record_consent, validate_revoke_consent


def record_consent(context: IntakeContext, caller: Caller, request: RecordConsentRequest) -> RecordConsentResponse:
    """Record one more consent for a subject (an override may register a new minor subject)."""
    require_role(caller.role, CONSENT_ROLES)
    now = context.clock()
    validate_record_consent(request, now, context.is_org)
    override = request.grant.given_by == COORDINATOR_OVERRIDE
    if override and caller.role != COORDINATOR:
        raise denied()
    subject_id = request.subject_id or new_subject_id()
    if request.subject_id:
        with context.read() as session:
            _managed_subject(session, caller, subject_id, override=override)
    case_key = None
    if override:  # the justification is sealed under the subject's case-file key (fetched outside the transaction)
        try:
            case_key = context.case_file_key(subject_id)
        except ShreddedSubjectError:
            raise subject_erased() from None
    consent_id = new_consent_id()

    def decide(session: Session) -> tuple[Consent, list[NewEvent]]:
        if request.subject_id:
            _managed_subject(session, caller, subject_id, override=override)
        else:
            repo.insert_subject(session, subject_id, minor=True, created_by_org=caller.org_id, created_at_micros=now)
        consent = consent_of(request.grant, consent_id, subject_id, caller.org_id, now)
        repo.insert_consent(session, consent)
        if override:
            repo.update_subject(session, subject_id, override_consent_id=consent_id)
        return consent, [_recorded_event(context, request, consent, case_key)]

    recorded = context.on_subject_stream(subject_id, decide)
    return RecordConsentResponse(consent=consent_message(recorded))


def _recorded_event(context: IntakeContext, request: RecordConsentRequest, consent: Consent,
                    case_key: DataKey | None) -> NewEvent:
    override = consent.given_by == COORDINATOR_OVERRIDE
    kind = events_pb2.ConsentOverrideRecorded if override else events_pb2.ConsentRecorded
    message = kind(consent_id=consent.consent_id, subject_id=consent.subject_id, grant=request.grant,
                   recorded_by_org=consent.recorded_by_org, recorded_at_unix_micros=consent.recorded_at_micros)
    routing_key, at = context.routing_keys.current(), consent.recorded_at_micros
    if case_key is None:
        return sealed_event(message, routing_key, at)
    justification = events_pb2.OverrideJustification(justification=request.override_justification.strip())
    return sealed_event(message, routing_key, at, case_file=(case_key, justification))


def revoke_consent(context: IntakeContext, caller: Caller, request: RevokeConsentRequest) -> RevokeConsentResponse:
    """Revoke a consent from now on; revoking it again returns the first revocation (and appends nothing)."""
    require_role(caller.role, CONSENT_ROLES)
    validate_revoke_consent(request)
    now = context.clock()

    def decide(session: Session) -> tuple[Consent, list[NewEvent]]:
        _managed_subject(session, caller, request.subject_id)
        consent = next((c for c in repo.load_consents(session, request.subject_id)
                        if c.consent_id == request.consent_id), None)
        if consent is None:
            raise NotFound(field="consent_id", es="esta persona no tiene ningún consentimiento con este identificador",
                           en="the subject has no consent with this id")
        if consent.revoked:
            return consent, []
        repo.revoke_consent(session, consent.consent_id, now, caller.org_id)
        revoked = events_pb2.ConsentRevoked(consent_id=consent.consent_id, subject_id=consent.subject_id,
                                            revoked_by_org=caller.org_id, revoked_at_unix_micros=now)
        return (replace(consent, revoked_at_micros=now, revoked_by_org=caller.org_id),
                [sealed_event(revoked, context.routing_keys.current(), now)])

    return RevokeConsentResponse(consent=consent_message(context.on_subject_stream(request.subject_id, decide)))


def get_subject_consent(context: IntakeContext, caller: Caller,
                        request: GetSubjectConsentRequest) -> GetSubjectConsentResponse:
    """Every consent of the subject, in force and revoked, oldest first."""
    require_role(caller.role, CONSENT_ROLES)
    validate_get_consent(request)
    with context.read() as session:
        _managed_subject(session, caller, request.subject_id)
        consents = repo.load_consents(session, request.subject_id)
    return GetSubjectConsentResponse(consents=[consent_message(consent) for consent in consents])


def _managed_subject(session: Session, caller: Caller, subject_id: str, *, override: bool = False) -> Subject:
    """The subject, if the caller may manage its consent and it was not erased; an override needs a subject
    registered as a minor."""
    subject = repo.load_subject(session, subject_id)
    if subject is None:
        raise subject_unknown(caller.role == COORDINATOR)
    if not may_manage_consent(subject, caller.org_id, caller.role):
        raise denied()
    if subject.erased:
        raise subject_erased()
    if override and not subject.minor:
        raise FailedPrecondition(field="grant.given_by",
                                 es="una excepción de la coordinación solo se registra para una persona menor de edad",
                                 en="a coordinator override is only recorded for a minor")
    return subject
