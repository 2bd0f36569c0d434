"""Wiring the referral service from its configuration: the network folder, the database, the deadlines.

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
from services.core.keyvault.routing_keys import load_routing_keys
from services.core.messaging.topics import events_topic
from services.referral.application.app import ReferralApplication
from services.referral.config import SERVICE
from services.referral.domain.deadlines import OfferDeadlines


def referral_event_store(network_dir: Path, directory: Directory) -> EventStore:
    """Referral's event store, signing as ``svc:referral`` with the key the directory lists for it."""
    owner, key_id = service_owner(SERVICE), signing_key_id(service_owner(SERVICE))
    private_key = load_service_signing_key(network_dir, SERVICE)
    listed = directory.signer(key_id).public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    if private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) != listed:
        msg = f"{network_dir}: referral's signing key is not the one the directory lists as {key_id}"
        raise KeystoreError(msg)
    return EventStore(Sealer(EnvelopeSigner(owner, key_id, private_key)), owner, SERVICE, key_id,
                      events_topic(SERVICE))


def build_application(engine: sa.Engine, network_dir: Path, *, directory: Directory | None = None,
                      deadlines: OfferDeadlines | None = None, after_commit: Callable[[], object] | None = None,
                      clock: Callable[[], int] = now_micros) -> ReferralApplication:
    """The application over ``engine`` (migrated) and the network folder's keys and directory."""
    directory = directory or load_directory(network_dir)
    return ReferralApplication(engine, referral_event_store(network_dir, directory), load_routing_keys(network_dir),
                               directory, deadlines=deadlines, clock=clock, after_commit=after_commit)
