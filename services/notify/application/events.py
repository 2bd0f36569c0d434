"""What the notify worker does with referral's and intake's events (their routing sections, decoded).

Who is told what (docs/adr/0014-notify.md):

- HandoffOffered: the handoff is projected with its reminder time; HANDOFF_OFFERED to the provider.
- HandoffAccepted, HandoffDeclined, HandoffWithdrawn, ServiceStarted, ServiceCompleted: the handoff's state
  changes and its reminder is cancelled; no notice.
- HandoffExpired: likewise, and HANDOFF_EXPIRED to the provider.
- ReferralEscalated: REFERRAL_ESCALATED to the coordinators serving the referral's department (to every
  coordinator when none does).
- ConsentRecorded, ConsentOverrideRecorded: whom the consent named (an org or a role) is projected.
- ConsentRevoked: the consent is marked revoked; CONSENT_REVOKED to each provider the consent named that
  held an active (offered, accepted, in service) handoff of the subject at the instant of revocation, about its
  oldest such handoff.
- ReferralOpened, ReferralClosed, CapacityUpdated, ReferralSubmitted, KeyReleased, SubjectErased: nothing (an
  erased subject's active handoffs are withdrawn by referral; their holders see that in their inbox).

"At the instant of revocation", not "now": the two topics are read in parallel, so a handoff may already
show a later state here (withdrawn by referral because of that very revocation, or completed a moment after
it) when the revocation is applied. A handoff offered by then and still active, or whose last change came at
or after the revocation, counts as held. Everything happens in the caller's session, the Kafka
handler's transaction that already holds the dedupe claim; each method returns how many deliveries it added.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from google.protobuf.message import Message

from services.core.envelope import EventHeader
from services.core.events import UnprocessableEvent
from services.core.generated.referralnet.consent.v1.consent_pb2 import ConsentRecipient as RecipientMessage
from services.core.generated.referralnet.intake.v1 import events_pb2 as intake
from services.core.generated.referralnet.notify.v1 import notify_pb2
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral
from services.core.generated.referralnet.referral.v1.referral_pb2 import WITHDRAW_REASON_CONSENT_REVOKED
from services.core.identity.directory import Directory
from services.core.identity.errors import UnknownOrganisationError
from services.notify.adapters.repository import (
    ACTIVE_STATES,
    ConsentRecipient,
    HandoffState,
    NotifyRepository,
    ProjectedHandoff,
)
from services.notify.application.deliveries import Planner, coordinators_for
from services.notify.domain.notices import NoticeFacts

log = logging.getLogger(__name__)

UNHANDLED = "unroutable_event"

_MOVES: dict[type[Message], HandoffState] = {
    referral.HandoffAccepted: HandoffState.ACCEPTED,
    referral.HandoffDeclined: HandoffState.DECLINED,
    referral.ServiceStarted: HandoffState.IN_SERVICE,
    referral.ServiceCompleted: HandoffState.COMPLETED,
}
_IGNORED = (referral.ReferralOpened, referral.ReferralClosed, referral.CapacityUpdated, intake.ReferralSubmitted,
            intake.KeyReleased, intake.SubjectErased)


def reminder_time(offered_at: int, expires_at: int, before_us: int) -> int:
    """When to remind of an offer: ``before_us`` ahead of its deadline, never earlier than half its window.

    With ``before_us`` 0 the reminder falls on the deadline itself, where none is sent: reminders are off.
    """
    return max(expires_at - before_us, offered_at + (expires_at - offered_at) // 2)


def recipient_of(recipient: RecipientMessage) -> ConsentRecipient:
    """Whom a consent grant names: an organisation, or a role."""
    if recipient.WhichOneof("recipient") == "org_id":
        return ConsentRecipient(recipient.org_id, 0)
    return ConsentRecipient("", recipient.role)


class EventHandlers:
    """Applies referral's and intake's events: projections and the deliveries they call for."""

    def __init__(self, directory: Directory, planner: Planner, reminder_before_us: int,
                 clock: Callable[[], int]) -> None:
        self._directory = directory
        self._planner = planner
        self._reminder_before_us = reminder_before_us
        self._clock = clock

    # -- referral --

    def referral_event(self, repository: NotifyRepository, header: EventHeader, message: Message) -> int:
        """Apply one of referral's events; the number of deliveries added."""
        if isinstance(message, referral.HandoffOffered):
            return self._offered(repository, header, message)
        if isinstance(message, referral.HandoffExpired):
            return self._expired(repository, header, message)
        if isinstance(message, referral.ReferralEscalated):
            facts = NoticeFacts(notify_pb2.NOTICE_TYPE_REFERRAL_ESCALATED, header.event_id, message.referral_id,
                                message.referral_id, message.service_type, message.region, 0,
                                message.escalated_at_unix_micros)
            coordinators = coordinators_for(self._directory, message.region)
            return self._planner.to_orgs(repository, coordinators, facts, header.event_id)
        if isinstance(message, referral.HandoffWithdrawn):
            state = (HandoffState.WITHDRAWN_CONSENT if message.reason == WITHDRAW_REASON_CONSENT_REVOKED
                     else HandoffState.WITHDRAWN)
            self._move(repository, header, message.handoff_id, state, message.withdrawn_at_unix_micros)
            return 0
        for kind, state in _MOVES.items():
            if isinstance(message, kind):
                self._move(repository, header, getattr(message, "handoff_id", ""), state,
                           header.occurred_at_unix_micros)
                return 0
        return self._ignore(header, message)

    def _offered(self, repository: NotifyRepository, header: EventHeader, message: referral.HandoffOffered) -> int:
        offered_at, expires_at = message.offered_at_unix_micros, message.expires_at_unix_micros
        repository.add_handoff(ProjectedHandoff(
            handoff_id=message.handoff_id, referral_id=message.referral_id, subject_id=message.subject_id,
            provider_org=message.provider_org, service_type=message.service_type, region=message.region,
            state=HandoffState.OFFERED, offer_event_id=header.event_id, offered_at_us=offered_at,
            expires_at_us=expires_at, remind_at_us=reminder_time(offered_at, expires_at, self._reminder_before_us),
            sequence=header.stream_sequence, updated_at_us=offered_at))
        facts = NoticeFacts(notify_pb2.NOTICE_TYPE_HANDOFF_OFFERED, header.event_id, message.handoff_id,
                            message.referral_id, message.service_type, message.region, expires_at, offered_at)
        return self._planner.to_org(repository, message.provider_org, facts, header.event_id)

    def _expired(self, repository: NotifyRepository, header: EventHeader, message: referral.HandoffExpired) -> int:
        known = repository.handoff(message.handoff_id)
        self._move(repository, header, message.handoff_id, HandoffState.EXPIRED, message.expired_at_unix_micros)
        facts = NoticeFacts(notify_pb2.NOTICE_TYPE_HANDOFF_EXPIRED, header.event_id, message.handoff_id,
                            message.referral_id, known.service_type if known else 0, known.region if known else 0,
                            0, message.expired_at_unix_micros)
        return self._planner.to_org(repository, message.provider_org, facts, header.event_id)

    def _move(self, repository: NotifyRepository, header: EventHeader, handoff_id: str, state: HandoffState,
              at: int) -> None:
        if not repository.move_handoff(handoff_id, state, header.stream_sequence, at):
            log.info("handoff %s: event %s (%s) changes nothing here (unknown handoff or not newer)",
                     handoff_id, header.event_id, header.event_type)

    # -- intake --

    def intake_event(self, repository: NotifyRepository, header: EventHeader, message: Message) -> int:
        """Apply one of intake's events; the number of deliveries added."""
        if isinstance(message, intake.ConsentRecorded | intake.ConsentOverrideRecorded):
            repository.add_consent(message.consent_id, message.subject_id, recipient_of(message.grant.recipient))
            return 0
        if isinstance(message, intake.ConsentRevoked):
            return self._consent_revoked(repository, header, message)
        return self._ignore(header, message)

    def _consent_revoked(self, repository: NotifyRepository, header: EventHeader,
                         message: intake.ConsentRevoked) -> int:
        revoked_at = message.revoked_at_unix_micros
        recipient = repository.revoke_consent(message.consent_id, revoked_at)
        if recipient is None:
            log.info("consent %s: unknown here or revoked already (event %s); nobody to tell",
                     message.consent_id, header.event_id)
            return 0
        held = [handoff for handoff in repository.handoffs_of_subject(message.subject_id, tuple(HandoffState))
                if handoff.offered_at_us <= revoked_at
                and (handoff.state in ACTIVE_STATES or handoff.updated_at_us >= revoked_at)]
        first_by_provider: dict[str, ProjectedHandoff] = {}
        for handoff in held:
            if self._named(recipient, handoff.provider_org):
                first_by_provider.setdefault(handoff.provider_org, handoff)
        added = 0
        for provider, handoff in first_by_provider.items():
            facts = NoticeFacts(notify_pb2.NOTICE_TYPE_CONSENT_REVOKED, header.event_id, handoff.handoff_id,
                                handoff.referral_id, handoff.service_type, handoff.region, 0, revoked_at)
            added += self._planner.to_org(repository, provider, facts, header.event_id)
        return added

    def _named(self, recipient: ConsentRecipient, org_id: str) -> bool:
        if recipient.org_id:
            return recipient.org_id == org_id
        try:
            return bool(self._directory.org(org_id).role == recipient.role)
        except UnknownOrganisationError:
            return False

    @staticmethod
    def _ignore(header: EventHeader, message: Message) -> int:
        if not isinstance(message, _IGNORED):
            raise UnprocessableEvent(UNHANDLED, f"event {header.event_id}: {header.event_type} is not handled here")
        return 0
