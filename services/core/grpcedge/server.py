"""The edge's gRPC server: mTLS, the identity interceptor, health, reflection, and a graceful stop on SIGTERM.

``build_edge`` (or ``build_server`` for just the ``grpc.Server``) assembles one, bound but not started;
``run_edge`` (called by :func:`services.core.grpcedge.main.serve_from_env`, every service edge's ``main``)
serves until SIGTERM or SIGINT, then marks health NOT_SERVING, stops accepting calls and lets those in
flight finish within the grace period, stops its background tasks (the outbox relay) and returns 0. It
logs ``edge <service> listening on <host:port>`` once it serves, and configures the process's tracing as
``<service>-edge`` (services/core/telemetry/setup.py). A plain grpcio process: nothing here imports eventlet or nameko.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn, Protocol

import grpc
import sqlalchemy as sa
from cryptography import x509
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.core.database import create_engine
from services.core.grpcedge.interceptor import EdgeInterceptor
from services.core.grpcedge.settings import EdgeSettings, split_listen
from services.core.identity.directory import Directory
from services.core.identity.keystore import load_ca_certificate, load_directory, load_service_tls
from services.core.telemetry.setup import configure_tracing

_LOG = logging.getLogger(__name__)

#: Server options: never share a port with another process (grpc enables SO_REUSEPORT by default on Linux,
#: which would let a second edge bind an address in use and split the calls between the two).
SERVER_OPTIONS: tuple[tuple[str, int], ...] = (("grpc.so_reuseport", 0),)
SERVING = health_pb2.HealthCheckResponse.SERVING
_STOP_POLL_S = 0.1
_STOP_SLACK_S = 5.0


class EdgeStartError(RuntimeError):
    """The edge could not start (e.g. its address is taken); the message says what to change."""


class BackgroundTask(Protocol):
    """Something the edge runs beside the server (the outbox relay): started after it, stopped after it."""

    def start(self) -> None:
        """Start (returns at once; the work runs in its own thread)."""

    def stop(self, timeout: float) -> None:
        """Stop, waiting at most ``timeout`` seconds."""


@dataclass
class Edge:
    """A bound, not yet started edge server, its health servicer and the address it listens on."""

    service: str
    server: grpc.Server
    health: health.HealthServicer
    interceptor: EdgeInterceptor
    address: str

    @property
    def port(self) -> int:
        """The port bound (the real one when ``GRPC_LISTEN`` asked for port 0)."""
        return split_listen(self.address)[1]

    def start(self) -> None:
        """Start serving."""
        self.server.start()

    def stop(self, grace_seconds: float) -> int:
        """Health NOT_SERVING, refuse new calls, let calls in flight finish for ``grace_seconds``, wait for it.

        Returns how many calls' servicer code is still running: grpc cancelled them, but a Python thread
        cannot be stopped from outside, so they would keep the process alive.
        """
        self.health.enter_graceful_shutdown()
        stopped = self.server.stop(grace_seconds)
        if not stopped.wait(grace_seconds + _STOP_SLACK_S):
            _LOG.warning("edge %s: server still stopping %.1fs after the grace period", self.service, _STOP_SLACK_S)
        return self.interceptor.in_flight


def edge_engine(url: str, settings: EdgeSettings) -> sa.Engine:
    """An edge's engine: on PostgreSQL, a pool as large as the threads that serve calls."""
    if url.strip().startswith("sqlite"):
        return create_engine(url)
    return create_engine(url, pool_size=settings.max_workers, max_overflow=4, pool_pre_ping=True)


def load_network_trust(network_dir: Path) -> tuple[Directory, x509.Certificate]:
    """The signed directory (verified against the CA) and the network CA certificate, from the network folder."""
    ca_certificate = load_ca_certificate(network_dir)
    return load_directory(network_dir, ca_certificate=ca_certificate), ca_certificate


