"""ReleaseKey: a subject's case-file key, HPKE-wrapped to a provider with an active handoff and covering consent.

The decision (services.intake.domain.release) is taken on the worker's view of the handoffs; while it says
"wait" (no active handoff yet, as when the acceptance has not reached intake), this polls for up to
min(call deadline, 3 s). The grant is decided again in the unit of work that appends KeyReleased to the
subject's stream, so a revocation or an erasure committed meanwhile (same stream) refuses it. An erased
subject is FAILED_PRECONDITION to an organisation that held one of its handoffs, PERMISSION_DENIED to others.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.core.envelope import ShreddedSubjectError, parse_envelope
from services.core.events.streams import subject_stream
from services.core.eventstore import NewEvent
from services.core.generated.referralnet.consent.v1.consent_pb2 import Purpose
from services.core.generated.referralnet.intake.v1 import events_pb2
from services.core.generated.referralnet.intake.v1.intake_pb2 import ReleaseKeyRequest, ReleaseKeyResponse
from services.core.grpcedge.caller import Caller
from services.core.keyvault import DataCategory, ReleasedKey, release_key
from services.intake.adapters import repository as repo
from services.intake.adapters.events import sealed_event
from services.intake.adapters.messages import timestamp
from services.intake.application.context import IntakeContext, subject_erased
from services.intake.domain.authorisation import denied
from services.intake.domain.ids import new_release_id
from services.intake.domain.release import Outcome, ReleaseDecision, decide_release
from services.intake.domain.validation import validate_release


def release_key_to(context: IntakeContext, caller: Caller, request: ReleaseKeyRequest) -> ReleaseKeyResponse:
    """Release the subject's current case-file key to the caller, with the envelopes it opens."""
    if not _is_provider(context, caller.org_id):
        raise denied()
    validate_release(request)
    _wait_for_grant(context, caller, request)
    try:  # wrapped before the transaction: the vault is never called inside one (see submission.py)
        key = context.vault.current_key(request.subject_id, DataCategory.CASE_FILE)
        kem_key_id, kem_public_key = context.directory.kem_key(caller.org_id)
        released = release_key(context.vault, key.key_id, caller.org_id, kem_key_id, kem_public_key,
                               purpose_word(request.purpose))
    except ShreddedSubjectError:
        raise subject_erased() from None
    return context.on_subject_stream(request.subject_id,
                                     lambda session: _release(context, caller, request, released, session))


def _is_provider(context: IntakeContext, org_id: str) -> bool:
    return context.is_org(org_id) and context.directory.org(org_id).is_provider


def _decide(context: IntakeContext, caller: Caller, request: ReleaseKeyRequest, session: Session) -> ReleaseDecision:
    held = repo.handoffs_held(session, request.subject_id, caller.org_id)
    if repo.is_erased(session, request.subject_id):  # FailedPrecondition only for an org that held a handoff
        raise subject_erased() if held else denied()
    consents = repo.load_consents(session, request.subject_id)
    return decide_release(held, consents, caller.org_id, caller.role, request.purpose, request.category,
                          context.clock())


def _wait_for_grant(context: IntakeContext, caller: Caller, request: ReleaseKeyRequest) -> None:
    """Return once the release would be granted; raise its refusal, at once or when the wait runs out."""
    wait = context.release_wait
    deadline = wait.monotonic() + wait.budget()
    while True:
        with context.read() as session:
            decision = _decide(context, caller, request, session)
        if decision.outcome is Outcome.GRANT:
            return
        left = deadline - wait.monotonic()
        if decision.outcome is Outcome.REFUSE or left <= 0:
            raise decision.refusal()
        wait.sleep(min(wait.poll_seconds, left))


def _release(context: IntakeContext, caller: Caller, request: ReleaseKeyRequest, released: ReleasedKey,
             session: Session) -> tuple[ReleaseKeyResponse, list[NewEvent]]:
    decision = _decide(context, caller, request, session)
    if decision.outcome is not Outcome.GRANT or decision.consent is None:
        raise decision.refusal()
    now = context.clock()
    key_id = released.key_id
    release = repo.Release(release_id=new_release_id(), subject_id=request.subject_id, key_id=key_id,
                           category=request.category, purpose=request.purpose, recipient_org=caller.org_id,
                           recipient_kem_key_id=released.recipient_kem_key_id, consent_id=decision.consent.consent_id,
                           handoff_id=decision.handoff_id, released_at_micros=now)
    repo.insert_release(session, release)
    envelopes = [stored.envelope for stored in context.events.load(session, subject_stream(request.subject_id))
                 if any(section.key_id == key_id for section in parse_envelope(stored.envelope).sections)]
    response = ReleaseKeyResponse(release_id=release.release_id, key_id=key_id, released_key=released.to_bytes(),
                                  consent_id=release.consent_id, handoff_id=release.handoff_id,
                                  released_at=timestamp(now), envelopes=envelopes)
    return response, [sealed_event(_custody_record(release), context.routing_keys.current(), now)]


def _custody_record(release: repo.Release) -> events_pb2.KeyReleased:
    return events_pb2.KeyReleased(
        release_id=release.release_id, subject_id=release.subject_id, key_id=release.key_id,
        category=release.category, purpose=release.purpose, recipient_org=release.recipient_org,
        recipient_kem_key_id=release.recipient_kem_key_id, consent_id=release.consent_id,
        handoff_id=release.handoff_id, released_at_unix_micros=release.released_at_micros)


def purpose_word(purpose: Purpose) -> str:
    """The purpose as bound into a released key: ``PURPOSE_SERVICE_DELIVERY`` -> ``service_delivery``."""
    return Purpose.Name(purpose).removeprefix("PURPOSE_").lower()
