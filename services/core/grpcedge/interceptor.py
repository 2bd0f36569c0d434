"""The edge's one interceptor: who is calling (mTLS + signed directory), in which language, and what they are told.

For every call except gRPC health checking and server reflection, inside the thread that serves it:

1. the client certificate the TLS handshake accepted is checked again against the network CA
   (``peer_identity``) and must be in the signed directory with the same org id and role
   (``Directory.org_by_tls_fingerprint``): a certificate that chains but whose org left the directory is
   refused. Otherwise UNAUTHENTICATED.
2. ``Caller(org_id, role, language)`` is bound (``caller_of``), with the language from the call's
   ``accept-language`` metadata (``language_of``: Spanish by default), and the call's deadline clock
   (``deadline.call_deadline_remaining``). A call whose deadline already passed is not served.
3. an ``ApplicationError`` becomes its status code (``STATUS_OF``, one to one) with its message in the
   caller's language; ``NotImplementedError`` (the generated servicer base) is UNIMPLEMENTED; any other
   exception is logged by type, method and raise site only (its text may carry personal data) and answered
   INTERNAL with a fixed message, except a database ``OperationalError`` (a lock wait that ran out, a dropped
   connection: transient, and every mutating RPC is safe to retry), answered UNAVAILABLE so the client
   retries. ``context.abort`` from a servicer passes through unchanged.

``in_flight`` counts the calls whose servicer code is running, so a graceful stop can tell whether any
outlived the grace period.

Unary and streamed requests and responses are all wrapped; for a streamed response the caller is bound
around each step of the servicer's iterator, so it holds whichever thread iterates it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, TypeVar

import grpc
from cryptography import x509
from sqlalchemy.exc import OperationalError

from services.core.application import ApplicationError, ErrorCode, language_of
from services.core.grpcedge.caller import Caller, bind_caller, unbind_caller
from services.core.grpcedge.deadline import bind_deadline, call_deadline_remaining, unbind_deadline
from services.core.identity.directory import Directory
from services.core.identity.errors import CertificateRejectedError, UnknownOrganisationError
from services.core.identity.peer import peer_identity

__all__ = [
    "EXEMPT_SERVICES", "STATUS_OF", "EdgeInterceptor", "call_deadline_remaining",
]

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")
_END = object()

ACCEPT_LANGUAGE = "accept-language"
PEER_CERTIFICATE = "x509_pem_cert"

#: Services served without the identity check (any client the TLS handshake accepted may use them).
EXEMPT_SERVICES = frozenset({
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
})

#: Every application error code and the gRPC status it is answered with.
STATUS_OF: Mapping[ErrorCode, grpc.StatusCode] = MappingProxyType({
    ErrorCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
})

UNAUTHENTICATED_MESSAGE = MappingProxyType({
    "es": "certificado de cliente no reconocido por la red: use el certificado de su organización",
    "en": "client certificate not recognised by the network: use your organisation's certificate",
})
INTERNAL_MESSAGE = MappingProxyType({
    "es": "error interno del servicio; inténtelo de nuevo más tarde",
    "en": "internal service error; please try again later",
})
DATABASE_BUSY_MESSAGE = MappingProxyType({
    "es": "la base de datos del servicio está ocupada; vuelva a intentarlo",
    "en": "the service's database is busy; please retry",
})
DEADLINE_MESSAGE = MappingProxyType({
    "es": "el plazo de la llamada venció antes de atenderla",
    "en": "the call's deadline passed before it could be served",
})
UNIMPLEMENTED_MESSAGE = MappingProxyType({
    "es": "este método no está implementado",
    "en": "this method is not implemented",
})


def _service_of(method: str) -> str:
    """``/referralnet.referral.v1.ReferralService/GetReferral`` -> ``referralnet.referral.v1.ReferralService``."""
    return method.lstrip("/").partition("/")[0]


class EdgeInterceptor(grpc.ServerInterceptor):
    """Authenticates the peer, binds its ``Caller`` and deadline, and maps errors (see the module docstring)."""

    def __init__(self, directory: Directory, ca_certificate: x509.Certificate, *,
                 exempt_services: frozenset[str] = EXEMPT_SERVICES) -> None:
        self._directory = directory
        self._ca_certificate = ca_certificate
        self._exempt = exempt_services
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Calls whose servicer code is running now (a graceful stop checks that none outlived the grace)."""
        with self._lock:
            return self._in_flight

    @contextmanager
    def _counted(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The method's handler wrapped (runs in the server's polling thread: no call context here)."""
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or _service_of(method) in self._exempt:
            return handler
        return self._wrap(handler, method)

    def authenticate(self, context: grpc.ServicerContext, method: str) -> Caller:
        """The caller of this call; aborts the call with UNAUTHENTICATED if its certificate is not accepted."""
        language = language_of(_metadata_value(context, ACCEPT_LANGUAGE))
        reason = "no client certificate"
        certificate = _peer_certificate(context)
        if certificate is not None:
            try:
                peer = peer_identity(certificate, self._ca_certificate)
                org = self._directory.org_by_tls_fingerprint(peer.tls_cert_sha256)
            except CertificateRejectedError:
                reason = "certificate rejected by the network CA check"
            except UnknownOrganisationError:
                reason = "certificate not in the signed directory"
            else:
                if org.org_id == peer.org_id and org.role == peer.role:
                    return Caller(org.org_id, org.role, language)
                reason = "certificate org or role disagrees with the directory"
        _LOG.warning("refused a call to %s: %s", method, reason)
        context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE[language])

    def _wrap(self, handler: grpc.RpcMethodHandler[Any, Any], method: str) -> grpc.RpcMethodHandler[Any, Any]:
        deserializer, serializer = handler.request_deserializer, handler.response_serializer
        if handler.unary_unary is not None:
            behavior = self._single_response(handler.unary_unary, method)
            return grpc.unary_unary_rpc_method_handler(behavior, deserializer, serializer)
        if handler.stream_unary is not None:
            behavior = self._single_response(handler.stream_unary, method)
            return grpc.stream_unary_rpc_method_handler(behavior, deserializer, serializer)
        if handler.unary_stream is not None:
            streamed = self._streamed_response(handler.unary_stream, method)
            return grpc.unary_stream_rpc_method_handler(streamed, deserializer, serializer)
        if handler.stream_stream is not None:
            streamed = self._streamed_response(handler.stream_stream, method)
            return grpc.stream_stream_rpc_method_handler(streamed, deserializer, serializer)
        return handler  # pragma: no cover -- grpc builds every handler with one of the four

    def _single_response(self, behavior: Callable[[Any, grpc.ServicerContext], Any],
                         method: str) -> Callable[[Any, grpc.ServicerContext], Any]:
        def serve(request: Any, context: grpc.ServicerContext) -> Any:  # noqa: ANN401 -- a protobuf message
            with self._counted():
                call = _Call(self.authenticate(context, method), context, method)
                return call.run(lambda: behavior(request, context))

        return serve

    def _streamed_response(self, behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
                           method: str) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        def serve(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: ANN401 -- a message
            with self._counted():
                call = _Call(self.authenticate(context, method), context, method)
                responses = call.run(lambda: iter(behavior(request, context)))
                while True:
                    response = call.run(lambda: next(responses, _END))
                    if response is _END:
                        return
                    yield response

        return serve


class _Call:
    """One authenticated call: runs steps of the servicer with the caller and deadline bound, mapping errors."""

    def __init__(self, caller: Caller, context: grpc.ServicerContext, method: str) -> None:
        self.caller = caller
        self.context = context
        self.method = method
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            _LOG.info("call to %s not served: its deadline had passed", method)
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, DEADLINE_MESSAGE[caller.language])

    def run(self, step: Callable[[], _T]) -> _T:
        caller_token = bind_caller(self.caller)
        deadline_token = bind_deadline(self.context.time_remaining)
        try:
            return step()
        except ApplicationError as error:
            status, details = STATUS_OF[error.code], error.message(self.caller.language)
        except NotImplementedError:
            status, details = grpc.StatusCode.UNIMPLEMENTED, UNIMPLEMENTED_MESSAGE[self.caller.language]
        except OperationalError as exc:  # seen under load on SQLite: a lock wait ran out (was INTERNAL)
            _log_unexpected(exc, self.method, answered="UNAVAILABLE")
            status, details = grpc.StatusCode.UNAVAILABLE, DATABASE_BUSY_MESSAGE[self.caller.language]
        except Exception as exc:
            if _is_abort(exc, self.context):
                raise
            _log_unexpected(exc, self.method)
            status, details = grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE[self.caller.language]
        finally:
            unbind_deadline(deadline_token)
            unbind_caller(caller_token)
        self.context.abort(status, details)


def _is_abort(exc: Exception, context: grpc.ServicerContext) -> bool:
    """Whether ``exc`` is the bare exception ``context.abort`` raises (grpc then sends the aborted status)."""
    code = getattr(context, "code", None)
    return type(exc) is Exception and not exc.args and callable(code) and code() is not None


def _log_unexpected(exc: Exception, method: str, *, answered: str = "INTERNAL") -> None:
    """Log the exception's type, the method, where it was raised and the last frame of this project's code on
    the way (a library's raise site alone does not say which call failed); never its text (it may carry
    personal data)."""
    where, ours = "", ""
    traceback = exc.__traceback__
    while traceback is not None:
        code = traceback.tb_frame.f_code
        site = f"{os.path.basename(code.co_filename)}:{traceback.tb_lineno} in {code.co_name}"
        if f"{os.sep}services{os.sep}" in code.co_filename:
            ours = site
        where = site
        traceback = traceback.tb_next
    located = f" at {where}" if where else ""
    if ours and ours != where:
        located += f", from {ours}"
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    _LOG.error("unexpected %s in %s%s (answered %s; exception text withheld)", kind, method, located, answered)


def _metadata_value(context: grpc.ServicerContext, key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == key and isinstance(value, str):
            return value
    return None


def _peer_certificate(context: grpc.ServicerContext) -> bytes | None:
    values: object = context.auth_context().get(PEER_CERTIFICATE)
    if isinstance(values, bytes):
        return values or None
    if isinstance(values, list | tuple) and values and isinstance(values[0], bytes):
        return values[0]
    return None