def build_edge(settings: EdgeSettings, service: str, directory: Directory, ca_certificate: x509.Certificate,  # noqa: PLR0917 -- the agreed edge API
               register: Callable[[grpc.Server], None], service_names: Sequence[str]) -> Edge:
    """A server for ``service``: interceptor, app servicers (``register``), health, reflection, bound to mTLS.

    ``service_names`` are the full names of the services ``register`` adds (for health and reflection).
    ``EdgeStartError`` when ``settings.listen`` cannot be bound.
    """
    tls = load_service_tls(settings.network_dir, service)
    credentials = grpc.ssl_server_credentials(
        [(tls.private_key, tls.certificate_chain)], root_certificates=tls.root_certificates,
        require_client_auth=True)
    executor = ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix=f"edge-{service}")
    interceptor = EdgeInterceptor(directory, ca_certificate)
    server = grpc.server(executor, interceptors=[interceptor], options=list(SERVER_OPTIONS))
    register(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *service_names):
        health_servicer.set(name, SERVING)
    reflection.enable_server_reflection((*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    host, _ = split_listen(settings.listen)
    try:
        port = server.add_secure_port(settings.listen, credentials)
    except RuntimeError:
        server.stop(None)
        msg = (f"edge {service} cannot listen on {settings.listen}: the address is in use or not available here "
               f"(set GRPC_LISTEN to a free host:port)")
        raise EdgeStartError(msg) from None
    return Edge(service, server, health_servicer, interceptor, f"{host}:{port}")


def build_server(settings: EdgeSettings, service: str, directory: Directory, ca_certificate: x509.Certificate,  # noqa: PLR0917 -- the agreed edge API
                 register: Callable[[grpc.Server], None], service_names: Sequence[str]) -> grpc.Server:
    """``build_edge(...).server``: the bound, not yet started ``grpc.Server``."""
    return build_edge(settings, service, directory, ca_certificate, register, service_names).server


def run_edge(settings: EdgeSettings, service: str, directory: Directory, ca_certificate: x509.Certificate,  # noqa: PLR0917 -- the agreed edge API
             register: Callable[[grpc.Server], None], service_names: Sequence[str], *,
             background: Sequence[BackgroundTask] = (), stop: threading.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set), then stop gracefully; 0, or 1 if it could not start.

    Signal handlers are installed only when called from the main thread (pass ``stop`` otherwise). If some
    call's servicer code is still running after the grace period (grpc has cancelled the call, but its
    thread cannot be stopped and would hold the process), the process exits at once with status 0 after
    flushing the logs, instead of returning.
    """
    configure_logging()
    configure_tracing(edge_service_name(service))
    stop = stop or threading.Event()
    try:
        edge = build_edge(settings, service, directory, ca_certificate, register, service_names)
    except EdgeStartError as exc:
        _LOG.error("%s", exc)
        return 1
    started: list[BackgroundTask] = []
    with _stop_on_signals(stop, service):
        try:
            edge.start()
            for task in background:
                task.start()
                started.append(task)
            _LOG.info("edge %s listening on %s", service, edge.address)
            while not stop.is_set():  # never wait on the Event here: a signal handler sets it (see below)
                time.sleep(_STOP_POLL_S)
            _LOG.info("edge %s stopping: calls in flight have %.1fs to finish", service, settings.grace_seconds)
        finally:
            still_running = edge.stop(settings.grace_seconds)
            for task in reversed(started):
                task.stop(timeout=settings.grace_seconds)
    if still_running:
        _exit_now(service, still_running)
    _LOG.info("edge %s stopped", service)
    return 0


def edge_service_name(service: str) -> str:
    """The edge process's name in traces: ``intake-edge``."""
    return f"{service}-edge"


def _exit_now(service: str, still_running: int) -> NoReturn:
    """End the process although servicer threads still run (they would block the interpreter's exit)."""
    _LOG.warning("edge %s stopped with %d call(s) still running past the grace period: exiting without them",
                 service, still_running)
    logging.shutdown()
    os._exit(0)


@contextmanager
def _stop_on_signals(stop: threading.Event, service: str) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` while the block runs (main thread only); the old handlers come back after.

    The handler runs in the main thread between bytecodes; the main thread only ever polls ``is_set``
    (no lock held), so ``stop.set()`` in the handler cannot deadlock on the Event's own lock.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            _LOG.info("edge %s: signal %d received", service, signum)
        stop.set()

    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr at ``level`` unless the process configured logging already (a no-op then)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
