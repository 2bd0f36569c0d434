"""Each service's event store: streams of sealed events with optimistic concurrency, and the outbox.

``EventStore`` appends and loads; ``unit_of_work`` is the transaction a command runs in, and turns a lost race
into ``ConcurrencyError`` wherever it surfaces (see ``transaction.py`` for the contract). The tables are in
``schema.py``; services create them with the Alembic migrations in ``services.core.migrations``.
"""

from services.core.eventstore.errors import ConcurrencyError, DuplicateEventError, EventStoreError
from services.core.eventstore.store import EventStore, NewEvent, StoredEvent
from services.core.eventstore.transaction import unit_of_work

__all__ = [
    "ConcurrencyError", "DuplicateEventError", "EventStore", "EventStoreError", "NewEvent", "StoredEvent",
    "unit_of_work",
]
