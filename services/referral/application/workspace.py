"""One transaction of a referral use case: the repository, the router, and appending what changed."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.core.events.streams import referral_stream
from services.core.eventstore import EventStore
from services.core.keyvault.routing_keys import NetworkRoutingKeys
from services.referral.adapters.events import sealed_event
from services.referral.adapters.repository import ReferralRepository
from services.referral.application.router import Router
from services.referral.domain.referral import Referral


class Workspace:
    """A session's repository and router; ``store`` appends a referral's pending events and saves its state.

    The events go to ``referral-<referral_id>`` with the version the referral was loaded at, so a
    concurrent change to the same referral makes this transaction fail with ConcurrencyError (retry it).
    """

    def __init__(self, session: Session, events: EventStore, keys: NetworkRoutingKeys, router: Router) -> None:
        self.session = session
        self.repository = ReferralRepository(session)
        self.router = router
        self.events = events
        self.keys = keys
        self.appended = 0

    def route_and_store(self, referral: Referral, now: int) -> None:
        """Route the referral's unrouted needs, then store it (see :meth:`store`)."""
        self.router.route_unrouted(self.repository, referral, now)
        self.store(referral, now)

    def store(self, referral: Referral, now: int) -> None:
        """Append the referral's pending events to its stream and write its new state, in this session."""
        if not referral.pending:
            return
        new_events = [sealed_event(message, self.keys, now) for message in referral.pending]
        self.events.append(self.session, referral_stream(referral.referral_id), referral.version, new_events)
        version = referral.version + len(new_events)
        self.repository.save(referral, version)
        referral.version = version
        referral.pending.clear()
        self.appended += len(new_events)
