"""A network service's event store, signing with its own key, checked against the signed directory."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.core.envelope import EnvelopeSigner, Sealer
from services.core.eventstore.store import EventStore
from services.core.identity.directory import Directory
from services.core.identity.errors import KeystoreError
from services.core.identity.keystore import load_service_signing_key
from services.core.identity.records import service_owner, signing_key_id
from services.core.messaging.topics import events_topic


def service_event_store(network_dir: Path, service: str, directory: Directory) -> EventStore:
    """``service``'s event store, signing as ``svc:<service>`` and publishing to its events topic.

    KeystoreError when the private key in the network folder is not the one the directory lists for it
    (a folder and a directory from two different ``network init`` runs).
    """
    owner = service_owner(service)
    key_id = signing_key_id(owner)
    private_key = load_service_signing_key(network_dir, service)
    listed = directory.signer(key_id).public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    if private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) != listed:
        msg = f"{network_dir}: the signing key of service {service} is not the one the directory lists as {key_id}"
        raise KeystoreError(msg)
    sealer = Sealer(EnvelopeSigner(owner, key_id, private_key), network_id=directory.network_id)
    return EventStore(sealer, owner, service, key_id,
                      events_topic(service))
