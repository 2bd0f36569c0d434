"""A test edge (``python -m tests.integration.support.grpc_echo_edge``): a toy ReferralService on the real edge.

Everything but the servicer is production code: settings from the environment, the network's trust
(``load_network_trust``), ``run_edge`` with its interceptor, health, reflection and graceful stop, as the
``referral`` service. ``GetReferral`` answers by id:

- ``ref-error-<code>``: raises the ``ApplicationError`` of that ``ErrorCode`` (field ``referral_id``);
- ``ref-crash``: raises a RuntimeError whose text (synthetic personal data, ``SECRET``) must never leave;
- ``ref-slow-<ms>-<tag>``: sleeps ``ms`` milliseconds, or until just after the call's deadline if sooner,
  logging the deadline it saw when it starts and when it finishes;
- ``ref-modules``: ``subject_id`` lists every eventlet or nameko module loaded in this process;
- anything else: echoes the caller (``referrer_org`` = org id, ``subject_id`` = ``<role>/<language>``).

ListHandoffs and the other methods are the generated base's (not implemented). A background task logs its
start and stop so the tests can check the order of a graceful stop.
"""

from __future__ import annotations

import logging
import sys
import time

import grpc

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
from services.core.generated.referralnet.referral.v1 import referral_pb2, referral_pb2_grpc
from services.core.grpcedge.caller import caller_of
from services.core.grpcedge.deadline import call_deadline_remaining
from services.core.grpcedge.server import configure_logging, load_network_trust, run_edge
from services.core.grpcedge.settings import EdgeConfigError, EdgeSettings
from services.core.identity.vocabulary import role_word

SERVICE = "referral"
SERVICE_NAME = referral_pb2.DESCRIPTOR.services_by_name["ReferralService"].full_name
DEADLINE_SLACK_S = 0.25  # a slow call gives up this long after its deadline (the client has given up by then)
SECRET = "Persona Sintética Uno, documento SINT-0001"
_LOG = logging.getLogger("grpc_echo_edge")

_ERRORS: dict[ErrorCode, type[ApplicationError]] = {
    ErrorCode.PERMISSION_DENIED: PermissionDenied,
    ErrorCode.FAILED_PRECONDITION: FailedPrecondition,
    ErrorCode.ALREADY_EXISTS: AlreadyExists,
    ErrorCode.NOT_FOUND: NotFound,
    ErrorCode.UNAVAILABLE: Unavailable,
}


def spanish(code: ErrorCode) -> str:
    return f"error de prueba {code.value}"


def english(code: ErrorCode) -> str:
    return f"test error {code.value}"


def application_error(code: ErrorCode) -> ApplicationError:
    """The error the servicer raises for ``ref-error-<code>``."""
    if code is ErrorCode.INVALID_ARGUMENT:
        return InvalidArgument("referral_id", es=spanish(code), en=english(code))
    return _ERRORS[code](es=spanish(code), en=english(code), field="referral_id")


class EchoReferralService(referral_pb2_grpc.ReferralServiceServicer):
    """GetReferral as described in the module docstring; every other method is the generated stub."""

    def GetReferral(self, request: referral_pb2.GetReferralRequest,
                    context: grpc.ServicerContext) -> referral_pb2.GetReferralResponse:
        caller = caller_of()
        referral_id = request.referral_id
        subject = f"{role_word(caller.role)}/{caller.language}"
        if referral_id.startswith("ref-error-"):
            raise application_error(ErrorCode(referral_id.removeprefix("ref-error-")))
        if referral_id == "ref-crash":
            raise RuntimeError(SECRET)
        if referral_id.startswith("ref-slow-"):
            self._slow(referral_id)
        if referral_id == "ref-modules":
            subject = ",".join(sorted(name for name in sys.modules if name.split(".")[0] in {"eventlet", "nameko"}))
        referral = referral_pb2.Referral(referral_id=referral_id, referrer_org=caller.org_id, subject_id=subject)
        return referral_pb2.GetReferralResponse(referral=referral)

    @staticmethod
    def _slow(referral_id: str) -> None:
        milliseconds = int(referral_id.split("-")[2])
        remaining = call_deadline_remaining()
        seen = "none" if remaining is None else f"{remaining:.3f}"
        _LOG.info("slow call %s started: deadline remaining %s", referral_id, seen)
        seconds = milliseconds / 1000 if remaining is None else min(milliseconds / 1000, remaining + DEADLINE_SLACK_S)
        time.sleep(seconds)
        _LOG.info("slow call %s finished after %.3fs", referral_id, seconds)


class MarkerTask:
    """A background task that only logs when it starts and stops."""

    def start(self) -> None:
        _LOG.info("marker task started")

    def stop(self, timeout: float) -> None:
        _LOG.info("marker task stopped (timeout %.1fs)", timeout)


def register(server: grpc.Server) -> None:
    add = referral_pb2_grpc.add_ReferralServiceServicer_to_server
    add(EchoReferralService(), server)  # type: ignore[abstract]  # the other RPCs answer UNIMPLEMENTED on purpose


def main() -> int:
    configure_logging()
    try:
        settings = EdgeSettings.from_env(default_port=0)
    except EdgeConfigError as exc:
        _LOG.error("%s", exc)
        return 2
    directory, ca_certificate = load_network_trust(settings.network_dir)
    return run_edge(settings, SERVICE, directory, ca_certificate, register, [SERVICE_NAME],
                    background=[MarkerTask()])


if __name__ == "__main__":
    sys.exit(main())
