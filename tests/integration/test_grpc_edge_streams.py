"""The edge interceptor with every handler shape (unary/stream requests and responses), in this process.

What is real: a ``network init`` network, the edge server from ``build_edge`` (mTLS, interceptor) on a free
loopback port, grpcio clients with an org's certificate. Replaced: the servicer, a generic handler on raw
bytes (the proto API has no streaming method, but the interceptor must wrap whichever kind a service adds).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from services.core.application import PermissionDenied
from services.core.grpcedge.caller import caller_of
from services.core.grpcedge.client import language_metadata, org_channel
from services.core.grpcedge.deadline import call_deadline_remaining
from services.core.grpcedge.interceptor import INTERNAL_MESSAGE
from services.core.grpcedge.server import Edge, build_edge, load_network_trust
from services.core.grpcedge.settings import EdgeSettings
from services.core.identity.network import init_network

pytestmark = pytest.mark.integration

POLICE = "pol-mdd-01"
SECRET = "SINT-0042"
SERVICE_NAME = "test.Streams"


def caller_tag() -> str:
    caller = caller_of()
    remaining = call_deadline_remaining()
    return f"{caller.org_id}/{caller.language}/{'deadline' if remaining is not None else 'none'}"


def count(request: bytes, _context: grpc.ServicerContext) -> Iterator[bytes]:
    """``b"<n>"``: n responses; ``b"<n>!denied"`` / ``b"<n>!crash"``: n responses, then that error."""
    text = request.decode()
    number, _, failure = text.partition("!")
    for index in range(int(number)):
        yield f"{index}:{caller_tag()}".encode()
        if failure == "slow":
            time.sleep(0.2)
    if failure == "denied":
        raise PermissionDenied(es="no es su derivación", en="not your referral")
    if failure == "crash":
        raise RuntimeError(SECRET)


def join(requests: Iterator[bytes], _context: grpc.ServicerContext) -> bytes:
    parts = []
    for request in requests:
        if request == b"crash":
            raise RuntimeError(SECRET)
        parts.append(f"{request.decode()}@{caller_tag()}")
    return ",".join(parts).encode()


def echo(requests: Iterator[bytes], _context: grpc.ServicerContext) -> Iterator[bytes]:
    for request in requests:
        if request == b"denied":
            raise PermissionDenied(es="no es su derivación", en="not your referral")
        yield f"{request.decode()}@{caller_tag()}".encode()


def register(server: grpc.Server) -> None:
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE_NAME, {
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Join": grpc.stream_unary_rpc_method_handler(join),
        "Echo": grpc.stream_stream_rpc_method_handler(echo),
    })])


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_network(tmp_path_factory.mktemp("streams-network") / "network").layout.root


@pytest.fixture(scope="module")
def edge(network: Path) -> Iterator[Edge]:
    directory, ca_certificate = load_network_trust(network)
    settings = EdgeSettings(listen="127.0.0.1:0", network_dir=network, max_workers=4)
    edge = build_edge(settings, "referral", directory, ca_certificate, register, [SERVICE_NAME])
    edge.start()
    try:
        yield edge
    finally:
        edge.stop(1.0)


@pytest.fixture
def channel(edge: Edge, network: Path) -> Iterator[grpc.Channel]:
    with org_channel(network, POLICE, edge.address, server_name="referral") as channel:
        yield channel


def method(channel: grpc.Channel, kind: str, name: str):
    return getattr(channel, kind)(f"/{SERVICE_NAME}/{name}")


def test_a_streamed_response_has_the_caller_bound_in_every_step_and_the_deadline_too(channel, edge):
    responses = list(method(channel, "unary_stream", "Count")(b"3", timeout=10, metadata=language_metadata("en")))
    assert responses == [f"{i}:{POLICE}/en/deadline".encode() for i in range(3)]
    assert edge.interceptor.in_flight == 0


def test_an_application_error_in_the_middle_of_a_stream_ends_it_with_its_status_after_what_was_sent(channel):
    received = []
    with pytest.raises(grpc.RpcError) as raised:
        received.extend(method(channel, "unary_stream", "Count")(b"2!denied", timeout=10))
    assert received == [f"{i}:{POLICE}/es/deadline".encode() for i in range(2)]
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert raised.value.details() == "no es su derivación"


def test_an_unexpected_error_in_a_stream_is_internal_without_its_text(channel, caplog):
    with pytest.raises(grpc.RpcError) as raised:
        list(method(channel, "unary_stream", "Count")(b"1!crash", timeout=10, metadata=language_metadata("en")))
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert raised.value.details() == INTERNAL_MESSAGE["en"]
    assert SECRET not in caplog.text
    assert "unexpected builtins.RuntimeError in /test.Streams/Count" in caplog.text


def test_a_streamed_request_is_served_with_the_caller_bound(channel):
    joined = method(channel, "stream_unary", "Join")(iter([b"a", b"b"]), timeout=10)
    assert joined == f"a@{POLICE}/es/deadline,b@{POLICE}/es/deadline".encode()
    with pytest.raises(grpc.RpcError) as raised:
        method(channel, "stream_unary", "Join")(iter([b"a", b"crash"]), timeout=10)
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert SECRET not in (raised.value.details() or "")


def test_a_bidirectional_stream_is_wrapped_too(channel):
    echoed = list(method(channel, "stream_stream", "Echo")(iter([b"x", b"y"]), metadata=language_metadata("en")))
    assert echoed == [f"x@{POLICE}/en/none".encode(), f"y@{POLICE}/en/none".encode()]
    received = []
    with pytest.raises(grpc.RpcError) as raised:
        received.extend(method(channel, "stream_stream", "Echo")(iter([b"x", b"denied", b"z"]), timeout=10,
                                                                metadata=language_metadata("en")))
    assert received == [f"x@{POLICE}/en/deadline".encode()]
    assert (raised.value.code(), raised.value.details()) == (grpc.StatusCode.PERMISSION_DENIED, "not your referral")


def test_a_stream_the_client_cancels_is_no_longer_counted_in_flight(channel, edge):
    call = method(channel, "unary_stream", "Count")(b"50!slow", timeout=10)
    assert next(call) == f"0:{POLICE}/es/deadline".encode()
    assert edge.interceptor.in_flight == 1
    call.cancel()
    deadline = time.monotonic() + 5
    while edge.interceptor.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert edge.interceptor.in_flight == 0
