"""Wiring the referral service from its configuration: the network folder, the database, the deadlines.

The edge calls :func:`build_application`; tests call it too, with a SQLite engine and their own clock.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from services.core.envelope import now_micros
from services.core.eventstore import EventStore
from services.core.eventstore.signing import service_event_store
from services.core.identity.directory import Directory
from services.core.identity.keystore import load_directory
from services.core.keyvault.routing_keys import load_routing_keys
from services.referral.application.app import ReferralApplication
from services.referral.config import SERVICE
from services.referral.domain.deadlines import OfferDeadlines


def referral_event_store(network_dir: Path, directory: Directory) -> EventStore:
    """Referral's event store, signing as ``svc:referral`` with the key the directory lists for it."""
    return service_event_store(network_dir, SERVICE, directory)


def build_application(engine: sa.Engine, network_dir: Path, *, directory: Directory | None = None,
                      deadlines: OfferDeadlines | None = None, after_commit: Callable[[], object] | None = None,
                      clock: Callable[[], int] = now_micros) -> ReferralApplication:
    """The application over ``engine`` (migrated) and the network folder's keys and directory."""
    directory = directory or load_directory(network_dir)
    return ReferralApplication(engine, referral_event_store(network_dir, directory), load_routing_keys(network_dir),
                               directory, deadlines=deadlines, clock=clock, after_commit=after_commit)
