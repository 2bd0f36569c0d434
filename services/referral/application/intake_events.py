"""What the referral worker does with intake's events (their routing sections, already decoded).

- ConsentRecorded / ConsentOverrideRecorded: the consent joins ``referral_consents`` (routing reads it).
- ConsentRevoked: the consent stops covering anything from its revocation on; each open offer it covered
  and no other consent covers is withdrawn (reason consent_revoked) and its need routed again.
- ReferralSubmitted: ReferralOpened, then one HandoffOffered (or ReferralEscalated) per need.
- SubjectErased: every consent of the subject stops covering anything from the erasure on (nothing is offered
  for it again), and every active handoff of its open referrals (offered, accepted, in service) is withdrawn
  (reason subject_erased, by the organisation that erased it); their needs are resolved as withdrawn, so a
  referral whose needs are all resolved closes. Completed, declined, expired and withdrawn handoffs and
  escalated needs stay as they are. Applying it again changes nothing.
- KeyReleased: nothing to do here.

Only events produced by intake itself (``svc:intake``) on the subject's own stream are accepted; anything
else, or a routing fact relying on an UNSPECIFIED or unknown value, is UnprocessableEvent (dead-lettered).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from google.protobuf.message import Message

from services.core.envelope import EventHeader
from services.core.events import UnprocessableEvent
from services.core.events.producers import require_producer
from services.core.events.streams import require_stream, subject_stream
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import ExploitationType, Urgency
from services.core.generated.referralnet.consent.v1.consent_pb2 import ConsentGrant
from services.core.generated.referralnet.intake.v1 import events_pb2 as intake
from services.core.generated.referralnet.referral.v1.referral_pb2 import (
    WITHDRAW_REASON_CONSENT_REVOKED,
    WITHDRAW_REASON_SUBJECT_ERASED,
)
from services.core.identity.directory import Directory
from services.core.identity.errors import UnknownOrganisationError
from services.core.identity.records import service_owner
from services.core.identity.vocabulary import REGIONS, SERVICE_TYPES
from services.referral.application.workspace import Workspace
from services.referral.domain.referral import Referral
from services.referral.domain.routing import ConsentFact, covering_consent

log = logging.getLogger(__name__)

INTAKE_PRODUCER = service_owner("intake")
UNROUTABLE = "unroutable_event"
_URGENCIES = frozenset(value for _, value in Urgency.items() if value != 0)
_EXPLOITATION_TYPES = frozenset(value for _, value in ExploitationType.items() if value != 0)


class IntakeEvents:
    """Applies intake's events in a workspace (the worker's transaction, dedupe claim included)."""

    def __init__(self, directory: Directory, clock: Callable[[], int]) -> None:
        self._directory = directory
        self._clock = clock

    def apply(self, workspace: Workspace, header: EventHeader, message: Message) -> None:
        """Apply one verified, decoded intake event."""
        _check_origin(header, message)
        if isinstance(message, intake.ConsentRecorded | intake.ConsentOverrideRecorded):
            self._consent_recorded(workspace, message)
        elif isinstance(message, intake.ConsentRevoked):
            self._consent_revoked(workspace, message)
        elif isinstance(message, intake.ReferralSubmitted):
            self._referral_submitted(workspace, header, message)
        elif isinstance(message, intake.SubjectErased):
            self._subject_erased(workspace, message)
        elif not isinstance(message, intake.KeyReleased):
            raise UnprocessableEvent(UNROUTABLE, f"event {header.event_id}: {header.event_type} is not handled here")

    def _consent_recorded(self, workspace: Workspace,
                          message: intake.ConsentRecorded | intake.ConsentOverrideRecorded) -> None:
        fact = consent_fact(message.consent_id, message.subject_id, message.grant)
        workspace.repository.add_consent(
            fact, given_by=message.grant.given_by, override=isinstance(message, intake.ConsentOverrideRecorded),
            recorded_by_org=message.recorded_by_org, recorded_at=message.recorded_at_unix_micros)

    def _consent_revoked(self, workspace: Workspace, message: intake.ConsentRevoked) -> None:
        repository = workspace.repository
        if not repository.revoke_consent(message.consent_id, message.revoked_at_unix_micros, message.revoked_by_org):
            log.info("consent %s: revocation of an unknown or already revoked consent, nothing to do",
                     message.consent_id)
            return
        now = self._clock()
        at = max(now, message.revoked_at_unix_micros)
        by_referral: dict[str, list[str]] = {}
        for referral_id, handoff_id in repository.offered_under_consent(message.consent_id):
            by_referral.setdefault(referral_id, []).append(handoff_id)
        for referral_id, handoff_ids in by_referral.items():
            referral = repository.get(referral_id)
            if referral is None:  # the handoff row exists, so its referral does
                continue
            consents = repository.consents_of(referral.subject_id)
            for handoff_id in handoff_ids:
                if not self._still_covered(referral.handoff(handoff_id).provider_org, consents, at):
                    referral.withdraw(handoff_id, WITHDRAW_REASON_CONSENT_REVOKED, "", message.revoked_by_org, now)
            workspace.route_and_store(referral, now)

    def _subject_erased(self, workspace: Workspace, message: intake.SubjectErased) -> None:
        repository = workspace.repository
        now = self._clock()
        at = max(now, message.erased_at_unix_micros)
        for consent in repository.consents_of(message.subject_id):
            repository.revoke_consent(consent.consent_id, message.erased_at_unix_micros, message.erased_by_org)
        for referral_id in repository.open_referrals_of(message.subject_id):
            referral = repository.get(referral_id)
            if referral is None:
                continue
            for handoff in list(referral.handoffs):
                if handoff.active:
                    referral.withdraw(handoff.handoff_id, WITHDRAW_REASON_SUBJECT_ERASED, "", message.erased_by_org,
                                      at)
            workspace.store(referral, at)
        log.info("subject %s erased by %s: its active handoffs withdrawn", message.subject_id, message.erased_by_org)

    def _still_covered(self, org_id: str, consents: list[ConsentFact], at: int) -> bool:
        try:
            org = self._directory.org(org_id)
        except UnknownOrganisationError:  # left the directory: nothing covers it any more
            return False
        return covering_consent(org, consents, at) is not None

    def _referral_submitted(self, workspace: Workspace, header: EventHeader,
                            message: intake.ReferralSubmitted) -> None:
        if workspace.repository.exists(message.referral_id):
            log.info("referral %s is open already (event %s)", message.referral_id, header.event_id)
            return
        _check_routable(header, message)
        now = self._clock()
        referral = Referral.open(
            referral_id=message.referral_id, subject_id=message.subject_id, referrer_org=message.referrer_org,
            needs=[(need.service_type, need.urgency) for need in message.needs], region=message.region,
            minor=message.minor, exploitation_type=message.exploitation_type,
            submitted_at=message.submitted_at_unix_micros, submission_event_id=header.event_id, now=now)
        workspace.route_and_store(referral, now)


def consent_fact(consent_id: str, subject_id: str, grant: ConsentGrant) -> ConsentFact:
    """What routing needs of a consent grant."""
    recipient = grant.recipient.WhichOneof("recipient")
    return ConsentFact(
        consent_id=consent_id, subject_id=subject_id,
        recipient_org=grant.recipient.org_id if recipient == "org_id" else "",
        recipient_role=grant.recipient.role if recipient == "role" else 0,
        purposes=frozenset(grant.purposes), categories=frozenset(grant.categories),
        expires_at=grant.expires_at.ToMicroseconds() if grant.HasField("expires_at") else 0)


def _check_origin(header: EventHeader, message: Message) -> None:
    require_producer(header, INTAKE_PRODUCER)
    require_stream(header, subject_stream(getattr(message, "subject_id", "")))


def _check_routable(header: EventHeader, message: intake.ReferralSubmitted) -> None:
    problems = []
    if not message.referral_id or not message.referrer_org:
        problems.append("referral_id/referrer_org")
    if not message.needs:
        problems.append("needs")
    for index, need in enumerate(message.needs):
        if need.service_type not in SERVICE_TYPES.values():
            problems.append(f"needs[{index}].service_type")
        if need.urgency not in _URGENCIES:
            problems.append(f"needs[{index}].urgency")
    if message.region not in REGIONS.values():
        problems.append("region")
    if message.exploitation_type not in _EXPLOITATION_TYPES:
        problems.append("exploitation_type")
    if problems:
        msg = f"event {header.event_id}: cannot be routed ({', '.join(problems)} unspecified or unknown)"
        raise UnprocessableEvent(UNROUTABLE, msg)

