"""The gRPC edge plumbing through a real edge process: mTLS, identity, errors, health, reflection, stop, deadlines.

What is real: a ``network init`` network (and a second one, for a foreign CA), the edge process
(``tests.integration.support.grpc_echo_edge``: production settings, interceptor, server, health,
reflection and signal handling around a toy ReferralService), TLS, grpcio clients. Replaced: only the
servicer. Every call has a deadline and every wait is bounded.
"""

from __future__ import annotations

import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from services.core.application import ErrorCode
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import OrgRole
from services.core.generated.referralnet.referral.v1 import referral_pb2, referral_pb2_grpc
from services.core.grpcedge.client import language_metadata, org_channel
from services.core.grpcedge.interceptor import INTERNAL_MESSAGE, STATUS_OF, UNAUTHENTICATED_MESSAGE
from services.core.identity import pki
from services.core.identity.keystore import load_ca, load_org_tls
from services.core.identity.network import init_network
from tests.integration.support import grpc_echo_edge
from tests.integration.support.grpc_edge_process import EdgeProcess

pytestmark = pytest.mark.integration

MODULE = "tests.integration.support.grpc_echo_edge"
SERVICE = grpc_echo_edge.SERVICE
POLICE = "pol-mdd-01"
SHELTER = "alb-cus-01"
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_network(tmp_path_factory.mktemp("edge-network") / "network").layout.root


@pytest.fixture(scope="module")
def edge(network: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EdgeProcess, str]]:
    """One edge for the read-only tests of this module, on a free port."""
    process = start_edge(network, tmp_path_factory.mktemp("edge") / "edge.log")
    try:
        yield process, process.wait_ready()
    finally:
        process.stop()


def start_edge(network: Path, log_path: Path, **env: str) -> EdgeProcess:
    return EdgeProcess(MODULE, {"NETWORK_DIR": str(network), "GRPC_LISTEN": "127.0.0.1:0", **env}, log_path).start()


def referral_stub(channel: grpc.Channel) -> Any:  # the generated stub is untyped
    return referral_pb2_grpc.ReferralServiceStub(channel)


def stub_for(network: Path, org_id: str, address: str) -> tuple[grpc.Channel, Any]:
    channel = org_channel(network, org_id, address, server_name=SERVICE)
    return channel, referral_stub(channel)


def get_referral(stub: Any, referral_id: str, *, language: str | None = None,
                 timeout: float | None = TIMEOUT) -> referral_pb2.Referral:
    metadata = language_metadata(language) if language else None
    request = referral_pb2.GetReferralRequest(referral_id=referral_id)
    referral: referral_pb2.Referral = stub.GetReferral(request, timeout=timeout, metadata=metadata).referral
    return referral


def rpc_error(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()  # type: ignore[operator]
    return raised.value


# --- identity ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("org_id", "role"), [(POLICE, "police"), (SHELTER, "shelter")])
def test_a_directory_org_is_served_as_itself_with_its_role_and_spanish_by_default(edge, network, org_id, role):
    _, address = edge
    channel, stub = stub_for(network, org_id, address)
    with channel:
        referral = get_referral(stub, "ref-echo")
        in_english = get_referral(stub, "ref-echo", language="en-GB,en;q=0.9")
    assert (referral.referral_id, referral.referrer_org, referral.subject_id) == ("ref-echo", org_id, f"{role}/es")
    assert in_english.subject_id == f"{role}/en"


def test_a_client_without_a_certificate_cannot_connect(edge, network):
    _, address = edge
    ca_pem = load_org_tls(network, POLICE).root_certificates
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    with grpc.secure_channel(address, credentials, options=[("grpc.ssl_target_name_override", SERVICE)]) as channel:
        stub = referral_stub(channel)
        error = rpc_error(lambda: get_referral(stub, "ref-echo", timeout=5))
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error


def test_a_certificate_from_another_networks_ca_is_refused_in_the_handshake(edge, network, tmp_path):
    _, address = edge
    foreign = init_network(tmp_path / "foreign").layout.root
    ours, theirs = load_org_tls(network, POLICE), load_org_tls(foreign, POLICE)
    credentials = grpc.ssl_channel_credentials(  # trusts our server, presents the other CA's client certificate
        root_certificates=ours.root_certificates, private_key=theirs.private_key,
        certificate_chain=theirs.certificate_chain)
    with grpc.secure_channel(address, credentials, options=[("grpc.ssl_target_name_override", SERVICE)]) as channel:
        stub = referral_stub(channel)
        error = rpc_error(lambda: get_referral(stub, "ref-echo", timeout=5))
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    # the control: the same client with its own network's certificate gets through
    channel, stub = stub_for(network, POLICE, address)
    with channel:
        assert get_referral(stub, "ref-echo").referrer_org == POLICE


@pytest.mark.parametrize("org_id", [POLICE, "pol-xyz-99"], ids=["reissued-for-a-directory-org", "unknown-org"])
def test_a_certificate_the_ca_issued_but_the_directory_does_not_list_is_unauthenticated(edge, network, org_id):
    process, address = edge
    certificate = pki.issue_org_certificate(load_ca(network), org_id, OrgRole.ORG_ROLE_POLICE)
    key_pem = certificate.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption())
    credentials = grpc.ssl_channel_credentials(
        root_certificates=load_org_tls(network, POLICE).root_certificates, private_key=key_pem,
        certificate_chain=certificate.certificate.public_bytes(serialization.Encoding.PEM))
    with grpc.secure_channel(address, credentials, options=[("grpc.ssl_target_name_override", SERVICE)]) as channel:
        stub = referral_stub(channel)
        spanish = rpc_error(lambda: get_referral(stub, "ref-echo"))
        english = rpc_error(lambda: get_referral(stub, "ref-echo", language="en"))
    assert spanish.code() == english.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (spanish.details(), english.details()) == (UNAUTHENTICATED_MESSAGE["es"], UNAUTHENTICATED_MESSAGE["en"])
    process.wait_for_log("certificate not in the signed directory")


