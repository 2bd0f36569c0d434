"""``python -m services.notify.edge``: notify's gRPC edge (plain grpcio, mTLS), and its outbox relay thread.

Reads ``NETWORK_DIR``, ``DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS`` (when it relays) and ``GRPC_LISTEN``
(default ``127.0.0.1:50054``); see services/core/grpcedge/settings.py for the rest. Migrates the database on
start, then serves NotifyService (with health and reflection) until SIGTERM. The relay publishes what the
notify worker appends to the same database (NoticeUndeliverable) to ``referralnet.notify.events.v1``.
The edge sends no notices: the worker does.
"""

from __future__ import annotations

import logging
import sys

from services.core.grpcedge.relay_task import RelayTask
from services.core.grpcedge.server import BackgroundTask, configure_logging, edge_engine, load_network_trust, run_edge
from services.core.grpcedge.settings import DATABASE_URL, EdgeSettings, env_required, kafka_bootstrap_from_env
from services.notify.adapters.database import migrate
from services.notify.bootstrap import build_application
from services.notify.config import PORT, SERVICE
from services.notify.servicer import SERVICE_NAME, register

_LOG = logging.getLogger(__name__)


def main() -> int:
    """Configure from the environment, migrate, serve until SIGTERM; the exit status."""
    configure_logging()
    try:
        settings = EdgeSettings.from_env(PORT)
        url = env_required(DATABASE_URL)
    except ValueError as error:  # EdgeConfigError too: the message names the variable
        _LOG.error("edge %s cannot start: %s", SERVICE, error)
        return 2
    engine = edge_engine(url, settings)
    relay = RelayTask(engine, kafka_bootstrap_from_env()) if settings.relay else None
    try:
        migrate(engine)
        directory, ca_certificate = load_network_trust(settings.network_dir)
        application = build_application(engine, settings.network_dir, directory=directory, secrets={})
        background: tuple[BackgroundTask, ...] = (relay,) if relay is not None else ()
        return run_edge(settings, SERVICE, directory, ca_certificate, register(application), [SERVICE_NAME],
                        background=background)
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
