"""Wiring intake from its configuration: the network folder, the database and the KEK file.

The edge calls :func:`build_application`; tests call it too, with a SQLite engine and their own clock.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.core.envelope import EnvelopeSigner, Sealer, now_micros
from services.core.eventstore import EventStore
from services.core.identity.directory import Directory
from services.core.identity.errors import KeystoreError
from services.core.identity.keystore import load_directory, load_service_signing_key
from services.core.identity.records import service_owner, signing_key_id
from services.core.keyvault import KeyVault, LocalFileKek
from services.core.keyvault.routing_keys import load_routing_keys
from services.core.messaging.topics import events_topic
from services.intake.application.context import ReleaseWait
from services.intake.application.service import IntakeApplication
from services.intake.kek import ensure_kek_file

SERVICE = "intake"


def _nothing() -> None:
    return None


def intake_event_store(network_dir: Path, directory: Directory) -> EventStore:
    """Intake's event store, signing as ``svc:intake`` with the key the directory lists for it."""
    owner, key_id = service_owner(SERVICE), signing_key_id(service_owner(SERVICE))
    private_key = load_service_signing_key(network_dir, SERVICE)
    listed = directory.signer(key_id).public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    if private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) != listed:
        msg = f"{network_dir}: intake's signing key is not the one the directory lists as {key_id}"
        raise KeystoreError(msg)
    signer = EnvelopeSigner(owner, key_id, private_key)
    return EventStore(Sealer(signer), owner, SERVICE, key_id, events_topic(SERVICE))


def build_application(engine: sa.Engine, network_dir: Path, kek_path: Path, *, directory: Directory | None = None,
                      after_commit: Callable[[], None] = _nothing, clock: Callable[[], int] = now_micros,
                      release_wait: ReleaseWait | None = None) -> IntakeApplication:
    """The application over ``engine`` (migrated), the network folder's keys and directory, and the KEK
    (created, mode 0600, when ``kek_path`` does not exist yet)."""
    directory = directory or load_directory(network_dir)
    vault = KeyVault(engine, LocalFileKek.from_file(ensure_kek_file(kek_path)))
    return IntakeApplication(engine, intake_event_store(network_dir, directory), vault, load_routing_keys(network_dir),
                             directory, after_commit=after_commit, clock=clock, release_wait=release_wait)
