"""``python -m services.audit.edge``: audit's gRPC edge (plain grpcio, mTLS) for auditors and coordinators.

Reads ``NETWORK_DIR``, ``DATABASE_URL`` (the audit worker's database) and ``GRPC_LISTEN`` (default
``127.0.0.1:50053``); see services/core/grpcedge/settings.py for the rest (``GRPC_GRACE_SECONDS``,
``GRPC_MAX_WORKERS``). Audit publishes no events, so the edge runs no outbox relay (``OUTBOX_RELAY`` is
ignored). Migrates the database on start (the ledger tables and the worker's bookkeeping), then serves
AuditService (with health and reflection) until SIGTERM.
"""

from __future__ import annotations

import logging
import sys

from services.audit.adapters.database import migrate
from services.audit.bootstrap import PORT, SERVICE, build_queries
from services.audit.servicer import SERVICE_NAME, register
from services.core.grpcedge.server import configure_logging, edge_engine, load_network_trust, run_edge
from services.core.grpcedge.settings import DATABASE_URL, EdgeSettings, env_required

_LOG = logging.getLogger(__name__)


def main() -> int:
    """Configure from the environment, migrate, serve until SIGTERM; the exit status."""
    configure_logging()
    try:
        settings = EdgeSettings.from_env(PORT)
        url = env_required(DATABASE_URL)
    except ValueError as error:  # EdgeConfigError: the message names the variable
        _LOG.error("edge %s cannot start: %s", SERVICE, error)
        return 2
    engine = edge_engine(url, settings)
    try:
        migrate(engine)
        directory, ca_certificate = load_network_trust(settings.network_dir)
        queries = build_queries(engine, settings.network_dir, directory=directory)
        return run_edge(settings, SERVICE, directory, ca_certificate, register(queries), [SERVICE_NAME])
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
