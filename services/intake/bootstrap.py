"""Wiring intake from its configuration: the network folder, the database and the KEK file.

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
from services.core.keyvault import KeyVault, LocalFileKek
from services.core.keyvault.routing_keys import load_routing_keys
from services.intake.application.context import ReleaseWait
from services.intake.application.service import IntakeApplication
from services.intake.kek import ensure_kek_file

SERVICE = "intake"


def _nothing() -> None:
    return None


def intake_event_store(network_dir: Path, directory: Directory) -> EventStore:
    """Intake's event store, signing as ``svc:intake`` with the key the directory lists for it."""
    return service_event_store(network_dir, SERVICE, directory)


def build_application(engine: sa.Engine, network_dir: Path, kek_path: Path, *, directory: Directory | None = None,
                      after_commit: Callable[[], None] = _nothing, clock: Callable[[], int] = now_micros,
                      release_wait: ReleaseWait | None = None) -> IntakeApplication:
    """The application over ``engine`` (migrated), the network folder's keys and directory, and the KEK
    (created, mode 0600, when ``kek_path`` does not exist yet)."""
    directory = directory or load_directory(network_dir)
    vault = KeyVault(engine, LocalFileKek.from_file(ensure_kek_file(kek_path)))
    return IntakeApplication(engine, intake_event_store(network_dir, directory), vault, load_routing_keys(network_dir),
                             directory, after_commit=after_commit, clock=clock, release_wait=release_wait)
