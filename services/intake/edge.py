"""``python -m services.intake.edge``: intake's gRPC edge (plain grpcio, mTLS), and its outbox relay thread.

Reads ``NETWORK_DIR``, ``DATABASE_URL``, ``KEYVAULT_KEK_PATH``, ``KAFKA_BOOTSTRAP_SERVERS`` (when it relays)
and ``GRPC_LISTEN`` (default ``127.0.0.1:50051``); see services/core/grpcedge/settings.py for the rest.
Migrates the database on start, then serves IntakeService (with health and reflection) until SIGTERM.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from services.core.grpcedge.deadline import call_deadline_remaining
from services.core.grpcedge.relay_task import RelayTask
from services.core.grpcedge.server import BackgroundTask, configure_logging, edge_engine, load_network_trust, run_edge
from services.core.grpcedge.settings import (
    DATABASE_URL,
    KEYVAULT_KEK_PATH,
    EdgeConfigError,
    EdgeSettings,
    env_required,
    kafka_bootstrap_from_env,
)
from services.intake.adapters.database import migrate
from services.intake.application.context import ReleaseWait
from services.intake.bootstrap import SERVICE, build_application
from services.intake.servicer import SERVICE_NAME, register

PORT = 50051
_LOG = logging.getLogger(__name__)


def main() -> int:
    """Configure from the environment, migrate, serve until SIGTERM; the exit status."""
    configure_logging()
    try:
        settings = EdgeSettings.from_env(PORT)
        url, kek_path = env_required(DATABASE_URL), Path(env_required(KEYVAULT_KEK_PATH))
        bootstrap = kafka_bootstrap_from_env() if settings.relay else None
    except EdgeConfigError as error:
        _LOG.error("intake edge: %s", error)
        return 2
    engine = edge_engine(url, settings)
    relay = RelayTask(engine, bootstrap) if bootstrap is not None else None
    try:
        migrate(engine)
        directory, ca_certificate = load_network_trust(settings.network_dir)
        application = build_application(
            engine, settings.network_dir, kek_path, directory=directory,
            after_commit=relay.wake if relay is not None else _nothing,
            release_wait=ReleaseWait(deadline_remaining=call_deadline_remaining))
        background: tuple[BackgroundTask, ...] = (relay,) if relay is not None else ()
        return run_edge(settings, SERVICE, directory, ca_certificate, register(application), [SERVICE_NAME],
                        background=background)
    finally:
        engine.dispose()


def _nothing() -> None:
    return None


if __name__ == "__main__":
    sys.exit(main())
