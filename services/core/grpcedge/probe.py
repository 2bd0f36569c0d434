"""``python -m services.core.grpcedge.probe --service intake``: is this pod's edge SERVING? (exit status 0 if so).

Kubernetes' built-in gRPC probe cannot be used: the edge requires a client certificate chaining to the network
CA at the TLS layer (``require_client_auth``), health included, and kubelet's probe speaks plaintext. So the
pod's exec probes (startup, readiness, liveness) run this small client instead. It dials the edge on the
loopback address over mTLS with the service's **probe certificate** (``services/<service>/probe.pem`` and
``probe.key`` in the network folder, made by ``referralnet network init``): a clientAuth certificate from the
network CA that names no organisation, so the edge's interceptor refuses it everything but gRPC health and
reflection. The service's own ``tls.pem`` cannot serve here: it is a serverAuth certificate, which the TLS
handshake refuses from a client ("unsupported certificate purpose").

The server's certificate is checked against the network CA and the service's name (its SAN DNS), as any
client of the edge does. Where it dials: ``--target``, else the port of ``GRPC_LISTEN`` (the edge's own
variable, inherited by the exec probe) on 127.0.0.1, else the service's default port (ADR 11).

Exit status: 0 SERVING; 1 anything else (NOT_SERVING while the edge drains, unreachable, timed out, refused);
2 the probe itself is misconfigured (no network folder, no probe certificate). One line on stderr says why,
which kubelet keeps in the pod's events.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2

from services.core.grpcedge.client import TARGET_NAME_OVERRIDE
from services.core.grpcedge.settings import GRPC_LISTEN, NETWORK_DIR, EdgeConfigError, split_listen
from services.core.identity.errors import IdentityError
from services.core.identity.keystore import TlsFiles, load_service_probe_tls

DEFAULT_PORTS: Mapping[str, int] = {"intake": 50051, "referral": 50052, "audit": 50053, "notify": 50054}
"""Each service's edge port when ``GRPC_LISTEN`` is not set (ADR 11; services/<service>/edge.py)."""

LOOPBACK = "127.0.0.1"
DEFAULT_TIMEOUT_S = 3.0
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
SERVING, NOT_SERVING, MISCONFIGURED = 0, 1, 2


class ProbeConfigError(ValueError):
    """The probe cannot run as configured (the message says what to change)."""


def probe_target(service: str, environ: Mapping[str, str] = os.environ) -> str:
    """``127.0.0.1:<port>``: the port of ``GRPC_LISTEN`` when set (whatever host it binds), else the default."""
    listen = environ.get(GRPC_LISTEN, "").strip()
    if listen:
        try:
            _, port = split_listen(listen)
        except EdgeConfigError as error:
            raise ProbeConfigError(str(error)) from None
        if port == 0:
            raise ProbeConfigError(f"{GRPC_LISTEN}={listen} asks for any free port: give the probe --target")
        return f"{LOOPBACK}:{port}"
    if service not in DEFAULT_PORTS:
        raise ProbeConfigError(f"no default port for service {service!r}: set {GRPC_LISTEN} or give --target")
    return f"{LOOPBACK}:{DEFAULT_PORTS[service]}"


def probe_credentials(network_dir: Path, service: str) -> TlsFiles:
    """The service's probe key and certificate and the network CA; ProbeConfigError saying how to get them."""
    try:
        return load_service_probe_tls(network_dir, service)
    except IdentityError as error:
        msg = (f"{error} (the probe's client certificate services/{service}/probe.pem and probe.key come from "
               "`referralnet network init`; a network folder made before it issued them needs re-creating)")
        raise ProbeConfigError(msg) from None


def check_health(target: str, service: str, tls: TlsFiles, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 health_service: str = "") -> tuple[bool, str]:
    """(SERVING?, what was seen) for one Health.Check of ``health_service`` ('' = the whole server) at ``target``."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.root_certificates, private_key=tls.private_key,
        certificate_chain=tls.certificate_chain)
    with grpc.secure_channel(target, credentials, options=[(TARGET_NAME_OVERRIDE, service)]) as channel:
        check = channel.unary_unary(HEALTH_CHECK, request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                                    response_deserializer=health_pb2.HealthCheckResponse.FromString)
        try:
            response: health_pb2.HealthCheckResponse = check(
                health_pb2.HealthCheckRequest(service=health_service), timeout=timeout_s)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            name = code.name if code is not None else type(error).__name__
            return False, f"health check failed: {name}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return response.status == health_pb2.HealthCheckResponse.SERVING, status


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    """Probe once; the exit status (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m services.core.grpcedge.probe",
                                     description="Exit 0 when this pod's gRPC edge answers health SERVING over mTLS.")
    parser.add_argument("--service", required=True, help="the edge's service (intake, referral, audit...)")
    parser.add_argument("--target", help="host:port to dial (default: 127.0.0.1 and the port of $GRPC_LISTEN)")
    parser.add_argument("--network-dir", type=Path, help=f"the network folder (default: ${NETWORK_DIR})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds for the whole check")
    parser.add_argument("--health-service", default="", help="the health service name to ask for ('' = server)")
    args = parser.parse_args(argv)
    try:
        folder = args.network_dir or Path(environ.get(NETWORK_DIR, "").strip())
        if not str(folder) or str(folder) == ".":
            raise ProbeConfigError(f"{NETWORK_DIR} is not set and no --network-dir was given")
        target = args.target or probe_target(args.service, environ)
        tls = probe_credentials(folder, args.service)
    except ProbeConfigError as error:
        print(f"probe {args.service}: {error}", file=sys.stderr)
        return MISCONFIGURED
    serving, seen = check_health(target, args.service, tls, timeout_s=args.timeout,
                                 health_service=args.health_service)
    print(f"probe {args.service} at {target}: {seen}", file=sys.stderr)
    return SERVING if serving else NOT_SERVING


if __name__ == "__main__":
    sys.exit(main())
