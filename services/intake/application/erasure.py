"""EraseSubject: a subject's keys crypto-shredded at the person's request, and SubjectErased recorded.

Called by the subject's referrers and coordinators (as for its consent). The vault shreds first, outside any
transaction of intake's (the vault is never called inside one, see submission.py); then one unit of work marks
the subject erased and appends SubjectErased to its stream. A retry after a failure between the two shreds
again (idempotent) and records the erasure; erasing an erased subject returns the first erasure and appends
nothing. Every other RPC refuses an erased subject (FAILED_PRECONDITION, ``subject_erased``), deciding it in
its own unit of work on the same stream, so nothing is added or released after SubjectErased.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.core.eventstore import NewEvent
from services.core.generated.referralnet.intake.v1 import events_pb2
from services.core.generated.referralnet.intake.v1.intake_pb2 import EraseSubjectRequest, EraseSubjectResponse
from services.core.grpcedge.caller import Caller
from services.intake.adapters import repository as repo
from services.intake.adapters.events import sealed_event
from services.intake.adapters.messages import timestamp
from services.intake.application.context import IntakeContext, subject_unknown
from services.intake.domain.authorisation import (
    CONSENT_ROLES,
    COORDINATOR,
    Subject,
    denied,
    may_manage_consent,
    require_role,
)
from services.intake.domain.validation import validate_erase


def erase_subject(context: IntakeContext, caller: Caller, request: EraseSubjectRequest) -> EraseSubjectResponse:
    """Crypto-shred the subject's keys and record SubjectErased (once; a repeat returns the first erasure)."""
    require_role(caller.role, CONSENT_ROLES)
    validate_erase(request)
    subject_id = request.subject_id
    with context.read() as session:
        _erasable(session, caller, subject_id)
    context.vault.shred(subject_id)  # idempotent; never inside intake's transaction

    def decide(session: Session) -> tuple[EraseSubjectResponse, list[NewEvent]]:
        subject = _erasable(session, caller, subject_id)
        if subject.erased_at_micros is not None:
            return EraseSubjectResponse(subject_id=subject_id, erased_by_org=subject.erased_by_org,
                                        erased_at=timestamp(subject.erased_at_micros), already_erased=True), []
        now = context.clock()  # taken in the unit of work: the erasure follows every event before it
        repo.update_subject(session, subject_id, erased_at_us=now, erased_by_org=caller.org_id)
        erased = events_pb2.SubjectErased(subject_id=subject_id, erased_by_org=caller.org_id,
                                          erased_at_unix_micros=now)
        return (EraseSubjectResponse(subject_id=subject_id, erased_by_org=caller.org_id, erased_at=timestamp(now),
                                     already_erased=False),
                [sealed_event(erased, context.routing_keys.current(), now)])

    return context.on_subject_stream(subject_id, decide)


def _erasable(session: Session, caller: Caller, subject_id: str) -> Subject:
    """The subject, if the caller may erase it: its referrers and coordinators."""
    subject = repo.load_subject(session, subject_id)
    if subject is None:
        raise subject_unknown(caller.role == COORDINATOR)
    if not may_manage_consent(subject, caller.org_id, caller.role):
        raise denied()
    return subject
