"""The ``main()`` every service's edge runs: read the environment, migrate, build the servicers, serve.

:func:`serve_from_env` reads the edge settings (services/core/grpcedge/settings.py), ``DATABASE_URL``,
``KAFKA_BOOTSTRAP_SERVERS`` when the edge relays, and the service's own settings (``configure``); a missing
or malformed one is logged as ``edge <service> cannot start: <what>`` and gives exit status 2. Then it makes
the engine, migrates, loads the CA-signed directory, lets the service build its servicers from an
:class:`EdgeStart`, and serves with :func:`run_edge` (the outbox relay as its background task), disposing
of the engine at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
import sqlalchemy as sa

from services.core.grpcedge.relay_task import RelayTask
from services.core.grpcedge.server import configure_logging, edge_engine, load_network_trust, run_edge
from services.core.grpcedge.settings import DATABASE_URL, EdgeSettings, env_required, kafka_bootstrap_from_env
from services.core.identity.directory import Directory

_LOG = logging.getLogger(__name__)
Config = TypeVar("Config")


@dataclass(frozen=True)
class EdgeStart:
    """What a service builds its servicers from: the settings, the migrated engine, the directory, the relay."""

    settings: EdgeSettings
    engine: sa.Engine
    directory: Directory
    relay: RelayTask | None

    @property
    def after_commit(self) -> Callable[[], None] | None:
        """The relay's wake-up (publish what a use case just committed), None when the edge does not relay."""
        return self.relay.wake if self.relay is not None else None


def serve_from_env(service: str, port: int, service_names: Sequence[str], migrate: Callable[[sa.Engine], object],
                   *, configure: Callable[[], Config],
                   build: Callable[[EdgeStart, Config], Callable[[grpc.Server], None]], relays: bool = True) -> int:
    """Configure from the environment, migrate, serve until SIGTERM; the exit status (see the module doc).

    ``configure`` reads the service's own settings (raising ValueError naming the variable); ``build`` gets
    them and returns the servicers' ``register``. ``relays=False`` for an edge that publishes no events.
    """
    configure_logging()
    try:
        settings = EdgeSettings.from_env(port)
        url = env_required(DATABASE_URL)
        bootstrap = kafka_bootstrap_from_env() if relays and settings.relay else None
        config = configure()
    except ValueError as error:  # EdgeConfigError too: the message names the variable
        _LOG.error("edge %s cannot start: %s", service, error)
        return 2
    engine = edge_engine(url, settings)
    relay = RelayTask(engine, bootstrap) if bootstrap is not None else None
    try:
        migrate(engine)
        directory, ca_certificate = load_network_trust(settings.network_dir)
        register = build(EdgeStart(settings, engine, directory, relay), config)
        return run_edge(settings, service, directory, ca_certificate, register, service_names,
                        background=(relay,) if relay is not None else ())
    finally:
        engine.dispose()


def no_config() -> None:
    """For an edge with no settings of its own."""
    return None
