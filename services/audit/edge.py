"""``python -m services.audit.edge``: audit's gRPC edge (plain grpcio, mTLS) for auditors and coordinators.

Reads ``NETWORK_DIR``, ``DATABASE_URL`` (the audit worker's database) and ``GRPC_LISTEN`` (default
``127.0.0.1:50053``); see services/core/grpcedge/settings.py for the rest (``GRPC_GRACE_SECONDS``,
``GRPC_MAX_WORKERS``). Audit publishes no events, so the edge runs no outbox relay (``OUTBOX_RELAY`` is
ignored). Migrates the database on start (the ledger tables and the worker's bookkeeping), then serves
AuditService (with health and reflection) until SIGTERM.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import grpc

from services.audit.adapters.database import migrate
from services.audit.bootstrap import PORT, SERVICE, build_queries
from services.audit.servicer import SERVICE_NAME, register
from services.core.grpcedge.main import EdgeStart, no_config, serve_from_env


def main() -> int:
    """Configure from the environment, migrate, serve until SIGTERM; the exit status."""
    return serve_from_env(SERVICE, PORT, [SERVICE_NAME], migrate, configure=no_config, build=_servicers,
                          relays=False)


def _servicers(start: EdgeStart, _: None) -> Callable[[grpc.Server], None]:
    return register(build_queries(start.engine, start.settings.network_dir, directory=start.directory))


if __name__ == "__main__":
    sys.exit(main())
