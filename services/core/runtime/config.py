"""The nameko config keys the runtime reads (``nameko run --config worker.yaml``), read once at setup.

| key | what | default |
|---|---|---|
| ``KAFKA_BOOTSTRAP_SERVERS`` | ``host:port,...`` or a list | required |
| ``KAFKA_CONSUMER_OPTIONS`` | extra KafkaConsumer settings (``max_poll_records``, TLS...) | none |
| ``KAFKA_PRODUCER_OPTIONS`` | extra settings of the dead-letter producer | none |
| ``DATABASE_URL`` | the service's own database (SQLAlchemy URL; ``postgres://`` accepted) | required |
| ``NETWORK_DIR`` | network folder: its CA-verified directory resolves signing keys | required |
| ``EVENT_STORE_SERVICE`` | the network service whose events this worker appends and signs | for EventStoreProvider |
| ``KEYVAULT_KEK_PATH`` | the key vault's key-encryption key file | for KeyVaultProvider |
| ``KEYVAULT_DATABASE_URL`` | the key vault's database | ``DATABASE_URL`` |
| ``max_workers`` | nameko's worker pool size: records handled at once (back-pressure) | 10 |
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.core.database import normalize_url
from services.core.identity.directory import Directory
from services.core.identity.keystore import load_directory

KAFKA_BOOTSTRAP_SERVERS = "KAFKA_BOOTSTRAP_SERVERS"
KAFKA_CONSUMER_OPTIONS = "KAFKA_CONSUMER_OPTIONS"
KAFKA_PRODUCER_OPTIONS = "KAFKA_PRODUCER_OPTIONS"
DATABASE_URL = "DATABASE_URL"
NETWORK_DIR = "NETWORK_DIR"
EVENT_STORE_SERVICE = "EVENT_STORE_SERVICE"
KEYVAULT_KEK_PATH = "KEYVAULT_KEK_PATH"
KEYVAULT_DATABASE_URL = "KEYVAULT_DATABASE_URL"


class RuntimeConfigError(Exception):
    """A config key the runtime needs is missing or malformed; the message names the key."""


def required(config: Mapping[str, Any], key: str) -> str:
    """A non-empty text value of ``key``."""
    value = config.get(key)
    if not isinstance(value, str) or not value.strip():
        msg = f"{key} is not set in the nameko config (see services/core/runtime/config.py)"
        raise RuntimeConfigError(msg)
    return value.strip()


def bootstrap_servers(config: Mapping[str, Any]) -> list[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` as a list of ``host:port``."""
    value = config.get(KAFKA_BOOTSTRAP_SERVERS)
    servers = value if isinstance(value, list) else required(config, KAFKA_BOOTSTRAP_SERVERS).split(",")
    cleaned = [str(server).strip() for server in servers if str(server).strip()]
    if not cleaned:
        msg = f"{KAFKA_BOOTSTRAP_SERVERS} names no broker"
        raise RuntimeConfigError(msg)
    return cleaned


def options(config: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A mapping of extra client settings (empty when the key is absent)."""
    value = config.get(key) or {}
    if not isinstance(value, Mapping):
        msg = f"{key} must be a mapping of client settings, not {type(value).__name__}"
        raise RuntimeConfigError(msg)
    return dict(value)


def database_url(config: Mapping[str, Any], key: str = DATABASE_URL) -> str:
    """A SQLAlchemy URL; ``postgres://`` and ``postgresql://`` select the psycopg 3 driver."""
    return normalize_url(required(config, key))


def network_dir(config: Mapping[str, Any]) -> Path:
    """``NETWORK_DIR`` as a path."""
    return Path(required(config, NETWORK_DIR))


@functools.cache
def directory_at(folder: Path) -> Directory:
    """The network directory in ``folder``, CA signature checked, loaded once per process."""
    return load_directory(folder)
