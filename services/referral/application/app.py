"""The referral service's use cases, shared by the gRPC edge and the nameko worker.

The API's use cases take the authenticated ``Caller`` and the request message, check the request and the
caller's right (docs/adr/0011), and run in one unit of work each: the referral's own tables change and its
events are appended to ``referral-<referral_id>`` together, or not at all. A lost race with another writer
of the same referral (the worker, another edge) is retried with fresh state; after a few losses the caller
gets UNAVAILABLE. ``after_commit`` is called after each commit that appended events (the edge wakes its
outbox relay with it).

The worker's use cases run in a session the worker owns: ``apply_intake_event`` in the Kafka handler's
transaction (which already holds the dedupe claim) and ``expire_due_offers`` in the timer's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.orm import Session, sessionmaker

from services.core.application import PermissionDenied, Unavailable
from services.core.envelope import EventHeader, now_micros
from services.core.events.streams import capacity_stream
from services.core.eventstore import ConcurrencyError, EventStore, unit_of_work
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import ServiceType
from services.core.generated.referralnet.referral.v1 import events_pb2 as ev
from services.core.generated.referralnet.referral.v1 import referral_pb2 as api
from services.core.grpcedge.caller import Caller
from services.core.grpcedge.page_token import decode_page_token, encode_page_token, page_size
from services.core.identity.directory import Directory
from services.core.keyvault.routing_keys import NetworkRoutingKeys
from services.referral.adapters.api import inbox_handoff, referral_handoff, referral_message, timestamp
from services.referral.adapters.events import sealed_event
from services.referral.adapters.repository import ReferralRepository
from services.referral.application import access, requests
from services.referral.application.intake_events import IntakeEvents
from services.referral.application.router import Router
from services.referral.application.workspace import Workspace
from services.referral.domain.deadlines import OfferDeadlines
from services.referral.domain.handoff import Handoff
from services.referral.domain.referral import Referral

T = TypeVar("T")
Bind = sa.Engine | sessionmaker[Session]
HandoffCheck = Callable[[Referral, Handoff], None]
HandoffMove = Callable[[Referral, int], object]

DEFAULT_ATTEMPTS = 3
ESCALATED_SCAN_LIMIT = 200


class ReferralApplication:
    """The referral use cases over one database, event store, network routing key set and directory."""

    def __init__(self, bind: Bind | None, events: EventStore, routing_keys: NetworkRoutingKeys,
                 directory: Directory, *, deadlines: OfferDeadlines | None = None,
                 clock: Callable[[], int] = now_micros, after_commit: Callable[[], object] | None = None,
                 attempts: int = DEFAULT_ATTEMPTS) -> None:
        """``bind`` (engine or session factory) is needed by the API's use cases, not by the worker's."""
        self._bind = bind
        self._events = events
        self._keys = routing_keys
        self._directory = directory
        self._clock = clock
        self._after_commit = after_commit
        self._attempts = attempts
        self._router = Router(directory, deadlines or OfferDeadlines())
        self._intake = IntakeEvents(directory, clock)

    # -- the provider's inbox and capacity --

    def list_handoffs(self, caller: Caller, request: api.ListHandoffsRequest) -> api.ListHandoffsResponse:
        """The caller's own handoffs, newest offer first, one page at a time."""
        states = requests.handoff_states(request.states)
        size = page_size(request.page_size)
        after = decode_page_token(request.page_token)
        org = access.provider(self._directory, caller)
        with self._read() as session:
            entries = ReferralRepository(session).inbox(org.org_id, states, after, size + 1)
        page = entries[:size]
        token = ""
        if len(entries) > size:
            token = encode_page_token(page[-1].handoff.offered_at, page[-1].handoff.handoff_id)
        return api.ListHandoffsResponse(handoffs=[inbox_handoff(entry) for entry in page], next_page_token=token)

    def update_capacity(self, caller: Caller, request: api.UpdateCapacityRequest) -> api.UpdateCapacityResponse:
        """Record the caller's places for one of its services (CapacityUpdated on ``capacity-<org>``), then
        offer it the escalated needs of that service it can serve (up to that many, oldest first)."""
        service_type = requests.service_type(request.service_type)
        places = requests.available_places(request.available_places)
        org = access.provider(self._directory, caller)
        access.offers(org, service_type)

        def work(workspace: Workspace) -> int:
            now = self._clock()
            stream = capacity_stream(org.org_id)
            update = ev.CapacityUpdated(org_id=org.org_id, service_type=service_type, available_places=places,
                                        updated_at_unix_micros=now)
            self._events.append(workspace.session, stream, self._events.version(workspace.session, stream),
                                [sealed_event(update, self._keys, now)])
            workspace.appended += 1
            workspace.repository.set_capacity(org.org_id, service_type, places, now)
            self._reroute_escalated(workspace, org.org_id, service_type, places, now)
            return now

        updated_at = self._in_transaction(work)
        return api.UpdateCapacityResponse(service_type=service_type, available_places=places,
                                          updated_at=timestamp(updated_at))

    def _reroute_escalated(self, workspace: Workspace, org_id: str, service_type: ServiceType, places: int,
                           now: int) -> None:
        """Offer ``org_id`` the escalated needs of ``service_type`` it is a candidate for (age group, consent, not
        offered before), at most ``places`` of them, oldest escalation first."""
        repository, offered = workspace.repository, 0
        loaded: dict[str, Referral] = {}
        for referral_id, need_index in repository.escalated_needs(service_type, ESCALATED_SCAN_LIMIT):
            if offered >= places:
                break
            referral = loaded.get(referral_id) or repository.get(referral_id)
            if referral is None:
                continue
            loaded[referral_id] = referral
            need = referral.needs[need_index]
            candidate = next((found for found in workspace.router.candidates(repository, referral, need, now)
                              if found.org_id == org_id), None)
            if candidate is not None:
                workspace.router.offer(referral, need, candidate, now)
                offered += 1
        for referral in loaded.values():
            workspace.store(referral, now)

    # -- the provider's moves on a handoff --

    def accept_handoff(self, caller: Caller, request: api.AcceptHandoffRequest) -> api.AcceptHandoffResponse:
        """The provider accepts an offer before its deadline."""
        handoff_id = requests.handoff_id(request.handoff_id)
        moved = self._move(handoff_id, self._provider_check(caller),
                           lambda referral, now: referral.accept(handoff_id, now))
        return api.AcceptHandoffResponse(handoff=moved)

    def decline_handoff(self, caller: Caller, request: api.DeclineHandoffRequest) -> api.DeclineHandoffResponse:
        """The provider declines an offer; in the same transaction the need goes to the next provider (or is
        escalated when none is left)."""
        handoff_id = requests.handoff_id(request.handoff_id)
        reason, note = requests.decline_reason(request.reason), requests.note(request.note)
        moved = self._move(handoff_id, self._provider_check(caller),
                           lambda referral, now: referral.decline(handoff_id, reason, note, now))
        return api.DeclineHandoffResponse(handoff=moved)

    def start_service(self, caller: Caller, request: api.StartServiceRequest) -> api.StartServiceResponse:
        """The provider records that the service of an accepted handoff started."""
        handoff_id = requests.handoff_id(request.handoff_id)
        moved = self._move(handoff_id, self._provider_check(caller),
                           lambda referral, now: referral.start(handoff_id, now))
        return api.StartServiceResponse(handoff=moved)

    def complete_service(self, caller: Caller, request: api.CompleteServiceRequest) -> api.CompleteServiceResponse:
        """The provider records the outcome; the referral closes when every need is completed or withdrawn."""
        handoff_id = requests.handoff_id(request.handoff_id)
        outcome, note = requests.outcome(request.outcome), requests.note(request.note)
        moved = self._move(handoff_id, self._provider_check(caller),
                           lambda referral, now: referral.complete(handoff_id, outcome, note, now))
        return api.CompleteServiceResponse(handoff=moved)

    # -- the referrer's view and moves --

    def withdraw_handoff(self, caller: Caller, request: api.WithdrawHandoffRequest) -> api.WithdrawHandoffResponse:
        """The referrer or a coordinator withdraws a handoff: its need is resolved as withdrawn."""
        handoff_id = requests.handoff_id(request.handoff_id)
        reason, note = requests.withdraw_reason(request.reason), requests.note(request.note)

        def referrer_check(referral: Referral, _handoff: Handoff) -> None:
            access.referrer_or_coordinator(caller, referral)

        moved = self._move(handoff_id, referrer_check,
                           lambda referral, now: referral.withdraw(handoff_id, reason, note, caller.org_id, now),
                           unknown=access.not_yours_referral)
        return api.WithdrawHandoffResponse(handoff=moved)

    def get_referral(self, caller: Caller, request: api.GetReferralRequest) -> api.GetReferralResponse:
        """A referral's whole status (the closed loop), for its referrer and the coordinators."""
        referral_id = requests.referral_id(request.referral_id)
        with self._read() as session:
            referral = ReferralRepository(session).get(referral_id)
        if referral is None:
            raise access.not_yours_referral()
        access.referrer_or_coordinator(caller, referral)
        return api.GetReferralResponse(referral=referral_message(referral))

    # -- the worker's use cases --

    def apply_intake_event(self, session: Session, header: EventHeader, message: Message) -> None:
        """Apply one of intake's events (decoded routing section) in the worker's transaction ``session``.

        Raises UnprocessableEvent for an event that can never be applied (wrong producer or stream, an
        unroutable referral) and ConcurrencyError when the edge changed the same referral meanwhile (the
        Kafka entrypoint retries the record).
        """
        self._intake.apply(self._workspace(session), header, message)

    def expire_due_offers(self, now_micros: int, limit: int = 100, *, session: Session | None = None) -> int:
        """Expire up to ``limit`` offers past their deadline at ``now_micros`` and route their needs again.

        Idempotent and safe from several processes: each referral's events are appended with the version it
        was loaded at, so only one process expires a given offer. Without ``session``, each referral gets its
        own unit of work and a referral another process changed meanwhile is left to it. With ``session``
        (the worker's timer transaction) everything happens in it and a lost race raises ConcurrencyError:
        the caller rolls back and the next run starts afresh. Returns how many offers expired.
        """
        if session is not None:
            workspace = self._workspace(session)
            return sum(self._expire_referral(workspace, referral_id, now_micros)
                       for referral_id in workspace.repository.referrals_with_due_offers(now_micros, limit))
        with self._read() as reading:
            due = ReferralRepository(reading).referrals_with_due_offers(now_micros, limit)
        expired = 0
        for referral_id in due:
            try:
                with unit_of_work(self._require_bind()) as own:
                    workspace = self._workspace(own)
                    expired_here = self._expire_referral(workspace, referral_id, now_micros)
            except ConcurrencyError:
                continue  # another process changed this referral first; its offers are its business now
            expired += expired_here
            self._notify(workspace)
        return expired

    def _expire_referral(self, workspace: Workspace, referral_id: str, now: int) -> int:
        referral = workspace.repository.get(referral_id)
        if referral is None:
            return 0
        due = referral.due_offers(now)
        for handoff in due:
            referral.expire(handoff.handoff_id, now)
        workspace.route_and_store(referral, now)
        return len(due)

    # -- plumbing --

    def _provider_check(self, caller: Caller) -> HandoffCheck:
        def check(_referral: Referral, handoff: Handoff) -> None:
            access.handoff_provider(caller, handoff)
        return check

    def _move(self, handoff_id: str, check: HandoffCheck, move: HandoffMove,
              unknown: Callable[[], PermissionDenied] = access.not_yours_handoff) -> api.Handoff:
        """Load the handoff's referral, check the caller, make the move, route what it left unrouted, store."""
        def work(workspace: Workspace) -> api.Handoff:
            referral_id = workspace.repository.referral_id_of(handoff_id)
            referral = workspace.repository.get(referral_id) if referral_id is not None else None
            if referral is None:
                raise unknown()
            handoff = referral.handoff(handoff_id)
            check(referral, handoff)
            now = self._clock()
            move(referral, now)
            workspace.route_and_store(referral, now)
            return referral_handoff(referral, handoff)

        return self._in_transaction(work)

    def _in_transaction(self, work: Callable[[Workspace], T]) -> T:
        """Run ``work`` in a unit of work, again on a lost race, up to ``attempts`` times; then UNAVAILABLE."""
        for _ in range(self._attempts):
            try:
                with unit_of_work(self._require_bind()) as session:
                    workspace = self._workspace(session)
                    result = work(workspace)
            except ConcurrencyError:
                continue
            self._notify(workspace)
            return result
        raise Unavailable(es="la derivación cambió varias veces mientras se atendía la solicitud; reintente",
                          en="the referral kept changing while this request was handled; retry")

    def _notify(self, workspace: Workspace) -> None:
        if workspace.appended and self._after_commit is not None:
            self._after_commit()

    def _workspace(self, session: Session) -> Workspace:
        return Workspace(session, self._events, self._keys, self._router)

    def _read(self) -> Session:
        bind = self._require_bind()
        return bind() if isinstance(bind, sessionmaker) else Session(bind)

    def _require_bind(self) -> Bind:
        if self._bind is None:
            msg = "this ReferralApplication has no database bind: the API's use cases need one"
            raise RuntimeError(msg)
        return self._bind
