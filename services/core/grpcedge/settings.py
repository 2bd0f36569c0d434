"""What an edge process reads from its environment (ADR 11), checked once at start with errors that name the variable.

| variable | what | default |
|---|---|---|
| ``GRPC_LISTEN`` | ``host:port`` to bind (port 0: any free port, logged when ready) | ``127.0.0.1:<port>`` |
| ``NETWORK_DIR`` | the network folder: CA, the service's TLS key and certificate, the signed directory | required |
| ``GRPC_GRACE_SECONDS`` | on SIGTERM, how long calls in flight may take to finish | 10 |
| ``GRPC_MAX_WORKERS`` | threads serving calls (calls at once) | 16 |
| ``OUTBOX_RELAY`` | ``on``: the edge relays its outbox to Kafka in a thread; ``off``: a separate relay does | on |

Services read their other variables (``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``, ``KEYVAULT_KEK_PATH``)
with ``env_required`` and ``kafka_bootstrap_from_env``, so every missing variable is reported the same way.
The edge's relay thread (``RelayTask``) talks TLS to Kafka when ``KAFKA_SECURITY_PROTOCOL=SSL`` and
``KAFKA_SSL_CAFILE``/``KAFKA_SSL_CERTFILE``/``KAFKA_SSL_KEYFILE`` say so (services/core/messaging/security.py).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

GRPC_LISTEN = "GRPC_LISTEN"
NETWORK_DIR = "NETWORK_DIR"
GRPC_GRACE_SECONDS = "GRPC_GRACE_SECONDS"
GRPC_MAX_WORKERS = "GRPC_MAX_WORKERS"
OUTBOX_RELAY = "OUTBOX_RELAY"
KAFKA_BOOTSTRAP_SERVERS = "KAFKA_BOOTSTRAP_SERVERS"
DATABASE_URL = "DATABASE_URL"
KEYVAULT_KEK_PATH = "KEYVAULT_KEK_PATH"

_SWITCH = {"on": True, "off": False}
_MAX_PORT = 65535


class EdgeConfigError(ValueError):
    """An environment variable an edge needs is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class EdgeSettings:
    """How one edge process listens, where its network folder is, how it stops, whether it relays."""

    listen: str
    network_dir: Path
    grace_seconds: float = 10.0
    max_workers: int = 16
    relay: bool = True

    def __post_init__(self) -> None:
        split_listen(self.listen)
        if not math.isfinite(self.grace_seconds) or self.grace_seconds < 0:
            raise EdgeConfigError(f"{GRPC_GRACE_SECONDS} must be a number of seconds >= 0, not {self.grace_seconds}")
        if self.max_workers < 1:
            raise EdgeConfigError(f"{GRPC_MAX_WORKERS} must be at least 1, not {self.max_workers}")

    @classmethod
    def from_env(cls, default_port: int, environ: Mapping[str, str] = os.environ) -> EdgeSettings:
        """The settings from ``environ``; ``EdgeConfigError`` naming the first variable that is wrong."""
        listen = _optional(environ, GRPC_LISTEN) or f"127.0.0.1:{default_port}"
        return cls(
            listen=listen,
            network_dir=Path(env_required(NETWORK_DIR, environ)),
            grace_seconds=_number(environ, GRPC_GRACE_SECONDS, 10.0),
            max_workers=_integer(environ, GRPC_MAX_WORKERS, 16),
            relay=_switch(environ, OUTBOX_RELAY, default=True),
        )


def env_required(name: str, environ: Mapping[str, str] = os.environ) -> str:
    """The value of ``name`` (trimmed); ``EdgeConfigError`` naming it when it is unset or blank."""
    value = _optional(environ, name)
    if value is None:
        raise EdgeConfigError(f"{name} is not set: the edge needs it (see services/core/grpcedge/settings.py)")
    return value


def kafka_bootstrap_from_env(environ: Mapping[str, str] = os.environ) -> list[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` (``host:port,host:port``) as a list; ``EdgeConfigError`` if it names none."""
    servers = [part.strip() for part in env_required(KAFKA_BOOTSTRAP_SERVERS, environ).split(",") if part.strip()]
    if not servers:
        raise EdgeConfigError(f"{KAFKA_BOOTSTRAP_SERVERS} names no broker (expected host:port,host:port)")
    for server in servers:
        _split_host_port(server, KAFKA_BOOTSTRAP_SERVERS)
    return servers


def split_listen(listen: str) -> tuple[str, int]:
    """``(host, port)`` of a ``GRPC_LISTEN`` value (``127.0.0.1:50051``, ``[::]:50051``, ``0.0.0.0:0``)."""
    return _split_host_port(listen, GRPC_LISTEN)


def _split_host_port(value: str, name: str) -> tuple[str, int]:
    host, separator, port_text = value.strip().rpartition(":")
    problem = f"{name} must be host:port (e.g. 127.0.0.1:50051), not {value!r}"
    if not separator or not host or not port_text.isdigit():
        raise EdgeConfigError(problem)
    port = int(port_text)
    if port > _MAX_PORT:
        raise EdgeConfigError(f"{name}: port {port} is out of range (0-{_MAX_PORT})")
    return host, port


def _optional(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    text = _optional(environ, name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise EdgeConfigError(f"{name} must be a number of seconds, not {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise EdgeConfigError(f"{name} must be a number of seconds >= 0, not {text!r}")
    return value


def _integer(environ: Mapping[str, str], name: str, default: int) -> int:
    text = _optional(environ, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise EdgeConfigError(f"{name} must be a whole number, not {text!r}") from None
    if value < 1:
        raise EdgeConfigError(f"{name} must be at least 1, not {value}")
    return value


def _switch(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    text = _optional(environ, name)
    if text is None:
        return default
    try:
        return _SWITCH[text.lower()]
    except KeyError:
        raise EdgeConfigError(f"{name} must be 'on' or 'off', not {text!r}") from None
