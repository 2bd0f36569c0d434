"""SubmitReferral: a referral and the consent given with it, appended to the subject's stream, exactly once.

The idempotency key is claimed (intake_submissions' primary key) in the same transaction as the events,
and first, so concurrent retries queue on it: one commits, the others find its row and answer with the
first answer (replayed) when their bytes are the same, AlreadyExists when not. The subject's case-file key
is made before the transaction (the vault has its own); a racer that lost shreds the keys it made for a
subject that never came to be. The vault is never called inside the transaction: on SQLite the transaction
holds the file's write lock, and a second pooled connection waiting on it could deadlock the pool. Like
the transaction, the vault's is tried again on a transient database error (SQLite's "database is locked"
once the busy timeout ran out under load), and Unavailable when that keeps failing.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.core.application import AlreadyExists, FailedPrecondition
from services.core.envelope import ShreddedSubjectError
from services.core.eventstore import NewEvent
from services.core.generated.referralnet.intake.v1 import events_pb2
from services.core.generated.referralnet.intake.v1.intake_pb2 import SubmitReferralRequest, SubmitReferralResponse
from services.core.grpcedge.caller import Caller
from services.core.keyvault.keys import DataKey
from services.intake.adapters import repository as repo
from services.intake.adapters.events import sealed_event
from services.intake.adapters.messages import consent_of, timestamp
from services.intake.application.context import IntakeContext, subject_erased
from services.intake.domain.authorisation import SUBMITTER_ROLES, denied, may_refer, require_role
from services.intake.domain.consent import Consent, require_minor_consent
from services.intake.domain.fingerprint import request_fingerprint
from services.intake.domain.ids import new_consent_id, new_referral_id, new_subject_id
from services.intake.domain.validation import check_idempotency_key, validate_submission

_LOG = logging.getLogger(__name__)


def submit_referral(context: IntakeContext, caller: Caller, request: SubmitReferralRequest) -> SubmitReferralResponse:
    """Accept a referral (see the module docstring); the first answer again for a retry."""
    require_role(caller.role, SUBMITTER_ROLES)
    check_idempotency_key(request.idempotency_key)
    fingerprint = request_fingerprint(request)
    earlier = _earlier_answer(context, caller, request, fingerprint)
    if earlier is not None:
        return earlier
    now = context.clock()
    validate_submission(request, now, context.is_org)
    new_subject = not request.subject_id
    subject_id = request.subject_id or new_subject_id()
    with context.read() as session:  # refuse before any key is made for a subject
        _check(session, caller, request, subject_id, now)
    try:  # never inside the transaction; retried like it (a write: on SQLite it may find the file locked)
        case_key = context.case_file_key(subject_id)
    except ShreddedSubjectError:
        raise subject_erased() from None
    submission = _Submission(context, caller, request, subject_id=subject_id, fingerprint=fingerprint, now=now,
                             case_key=case_key)
    try:
        return context.on_subject_stream(subject_id, submission.run)
    except IntegrityError:
        _discard_keys(context, subject_id, new_subject)
        earlier = _earlier_answer(context, caller, request, fingerprint)
        if earlier is None:
            raise
        _LOG.info("submission race under one idempotency key lost to the first; answered with its result")
        return earlier
    except BaseException:
        _discard_keys(context, subject_id, new_subject)
        raise


def _discard_keys(context: IntakeContext, subject_id: str, new_subject: bool) -> None:
    """Shred the keys made for a new subject whose registration did not commit (best effort: they sealed
    nothing that was kept, so a failure here leaves only unused keys behind)."""
    if not new_subject:
        return
    try:
        context.vault.shred(subject_id)
    except Exception as error:  # logged by type; the caller's own error is what it must hear about
        _LOG.warning("could not shred the unused keys of subject %s: %s", subject_id, type(error).__name__)


class _Submission:
    """One submission's decision inside the unit of work (ids fixed, so a retried decision says the same)."""

    def __init__(self, context: IntakeContext, caller: Caller, request: SubmitReferralRequest, *, subject_id: str,
                 fingerprint: bytes, now: int, case_key: DataKey) -> None:
        self.context, self.caller, self.request = context, caller, request
        self.subject_id, self.fingerprint, self.now, self.case_key = subject_id, fingerprint, now, case_key
        self.referral_id = new_referral_id()
        self.consent_ids = [new_consent_id() for _ in request.consents]

    def run(self, session: Session) -> tuple[SubmitReferralResponse, list[NewEvent]]:
        request, caller, now = self.request, self.caller, self.now
        response = SubmitReferralResponse(referral_id=self.referral_id, subject_id=self.subject_id,
                                          submitted_at=timestamp(now), replayed=False, consent_ids=self.consent_ids)
        repo.insert_submission(session, caller.org_id, request.idempotency_key, self.fingerprint,
                               referral_id=self.referral_id, subject_id=self.subject_id, submitted_at_micros=now,
                               response=response.SerializeToString(deterministic=True))
        if _check(session, caller, request, self.subject_id, now):
            repo.update_subject(session, self.subject_id, minor=request.minor)
        else:
            repo.insert_subject(session, self.subject_id, minor=request.minor, created_by_org=caller.org_id,
                                created_at_micros=now)
        repo.add_referrer(session, self.subject_id, caller.org_id, self.referral_id, now)
        consents = [consent_of(grant, consent_id, self.subject_id, caller.org_id, now)
                    for consent_id, grant in zip(self.consent_ids, request.consents, strict=True)]
        for consent in consents:
            repo.insert_consent(session, consent)
        return response, [*self._consent_events(), self._referral_event()]

    def _consent_events(self) -> list[NewEvent]:
        routing_key = self.context.routing_keys.current()
        return [sealed_event(events_pb2.ConsentRecorded(
            consent_id=consent_id, subject_id=self.subject_id, grant=grant, recorded_by_org=self.caller.org_id,
            recorded_at_unix_micros=self.now), routing_key, self.now)
            for consent_id, grant in zip(self.consent_ids, self.request.consents, strict=True)]

    def _referral_event(self) -> NewEvent:
        request = self.request
        case_key = self.case_key
        submitted = events_pb2.ReferralSubmitted(
            referral_id=self.referral_id, subject_id=self.subject_id, referrer_org=self.caller.org_id,
            needs=request.needs, region=request.region, minor=request.minor,
            exploitation_type=request.exploitation_type, submitted_at_unix_micros=self.now,
            consent_ids=self.consent_ids, case_file_key_id=case_key.key_id)
        return sealed_event(submitted, self.context.routing_keys.current(), self.now,
                            case_file=(case_key, request.case_file))


