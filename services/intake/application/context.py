"""What intake's use cases share: the database, event store, vault, keys and directory, the clock, and the
unit of work that appends to a subject's stream (retried when another writer got there first)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from services.core.application import FailedPrecondition, NotFound, PermissionDenied, Unavailable
from services.core.envelope import now_micros
from services.core.events.streams import subject_stream
from services.core.eventstore import ConcurrencyError, EventStore, NewEvent, unit_of_work
from services.core.identity.directory import Directory
from services.core.identity.errors import UnknownOrganisationError
from services.core.keyvault import DataCategory, KeyVault
from services.core.keyvault.keys import DataKey
from services.core.keyvault.routing_keys import NetworkRoutingKeys
from services.intake.domain.authorisation import denied

_LOG = logging.getLogger(__name__)
T = TypeVar("T")

Command = Callable[[Session], tuple[T, list[NewEvent]]]
"""A decision taken inside a unit of work: its result and the events to append to the subject's stream."""


def _no_deadline() -> float | None:
    return None


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class ReleaseWait:
    """How long ReleaseKey waits for the worker to apply an acceptance: up to ``max_seconds``, and never so
    long that the answer would miss the call's deadline (``answer_margin`` seconds are kept for it)."""

    max_seconds: float = 3.0
    poll_seconds: float = 0.05
    deadline_remaining: Callable[[], float | None] = _no_deadline  # the edge passes the call's remaining time
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    answer_margin: float = 0.25

    def budget(self) -> float:
        """Seconds to wait at most for this call (never negative)."""
        remaining = self.deadline_remaining()
        limit = self.max_seconds if remaining is None else min(self.max_seconds, remaining - self.answer_margin)
        return max(0.0, limit)


@dataclass
class IntakeContext:
    """The resources and settings of intake's application layer (one per process, shared by threads)."""

    engine: sa.Engine
    events: EventStore
    vault: KeyVault
    routing_keys: NetworkRoutingKeys
    directory: Directory
    clock: Callable[[], int] = now_micros
    after_commit: Callable[[], None] = _nothing
    release_wait: ReleaseWait = field(default_factory=ReleaseWait)
    append_attempts: int = 10
    sleep: Callable[[float], None] = time.sleep  # the backoff between attempts (see ``retried``)

    def is_org(self, org_id: str) -> bool:
        """Whether ``org_id`` is an organisation of the signed directory."""
        try:
            self.directory.org(org_id)
        except UnknownOrganisationError:
            return False
        return True

    def read(self) -> Session:
        """A session for reading only (``with context.read() as session``)."""
        return Session(self.engine)

    def on_subject_stream(self, subject_id: str, command: Command[T]) -> T:
        """Run ``command`` in a unit of work and append its events to the subject's stream, atomically.

        The stream's version is read before the command decides, so a concurrent append makes this one
        fail with ConcurrencyError: the command then runs again on fresh state (see :meth:`retried`).
        Its ApplicationErrors (and anything else) roll it back.
        """
        stream = subject_stream(subject_id)

        def attempt() -> tuple[T, bool]:
            with unit_of_work(self.engine) as session:
                version = self.events.version(session, stream)
                result, new_events = command(session)
                if new_events:
                    self.events.append(session, stream, version, new_events)
            return result, bool(new_events)

        result, appended = self.retried(f"stream {stream}", attempt)
        if appended:
            self._notify()
        return result

    def retried(self, what: str, action: Callable[[], T]) -> T:
        """``action()``, run again after a ConcurrencyError or a transient database error (a lock wait that
        ran out, SQLite's "database is locked", a deadlock victim, a dropped connection), up to
        ``append_attempts`` times with backoff, and Unavailable after that. ``action`` must be one
        transaction (or read only), so running it again is safe; ``what`` names it in the log.
        """
        for attempt in range(1, self.append_attempts + 1):
            try:
                return action()
            except ConcurrencyError:
                _LOG.info("%s moved on while deciding (attempt %d): deciding again", what, attempt)
            except OperationalError as error:  # a lock timeout, a deadlock victim, a dropped connection
                _LOG.warning("%s: %s from the database (attempt %d): trying again", what,
                             type(error.orig).__name__, attempt)
            if attempt < self.append_attempts:
                # Exponential backoff with full jitter (10, 20, 40, 80, 160, then 200 ms caps): a linear 0-5 ms
                # jitter let six writers on one PostgreSQL stream collide again round after round under load (CI).
                # Each round at least one writer wins, so k concurrent writers need up to k attempts: 10, not the
                # 5 that left one of eight concurrent consents on SQLite without a turn on a loaded machine (CI).
                self.sleep(random.uniform(0, min(0.2, 0.01 * 2 ** (attempt - 1))))  # noqa: S311 -- jitter
        raise Unavailable(es="hay demasiados cambios simultáneos sobre esta persona; vuelva a intentarlo",
                          en="too many concurrent changes to this subject; please retry")

    def case_file_key(self, subject_id: str) -> DataKey:
        """The subject's current case-file key, its keys made first if it has none.

        Never inside a unit of work (the vault runs its own transaction, a write: on SQLite it may find the
        file locked), so it is :meth:`retried` the same way. ShreddedSubjectError for an erased subject.
        """
        def fetch() -> DataKey:
            self.vault.ensure_subject(subject_id)
            return self.vault.current_key(subject_id, DataCategory.CASE_FILE)

        return self.retried(f"keys of subject {subject_id}", fetch)

    def _notify(self) -> None:
        try:
            self.after_commit()
        except Exception:  # the commit stands; the relay's next round publishes the events anyway
            _LOG.exception("the after-commit hook failed")


def subject_erased() -> FailedPrecondition:
    """The subject was crypto-shredded: nothing can be added to it or released from it any more."""
    return FailedPrecondition(field="subject_id", es="los datos de esta persona fueron eliminados",
                              en="this subject's data was erased")


def subject_unknown(coordinator: bool) -> PermissionDenied | NotFound:
    """A coordinator may know every subject id (NotFound); to anyone else an unknown id looks refused."""
    if coordinator:
        return NotFound(field="subject_id", es="no hay ninguna persona registrada con este identificador",
                        en="no subject is registered under this id")
    return denied()
