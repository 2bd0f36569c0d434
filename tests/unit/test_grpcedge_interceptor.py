"""The edge interceptor's rules, called directly with a stand-in call context (no server, no socket).

What is real: a ``network init`` network on disk (CA, org certificates, signed directory), the certificate
checks, the caller and deadline bindings, the error mapping. Replaced: grpc's ServicerContext, by a small
object with the same methods (``abort`` raises like grpc's does), so each rule is checked on its own;
tests/integration/test_grpc_edge*.py run the same interceptor in a real server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from services.core.application import (
    AlreadyExists,
    ApplicationError,
    ErrorCode,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import OrgRole
from services.core.grpcedge.caller import Caller, caller_of
from services.core.grpcedge.deadline import call_deadline_remaining, remaining_seconds
from services.core.grpcedge.interceptor import (
    DATABASE_BUSY_MESSAGE,
    DEADLINE_MESSAGE,
    EXEMPT_SERVICES,
    INTERNAL_MESSAGE,
    STATUS_OF,
    UNAUTHENTICATED_MESSAGE,
    EdgeInterceptor,
)
from services.core.grpcedge.server import load_network_trust
from services.core.identity import pki
from services.core.identity.keystore import load_ca, load_org_tls
from services.core.identity.network import init_network
from services.core.identity.records import NETWORK_SERVICES

METHOD = "/referralnet.referral.v1.ReferralService/GetReferral"
POLICE = "pol-mdd-01"
ERROR_CLASSES = {
    ErrorCode.INVALID_ARGUMENT: lambda: InvalidArgument("needs[0].region", es="región desconocida",
                                                         en="unknown region"),
    ErrorCode.PERMISSION_DENIED: lambda: PermissionDenied(es="no permitido", en="not allowed"),
    ErrorCode.FAILED_PRECONDITION: lambda: FailedPrecondition(es="oferta vencida", en="offer expired"),
    ErrorCode.ALREADY_EXISTS: lambda: AlreadyExists(es="clave reutilizada", en="key reused",
                                                    field="idempotency_key"),
    ErrorCode.NOT_FOUND: lambda: NotFound(es="no existe", en="does not exist"),
    ErrorCode.UNAVAILABLE: lambda: Unavailable(es="reintente", en="retry"),
}


class FakeContext:
    """The ServicerContext methods the interceptor uses; ``abort`` records and raises a bare Exception."""

    def __init__(self, certificate: bytes | None, metadata: tuple[tuple[str, str], ...] = (),
                 remaining: float | None = 30.0) -> None:
        self.certificate = certificate
        self.metadata = metadata
        self.remaining = remaining
        self.status: grpc.StatusCode | None = None
        self.details: str | None = None

    def auth_context(self):
        return {"x509_pem_cert": [self.certificate]} if self.certificate is not None else {}

    def invocation_metadata(self):
        return self.metadata

    def time_remaining(self):
        return self.remaining

    def abort(self, code, details):
        self.status, self.details = code, details
        raise Exception()

    def code(self):
        return self.status


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_network(tmp_path_factory.mktemp("interceptor") / "network").layout.root


@pytest.fixture(scope="module")
def interceptor(network: Path) -> EdgeInterceptor:
    return EdgeInterceptor(*load_network_trust(network))


def certificate_of(network: Path, org_id: str) -> bytes:
    return load_org_tls(network, org_id).certificate_chain


class Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata: tuple[tuple[str, str | bytes], ...] = ()


def wrapped(interceptor: EdgeInterceptor, behavior, kind: str = "unary_unary", method: str = METHOD):
    """The interceptor's handler around ``behavior`` (of the given kind), as the server would get it."""
    factory = getattr(grpc, f"{kind}_rpc_method_handler")
    original = factory(behavior)
    handler = interceptor.intercept_service(lambda _details: original, Details(method))
    assert handler is not None
    return getattr(handler, kind)


def serve(interceptor: EdgeInterceptor, behavior, context: FakeContext, kind: str = "unary_unary"):
    return wrapped(interceptor, behavior, kind)(b"request", context)


def failing(error: BaseException):
    def behavior(_request, _context):
        raise error
    return behavior


