"""The gRPC servicer of ``referralnet.intake.v1.IntakeService``: the caller from the edge, then the application.

Thin on purpose: the edge's interceptor authenticates the caller and maps ApplicationError to a status code
with its message in the caller's language; this only hands each request to IntakeApplication.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from services.core.generated.referralnet.intake.v1 import intake_pb2, intake_pb2_grpc
from services.core.grpcedge.caller import caller_of
from services.intake.application.service import IntakeApplication

SERVICE_NAME: str = intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].full_name
"""``referralnet.intake.v1.IntakeService`` (for health checking and reflection)."""


class IntakeServicer(intake_pb2_grpc.IntakeServiceServicer):
    """Serves IntakeService with one IntakeApplication."""

    def __init__(self, application: IntakeApplication) -> None:
        self._application = application

    def SubmitReferral(self, request: intake_pb2.SubmitReferralRequest,
                       context: grpc.ServicerContext) -> intake_pb2.SubmitReferralResponse:
        """See IntakeApplication.submit_referral."""
        return self._application.submit_referral(caller_of(context), request)

    def RecordConsent(self, request: intake_pb2.RecordConsentRequest,
                      context: grpc.ServicerContext) -> intake_pb2.RecordConsentResponse:
        """See IntakeApplication.record_consent."""
        return self._application.record_consent(caller_of(context), request)

    def RevokeConsent(self, request: intake_pb2.RevokeConsentRequest,
                      context: grpc.ServicerContext) -> intake_pb2.RevokeConsentResponse:
        """See IntakeApplication.revoke_consent."""
        return self._application.revoke_consent(caller_of(context), request)

    def ReleaseKey(self, request: intake_pb2.ReleaseKeyRequest,
                   context: grpc.ServicerContext) -> intake_pb2.ReleaseKeyResponse:
        """See IntakeApplication.release_key."""
        return self._application.release_key(caller_of(context), request)

    def GetSubjectConsent(self, request: intake_pb2.GetSubjectConsentRequest,
                          context: grpc.ServicerContext) -> intake_pb2.GetSubjectConsentResponse:
        """See IntakeApplication.get_subject_consent."""
        return self._application.get_subject_consent(caller_of(context), request)

    def EraseSubject(self, request: intake_pb2.EraseSubjectRequest,
                     context: grpc.ServicerContext) -> intake_pb2.EraseSubjectResponse:
        """See IntakeApplication.erase_subject."""
        return self._application.erase_subject(caller_of(context), request)


def register(application: IntakeApplication) -> Callable[[grpc.Server], None]:
    """What ``run_edge`` calls to add the intake servicer to its server."""

    def add(server: grpc.Server) -> None:
        intake_pb2_grpc.add_IntakeServiceServicer_to_server(IntakeServicer(application), server)

    return add