# --- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", list(ErrorCode), ids=[code.value for code in ErrorCode])
def test_each_application_error_arrives_as_its_status_with_the_message_in_the_callers_language(edge, network, code):
    _, address = edge
    channel, stub = stub_for(network, POLICE, address)
    with channel:
        spanish = rpc_error(lambda: get_referral(stub, f"ref-error-{code.value}"))
        english = rpc_error(lambda: get_referral(stub, f"ref-error-{code.value}", language="en"))
    assert spanish.code() == english.code() == STATUS_OF[code]
    assert spanish.details() == f"referral_id: {grpc_echo_edge.spanish(code)}"
    assert english.details() == f"referral_id: {grpc_echo_edge.english(code)}"


def test_an_unexpected_exception_is_internal_with_a_generic_message_and_its_text_is_never_logged(edge, network):
    process, address = edge
    channel, stub = stub_for(network, POLICE, address)
    with channel:
        spanish = rpc_error(lambda: get_referral(stub, "ref-crash"))
        english = rpc_error(lambda: get_referral(stub, "ref-crash", language="en"))
        assert get_referral(stub, "ref-echo").referrer_org == POLICE, "the edge keeps serving"
    assert spanish.code() == english.code() == grpc.StatusCode.INTERNAL
    assert (spanish.details(), english.details()) == (INTERNAL_MESSAGE["es"], INTERNAL_MESSAGE["en"])
    for secret_part in ("Persona Sintética", "SINT-0001"):
        assert secret_part not in f"{spanish.details()} {english.details()}"
        assert secret_part not in str(spanish.trailing_metadata()) + str(english.trailing_metadata())
    process.wait_for_log("unexpected builtins.RuntimeError in /referralnet.referral.v1.ReferralService/GetReferral")
    log = process.log()
    assert "SINT-0001" not in log and "Persona Sint" not in log, "the exception's text reached the log"


def test_a_method_the_servicer_does_not_implement_is_unimplemented_not_internal(edge, network):
    _, address = edge
    channel, stub = stub_for(network, SHELTER, address)
    with channel:
        error = rpc_error(lambda: stub.ListHandoffs(referral_pb2.ListHandoffsRequest(), timeout=TIMEOUT,
                                                    metadata=language_metadata("en")))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error.details() == "this method is not implemented"


# --- health, reflection, process -----------------------------------------------------------------------


def test_health_reports_serving_for_the_server_and_its_service_and_not_found_for_others(edge, network):
    _, address = edge
    channel = org_channel(network, SHELTER, address, server_name=SERVICE)
    with channel:
        health: Any = health_pb2_grpc.HealthStub(channel)  # its type stub declares no methods
        for service in ("", grpc_echo_edge.SERVICE_NAME):
            response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
            assert response.status == health_pb2.HealthCheckResponse.SERVING, service
        error = rpc_error(lambda: health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"),
                                               timeout=TIMEOUT))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_services_and_describes_their_methods(edge, network):
    _, address = edge
    channel = org_channel(network, POLICE, address, server_name=SERVICE)
    with channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        pool = descriptor_pool.DescriptorPool(database)
        methods = {method.name for method in pool.FindServiceByName(grpc_echo_edge.SERVICE_NAME).methods}
    assert services == {grpc_echo_edge.SERVICE_NAME, "grpc.health.v1.Health", reflection.SERVICE_NAME}
    assert {"GetReferral", "ListHandoffs", "AcceptHandoff", "UpdateCapacity"} <= methods