def test_every_error_code_maps_to_the_grpc_status_of_the_same_name_one_to_one():
    assert set(STATUS_OF) == set(ErrorCode)
    assert len(set(STATUS_OF.values())) == len(ErrorCode), "two codes share a status"
    assert all(status.name == code.name for code, status in STATUS_OF.items())
    assert set(ERROR_CLASSES) == set(ErrorCode), "this test raises every code"


@pytest.mark.parametrize("code", list(ErrorCode), ids=[code.value for code in ErrorCode])
@pytest.mark.parametrize("language", ["es", "en"])
def test_an_application_error_aborts_with_its_status_and_its_message_in_the_callers_language(
        interceptor, network, code, language):
    error: ApplicationError = ERROR_CLASSES[code]()  # type: ignore[no-untyped-call]
    context = FakeContext(certificate_of(network, POLICE), (("accept-language", language),))
    with pytest.raises(Exception):  # noqa: B017 -- grpc's abort raises a bare Exception
        serve(interceptor, failing(error), context)
    assert (context.status, context.details) == (STATUS_OF[code], error.message(language))


@pytest.mark.parametrize(("header", "language"), [
    (None, "es"), ("en", "en"), ("en-GB,en;q=0.8", "en"), ("fr-FR", "es"), ("fr;q=1, en;q=0.5", "en"),
    ("en;q=0, es", "es"), ("ES", "es"),
])
def test_the_caller_is_bound_with_its_role_and_the_language_of_accept_language(interceptor, network, header,
                                                                                language):
    metadata = (("accept-language", header),) if header else ()
    context = FakeContext(certificate_of(network, POLICE), (("x-other", "1"), *metadata))
    result = serve(interceptor, lambda _request, _context: caller_of(), context)
    assert result == Caller(POLICE, OrgRole.ORG_ROLE_POLICE, language)
    with pytest.raises(RuntimeError, match="no authenticated caller"):
        caller_of()  # unbound again after the call


def test_a_call_without_a_client_certificate_is_unauthenticated_and_never_reaches_the_servicer(interceptor):
    reached = []
    context = FakeContext(None, (("accept-language", "en"),))
    with pytest.raises(Exception):  # noqa: B017
        serve(interceptor, lambda _request, _context: reached.append(1), context)
    assert (context.status, context.details) == (grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE["en"])
    assert reached == []


def test_certificates_not_matching_the_directory_are_unauthenticated(interceptor, network, tmp_path):
    ca = load_ca(network)
    reissued = pki.issue_org_certificate(ca, POLICE, OrgRole.ORG_ROLE_POLICE).certificate  # chains; not listed
    wrong_role = pki.issue_org_certificate(ca, POLICE, OrgRole.ORG_ROLE_SHELTER).certificate
    foreign = init_network(tmp_path / "foreign").layout.root
    server_certificate = (network / "services" / NETWORK_SERVICES[0] / "tls.pem").read_bytes()
    candidates = [c.public_bytes(serialization.Encoding.PEM) for c in (reissued, wrong_role)]
    candidates += [certificate_of(foreign, POLICE), server_certificate, b"not a certificate"]
    for certificate in candidates:
        context = FakeContext(certificate)
        with pytest.raises(Exception):  # noqa: B017
            serve(interceptor, lambda _request, _context: "served", context)
        assert (context.status, context.details) == (grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE["es"])


def test_an_unexpected_exception_is_internal_and_logged_without_its_text(interceptor, network, caplog):
    context = FakeContext(certificate_of(network, POLICE), (("accept-language", "en"),))
    with pytest.raises(Exception):  # noqa: B017
        serve(interceptor, failing(ValueError("Persona Sintética Uno SINT-0001")), context)
    assert (context.status, context.details) == (grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE["en"])
    assert f"unexpected builtins.ValueError in {METHOD}" in caplog.text
    assert "SINT-0001" not in caplog.text and "Sintética" not in caplog.text


