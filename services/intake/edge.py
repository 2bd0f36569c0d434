"""``python -m services.intake.edge``: intake's gRPC edge (plain grpcio, mTLS), and its outbox relay thread.

Reads ``NETWORK_DIR``, ``DATABASE_URL``, ``KEYVAULT_KEK_PATH``, ``KAFKA_BOOTSTRAP_SERVERS`` (when it relays)
and ``GRPC_LISTEN`` (default ``127.0.0.1:50051``); see services/core/grpcedge/settings.py for the rest.
Migrates the database on start, then serves IntakeService (with health and reflection) until SIGTERM.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import grpc

from services.core.grpcedge.deadline import call_deadline_remaining
from services.core.grpcedge.main import EdgeStart, serve_from_env
from services.core.grpcedge.settings import KEYVAULT_KEK_PATH, env_required
from services.intake.adapters.database import migrate
from services.intake.application.context import ReleaseWait
from services.intake.bootstrap import SERVICE, build_application
from services.intake.servicer import SERVICE_NAME, register

PORT = 50051


def main() -> int:
    """Configure from the environment, migrate, serve until SIGTERM; the exit status."""
    return serve_from_env(SERVICE, PORT, [SERVICE_NAME], migrate,
                          configure=lambda: Path(env_required(KEYVAULT_KEK_PATH)), build=_servicers)


def _servicers(start: EdgeStart, kek_path: Path) -> Callable[[grpc.Server], None]:
    application = build_application(
        start.engine, start.settings.network_dir, kek_path, directory=start.directory,
        after_commit=start.after_commit or _nothing,
        release_wait=ReleaseWait(deadline_remaining=call_deadline_remaining))
    return register(application)


def _nothing() -> None:
    return None


if __name__ == "__main__":
    sys.exit(main())
