"""``IntakeApplication``: intake's use cases behind one object, the same for the gRPC edge and the tests.

Each method takes the authenticated Caller and the request message and returns the response message; it
raises ApplicationError (InvalidArgument naming the field, PermissionDenied, FailedPrecondition,
AlreadyExists, NotFound, Unavailable) and knows nothing of gRPC. ``apply_referral_event`` is the worker's.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.core.envelope import now_micros
from services.core.eventstore import EventStore
from services.core.generated.referralnet.intake.v1.intake_pb2 import (
    EraseSubjectRequest,
    EraseSubjectResponse,
    GetSubjectConsentRequest,
    GetSubjectConsentResponse,
    RecordConsentRequest,
    RecordConsentResponse,
    ReleaseKeyRequest,
    ReleaseKeyResponse,
    RevokeConsentRequest,
    RevokeConsentResponse,
    SubmitReferralRequest,
    SubmitReferralResponse,
)
from services.core.grpcedge.caller import Caller
from services.core.identity.directory import Directory
from services.core.keyvault import KeyVault
from services.core.keyvault.routing_keys import NetworkRoutingKeys
from services.intake.adapters.referral_events import ReferralEvent
from services.intake.application import consents, erasure, handoffs, release, submission
from services.intake.application.context import IntakeContext, ReleaseWait


def _nothing() -> None:
    return None


class IntakeApplication:
    """Intake's application layer over its database, event store, key vault, routing keys and directory."""

    def __init__(self, engine: sa.Engine, events: EventStore, vault: KeyVault, routing_keys: NetworkRoutingKeys,
                 directory: Directory, *, after_commit: Callable[[], None] = _nothing,
                 clock: Callable[[], int] = now_micros, release_wait: ReleaseWait | None = None,
                 append_attempts: int = 10) -> None:
        """``after_commit`` runs after each commit that appended events (the edge wakes its outbox relay);
        ``clock`` gives Unix microseconds; ``release_wait`` bounds ReleaseKey's wait for the worker."""
        self.context = IntakeContext(engine=engine, events=events, vault=vault, routing_keys=routing_keys,
                                     directory=directory, clock=clock, after_commit=after_commit,
                                     release_wait=release_wait or ReleaseWait(), append_attempts=append_attempts)

    def submit_referral(self, caller: Caller, request: SubmitReferralRequest) -> SubmitReferralResponse:
        """Accept a referral with the consent given; a retry under the same idempotency key is answered again."""
        return submission.submit_referral(self.context, caller, request)

    def record_consent(self, caller: Caller, request: RecordConsentRequest) -> RecordConsentResponse:
        """Record a consent for a subject (a coordinator's override may register a new minor)."""
        return consents.record_consent(self.context, caller, request)

    def revoke_consent(self, caller: Caller, request: RevokeConsentRequest) -> RevokeConsentResponse:
        """Revoke a consent from now on (idempotent)."""
        return consents.revoke_consent(self.context, caller, request)

    def release_key(self, caller: Caller, request: ReleaseKeyRequest) -> ReleaseKeyResponse:
        """Release the subject's case-file key to the caller, with the envelopes it opens."""
        return release.release_key_to(self.context, caller, request)

    def get_subject_consent(self, caller: Caller, request: GetSubjectConsentRequest) -> GetSubjectConsentResponse:
        """Every consent of the subject, oldest first."""
        return consents.get_subject_consent(self.context, caller, request)

    def erase_subject(self, caller: Caller, request: EraseSubjectRequest) -> EraseSubjectResponse:
        """Crypto-shred the subject's keys and record SubjectErased (idempotent)."""
        return erasure.erase_subject(self.context, caller, request)

    @staticmethod
    def apply_referral_event(session: Session, event: ReferralEvent) -> bool:
        """Apply one decoded referral event to intake_handoffs (the worker's handler); True if one changed."""
        return handoffs.apply_referral_event(session, event)