def _check(session: Session, caller: Caller, request: SubmitReferralRequest, subject_id: str, now: int) -> bool:
    """Raise unless the caller may refer this subject now; True when the subject exists already."""
    subject = repo.load_subject(session, subject_id) if request.subject_id else None
    recorded: list[Consent] = []
    if request.subject_id:
        if subject is None:
            raise denied()
        recorded = repo.load_consents(session, subject_id)
        if not may_refer(subject, caller.org_id, recorded, now):
            raise denied()
        if subject.erased:
            raise subject_erased()
    require_minor_consent(request.minor, [grant.given_by for grant in request.consents], recorded, now)
    if not request.consents and not any(consent.in_force(now) for consent in recorded):
        raise FailedPrecondition(field="consents",
                                 es="la derivación necesita al menos un consentimiento vigente para compartir datos",
                                 en="a referral needs at least one consent in force to share anything")
    return subject is not None


def _earlier_answer(context: IntakeContext, caller: Caller, request: SubmitReferralRequest,
                    fingerprint: bytes) -> SubmitReferralResponse | None:
    """The first answer under this idempotency key (replayed), AlreadyExists if the request differs, or None."""
    with context.read() as session:
        earlier = repo.load_submission(session, caller.org_id, request.idempotency_key)
    if earlier is None:
        return None
    if earlier.fingerprint != fingerprint:
        raise AlreadyExists(field="idempotency_key",
                            es="esta clave de idempotencia ya se usó con otra solicitud distinta",
                            en="this idempotency key was already used for a different request")
    response = SubmitReferralResponse.FromString(earlier.response)
    with context.read() as session:
        if repo.is_erased(session, response.subject_id):
            raise subject_erased()
    response.replayed = True
    return response