def test_the_edge_process_never_loads_eventlet_or_nameko(edge, network):
    _, address = edge
    channel, stub = stub_for(network, POLICE, address)
    with channel:
        get_referral(stub, "ref-echo")
        loaded = get_referral(stub, "ref-modules").subject_id
    assert loaded == "", f"the edge imported {loaded}"


def test_a_call_whose_deadline_is_shorter_than_the_handler_gets_deadline_exceeded(edge, network):
    process, address = edge
    slow, unbounded = f"ref-slow-5000-{uuid.uuid4().hex[:8]}", f"ref-slow-0-{uuid.uuid4().hex[:8]}"
    channel, stub = stub_for(network, POLICE, address)
    with channel:
        started = time.monotonic()
        error = rpc_error(lambda: get_referral(stub, slow, timeout=0.8))
        elapsed = time.monotonic() - started
        assert get_referral(stub, unbounded, timeout=None).referral_id == unbounded
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 3.0
    process.wait_for_log(f"slow call {slow} finished")
    seen = re.search(rf"slow call {slow} started: deadline remaining (\S+)", process.log())
    assert seen is not None and 0 < float(seen.group(1)) <= 0.8, "the handler must see the call's deadline"
    finished = re.search(rf"slow call {slow} finished after (\S+)s", process.log())
    assert finished is not None and float(finished.group(1)) <= 0.8 + grpc_echo_edge.DEADLINE_SLACK_S, \
        "the handler stops waiting at the deadline"
    assert f"slow call {unbounded} started: deadline remaining none" in process.log()


def test_sigterm_lets_the_call_in_flight_finish_refuses_new_calls_and_exits_zero(network, tmp_path):
    process = start_edge(network, tmp_path / "edge.log", GRPC_GRACE_SECONDS="10")
    try:
        address = process.wait_ready()
        channel, stub = stub_for(network, POLICE, address)
        slow = f"ref-slow-3000-{uuid.uuid4().hex[:8]}"
        with channel:
            in_flight = stub.GetReferral.future(referral_pb2.GetReferralRequest(referral_id=slow), timeout=20)
            process.wait_for_log(f"slow call {slow} started")
            process.signal(signal.SIGTERM)
            process.wait_for_log("edge referral stopping")
            refused = None
            deadline = time.monotonic() + 2.5
            while refused is None and time.monotonic() < deadline:
                late_channel, late_stub = stub_for(network, SHELTER, address)
                with late_channel:
                    try:
                        get_referral(late_stub, "ref-echo", timeout=1)
                    except grpc.RpcError as error:
                        refused = error
            assert refused is not None and refused.code() == grpc.StatusCode.UNAVAILABLE, "new calls must be refused"
            assert not in_flight.done(), "the slow call was still running while new calls were refused"
            assert in_flight.result(timeout=15).referral.referral_id == slow
        assert process.wait_exit(15) == 0
        log = process.log()
        order = [log.index(line) for line in (f"slow call {slow} finished", "marker task stopped",
                                              "edge referral stopped")]
        assert order == sorted(order), "background tasks stop after the calls in flight finished"
    finally:
        process.stop()


def test_a_call_still_running_after_the_grace_period_is_cancelled_and_the_edge_still_exits_zero(network, tmp_path):
    process = start_edge(network, tmp_path / "edge.log", GRPC_GRACE_SECONDS="0.5")
    try:
        address = process.wait_ready()
        channel, stub = stub_for(network, POLICE, address)
        slow = f"ref-slow-8000-{uuid.uuid4().hex[:8]}"
        with channel:
            in_flight = stub.GetReferral.future(referral_pb2.GetReferralRequest(referral_id=slow), timeout=20)
            process.wait_for_log(f"slow call {slow} started")
            stopped_at = time.monotonic()
            process.signal(signal.SIGTERM)
            assert process.wait_exit(6) == 0
            assert time.monotonic() - stopped_at < 6
            with pytest.raises(grpc.RpcError) as raised:
                in_flight.result(timeout=5)
        assert raised.value.code() in {grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE}
        assert "1 call(s) still running past the grace period" in process.log()
    finally:
        process.stop()


def test_an_address_in_use_fails_the_start_clearly(edge, network, tmp_path):
    _, address = edge
    second = start_edge(network, tmp_path / "second.log", GRPC_LISTEN=address)
    try:
        assert second.wait_exit(20) == 1
    finally:
        second.stop()
    assert f"cannot listen on {address}" in second.log()


def test_a_missing_network_dir_is_named_in_the_error(tmp_path):
    process = EdgeProcess(MODULE, {"NETWORK_DIR": "", "GRPC_LISTEN": "127.0.0.1:0"}, tmp_path / "edge.log").start()
    try:
        assert process.wait_exit(20) == 2
    finally:
        process.stop()
    assert "NETWORK_DIR is not set" in process.log()
