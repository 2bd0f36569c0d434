"""``python -m services.referral.edge``: referral's gRPC edge (plain grpcio, mTLS), and its outbox relay thread.

Reads ``NETWORK_DIR``, ``DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS`` (when it relays), ``OFFER_DEADLINES``
and ``GRPC_LISTEN`` (default ``127.0.0.1:50052``); see services/core/grpcedge/settings.py for the rest.
Migrates the database on start, then serves ReferralService (with health and reflection) until SIGTERM.
The relay also publishes what the referral worker appends to the same database.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import grpc

from services.core.grpcedge.main import EdgeStart, serve_from_env
from services.referral.adapters.database import migrate
from services.referral.bootstrap import build_application
from services.referral.config import PORT, SERVICE, offer_deadlines
from services.referral.domain.deadlines import OfferDeadlines
from services.referral.servicer import SERVICE_NAME, register


def main() -> int:
    """Configure from the environment, migrate, serve until SIGTERM; the exit status."""
    return serve_from_env(SERVICE, PORT, [SERVICE_NAME], migrate, configure=offer_deadlines, build=_servicers)


def _servicers(start: EdgeStart, deadlines: OfferDeadlines) -> Callable[[grpc.Server], None]:
    return register(build_application(start.engine, start.settings.network_dir, directory=start.directory,
                                      deadlines=deadlines, after_commit=start.after_commit))


if __name__ == "__main__":
    sys.exit(main())
