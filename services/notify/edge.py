"""``python -m services.notify.edge``: notify's gRPC edge (plain grpcio, mTLS), and its outbox relay thread.

Reads ``NETWORK_DIR``, ``DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS`` (when it relays) and ``GRPC_LISTEN``
(default ``127.0.0.1:50054``); see services/core/grpcedge/settings.py for the rest. Migrates the database on
start, then serves NotifyService (with health and reflection) until SIGTERM. The relay publishes what the
notify worker appends to the same database (NoticeUndeliverable) to ``referralnet.notify.events.v1``.
The edge sends no notices: the worker does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import grpc

from services.core.grpcedge.main import EdgeStart, no_config, serve_from_env
from services.notify.adapters.database import migrate
from services.notify.bootstrap import build_application
from services.notify.config import PORT, SERVICE
from services.notify.servicer import SERVICE_NAME, register


def main() -> int:
    """Configure from the environment, migrate, serve until SIGTERM; the exit status."""
    return serve_from_env(SERVICE, PORT, [SERVICE_NAME], migrate, configure=no_config, build=_servicers)


def _servicers(start: EdgeStart, _: None) -> Callable[[grpc.Server], None]:
    return register(build_application(start.engine, start.settings.network_dir, directory=start.directory,
                                      secrets={}))


if __name__ == "__main__":
    sys.exit(main())