def test_a_database_that_cannot_answer_now_is_unavailable_so_the_client_retries(interceptor, network, caplog,
                                                                                tmp_path):
    """A real SQLite lock wait that runs out (seen under load as INTERNAL): UNAVAILABLE, text withheld."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'busy.db'}", connect_args={"timeout": 0.05})
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (v TEXT)")
    holder = engine.connect()
    holder.exec_driver_sql("BEGIN EXCLUSIVE")

    def behavior(_request, _context):
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES ('Persona Sintética Uno SINT-0001')")

    context = FakeContext(certificate_of(network, POLICE), (("accept-language", "en"),))
    try:
        with pytest.raises(Exception):  # noqa: B017
            serve(interceptor, behavior, context)
    finally:
        holder.close()
        engine.dispose()
    assert (context.status, context.details) == (grpc.StatusCode.UNAVAILABLE, DATABASE_BUSY_MESSAGE["en"])
    assert f"unexpected sqlalchemy.exc.OperationalError in {METHOD}" in caplog.text
    assert "answered UNAVAILABLE; exception text withheld" in caplog.text
    assert "SINT-0001" not in caplog.text and "Sintética" not in caplog.text


def test_a_servicers_own_abort_passes_through_unchanged(interceptor, network):
    context = FakeContext(certificate_of(network, POLICE))

    def behavior(_request, ctx):
        ctx.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down")

    with pytest.raises(Exception):  # noqa: B017
        serve(interceptor, behavior, context)
    assert (context.status, context.details) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down")


def test_not_implemented_is_unimplemented(interceptor, network):
    context = FakeContext(certificate_of(network, POLICE))
    with pytest.raises(Exception):  # noqa: B017
        serve(interceptor, failing(NotImplementedError("Method not implemented!")), context)
    assert context.status == grpc.StatusCode.UNIMPLEMENTED


def test_a_call_whose_deadline_passed_is_not_served(interceptor, network):
    reached = []
    context = FakeContext(certificate_of(network, POLICE), remaining=0.0)
    with pytest.raises(Exception):  # noqa: B017
        serve(interceptor, lambda _request, _context: reached.append(1), context)
    assert (context.status, context.details) == (grpc.StatusCode.DEADLINE_EXCEEDED, DEADLINE_MESSAGE["es"])
    assert reached == []


@pytest.mark.parametrize(("remaining", "seen"), [(2.5, 2.5), (float("inf"), None), (1e300, None), (None, None)])
def test_the_deadline_is_visible_to_the_servicer_and_only_during_the_call(interceptor, network, remaining, seen):
    context = FakeContext(certificate_of(network, POLICE), remaining=remaining)
    observed = serve(interceptor, lambda _r, _c: (call_deadline_remaining(), remaining_seconds(3.0)), context)
    assert observed == (seen, 3.0 if seen is None else min(seen, 3.0))
    assert call_deadline_remaining() is None
    assert remaining_seconds(1.5) == 1.5
    assert remaining_seconds() is None


def test_streamed_responses_bind_the_caller_in_each_step_and_map_a_late_error(interceptor, network):
    def behavior(_request, _context) -> Iterator[str]:
        yield caller_of().org_id
        yield caller_of().language
        raise PermissionDenied(es="no permitido", en="not allowed")

    context = FakeContext(certificate_of(network, POLICE), (("accept-language", "en"),))
    responses = wrapped(interceptor, behavior, "unary_stream")(b"request", context)
    assert next(responses) == POLICE
    with pytest.raises(RuntimeError):
        caller_of()  # not bound between steps: the thread may serve something else meanwhile
    assert next(responses) == "en"
    with pytest.raises(Exception):  # noqa: B017
        next(responses)
    assert (context.status, context.details) == (grpc.StatusCode.PERMISSION_DENIED, "not allowed")
    assert interceptor.in_flight == 0


@pytest.mark.parametrize("kind", ["stream_unary", "stream_stream"])
def test_streamed_requests_are_wrapped(interceptor, network, kind):
    def behavior(requests, _context):
        result = [f"{request}@{caller_of().org_id}" for request in requests]
        return iter(result) if kind == "stream_stream" else result

    handler = wrapped(interceptor, behavior, kind)
    result = handler(iter(["a", "b"]), FakeContext(certificate_of(network, POLICE)))
    assert list(result) == [f"a@{POLICE}", f"b@{POLICE}"]


@pytest.mark.parametrize("service", sorted(EXEMPT_SERVICES))
def test_health_and_reflection_are_not_wrapped(interceptor, service):
    original: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(lambda _request, _context: "ok")
    assert interceptor.intercept_service(lambda _details: original, Details(f"/{service}/Check")) is original
    assert interceptor.intercept_service(lambda _details: None, Details(METHOD)) is None
