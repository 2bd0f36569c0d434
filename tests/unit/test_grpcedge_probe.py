"""The edge's exec health probe: a real edge over mTLS on loopback, the probe's certificate, and its exit status.

What is real: a network folder from ``init_network``, the edge server (``build_edge``: mTLS, the identity
interceptor, health) on a free loopback port, and the probe's gRPC client. Nothing else runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.core.grpcedge.client import TARGET_NAME_OVERRIDE, org_channel
from services.core.grpcedge.probe import (
    MISCONFIGURED,
    NOT_SERVING,
    SERVING,
    ProbeConfigError,
    check_health,
    main,
    probe_credentials,
    probe_target,
)
from services.core.grpcedge.server import Edge, build_edge, load_network_trust
from services.core.grpcedge.settings import EdgeSettings
from services.core.identity.keystore import load_service_tls
from services.core.identity.network import init_network
from services.core.identity.seed import SEED_ORGANISATIONS

SERVICE = "intake"
PING = "/referralnet.test.v1.Probe/Ping"


def _ping_handler() -> grpc.GenericRpcHandler:
    """One application method (not exempt from the identity check), answering empty bytes."""
    ping: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(lambda request, context: b"",
                                               request_deserializer=None, response_serializer=None)
    return grpc.method_handlers_generic_handler("referralnet.test.v1.Probe", {"Ping": ping})


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("probe") / "network"
    init_network(folder)
    return folder


@pytest.fixture
def edge(network: Path) -> Iterator[Edge]:
    directory, ca_certificate = load_network_trust(network)
    settings = EdgeSettings(listen="127.0.0.1:0", network_dir=network)
    served = build_edge(settings, SERVICE, directory, ca_certificate,
                        lambda server: server.add_generic_rpc_handlers((_ping_handler(),)), [])
    served.start()
    yield served
    served.stop(0)


def _probe(network: Path, *args: str, environ: dict[str, str] | None = None) -> int:
    return main(["--service", SERVICE, "--network-dir", str(network), "--timeout", "3", *args], environ or {})


def _ping(channel: grpc.Channel) -> grpc.StatusCode:
    call: Any = channel.unary_unary(PING)
    try:
        call(b"", timeout=3)
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        return error.code()
    return grpc.StatusCode.OK


def test_a_serving_edge_passes_the_probe(network, edge):
    assert _probe(network, "--target", edge.address) == SERVING


def test_the_probe_dials_the_port_of_grpc_listen_on_loopback(network, edge, capsys):
    environ = {"GRPC_LISTEN": f"0.0.0.0:{edge.port}", "NETWORK_DIR": str(network)}
    assert main(["--service", SERVICE], environ) == SERVING
    assert f"127.0.0.1:{edge.port}: SERVING" in capsys.readouterr().err


def test_a_draining_edge_fails_the_probe(network, edge, capsys):
    edge.health.enter_graceful_shutdown()  # what SIGTERM does first
    assert _probe(network, "--target", edge.address) == NOT_SERVING
    assert "NOT_SERVING" in capsys.readouterr().err


def test_nothing_listening_fails_the_probe_within_its_timeout(network, edge, capsys):
    port = edge.port
    edge.stop(0)
    assert _probe(network, "--target", f"127.0.0.1:{port}", "--timeout", "1") == NOT_SERVING
    error = capsys.readouterr().err
    assert "UNAVAILABLE" in error or "DEADLINE_EXCEEDED" in error


def test_the_service_server_certificate_is_refused_as_a_client_hence_the_probe_certificate(network, edge):
    """Why the probe has its own certificate: TLS refuses a serverAuth-only certificate from a client."""
    serving, seen = check_health(edge.address, SERVICE, load_service_tls(network, SERVICE), timeout_s=2)
    assert not serving
    assert "UNAVAILABLE" in seen
    assert check_health(edge.address, SERVICE, probe_credentials(network, SERVICE), timeout_s=3) == (True, "SERVING")


def test_the_probe_certificate_reaches_health_only_not_the_api(network, edge):
    tls = probe_credentials(network, SERVICE)
    credentials = grpc.ssl_channel_credentials(tls.root_certificates, tls.private_key, tls.certificate_chain)
    with grpc.secure_channel(edge.address, credentials, options=[(TARGET_NAME_OVERRIDE, SERVICE)]) as channel:
        assert _ping(channel) == grpc.StatusCode.UNAUTHENTICATED
    org = SEED_ORGANISATIONS[0].org_id  # an organisation of the directory does get through (the test is not vacuous)
    with org_channel(network, org, edge.address, server_name=SERVICE) as channel:
        assert _ping(channel) == grpc.StatusCode.OK


def test_a_network_folder_without_probe_certificate_is_a_configuration_error(network, tmp_path, capsys):
    old = tmp_path / "network"
    shutil.copytree(network, old)
    (old / "services" / SERVICE / "probe.pem").unlink()
    assert _probe(old, "--target", "127.0.0.1:1") == MISCONFIGURED
    assert "referralnet network init" in capsys.readouterr().err


def test_without_a_network_folder_the_probe_says_so(capsys):
    assert main(["--service", SERVICE], {}) == MISCONFIGURED
    assert "NETWORK_DIR" in capsys.readouterr().err


@pytest.mark.parametrize(("listen", "target"), [
    ("0.0.0.0:50051", "127.0.0.1:50051"),
    ("[::]:50052", "127.0.0.1:50052"),
    ("10.1.2.3:6000", "127.0.0.1:6000"),
])
def test_probe_target_takes_the_port_of_grpc_listen(listen, target):
    assert probe_target(SERVICE, {"GRPC_LISTEN": listen}) == target


def test_probe_target_defaults_to_the_service_port():
    assert probe_target("referral", {}) == "127.0.0.1:50052"
    assert probe_target("audit", {}) == "127.0.0.1:50053"


@pytest.mark.parametrize(("service", "environ", "message"), [
    ("intake", {"GRPC_LISTEN": "0.0.0.0:0"}, "any free port"),
    ("intake", {"GRPC_LISTEN": "no-port"}, "host:port"),
    ("unknown", {}, "no default port"),
])
def test_probe_target_refuses_what_it_cannot_dial(service, environ, message):
    with pytest.raises(ProbeConfigError, match=message):
        probe_target(service, environ)
