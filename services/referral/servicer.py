"""The gRPC servicer of ``referralnet.referral.v1.ReferralService``: the caller from the edge, then the application.

Thin on purpose: the edge's interceptor authenticates the caller and maps ApplicationError to a status code
with its message in the caller's language; this only hands each request to ReferralApplication.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from services.core.generated.referralnet.referral.v1 import referral_pb2 as api
from services.core.generated.referralnet.referral.v1 import referral_pb2_grpc
from services.core.grpcedge.caller import caller_of
from services.referral.application.app import ReferralApplication

SERVICE_NAME: str = api.DESCRIPTOR.services_by_name["ReferralService"].full_name
"""``referralnet.referral.v1.ReferralService`` (for health checking and reflection)."""


class ReferralServicer(referral_pb2_grpc.ReferralServiceServicer):
    """Serves ReferralService with one ReferralApplication."""

    def __init__(self, application: ReferralApplication) -> None:
        self._application = application

    def ListHandoffs(self, request: api.ListHandoffsRequest,
                     context: grpc.ServicerContext) -> api.ListHandoffsResponse:
        """See ReferralApplication.list_handoffs."""
        return self._application.list_handoffs(caller_of(context), request)

    def AcceptHandoff(self, request: api.AcceptHandoffRequest,
                      context: grpc.ServicerContext) -> api.AcceptHandoffResponse:
        """See ReferralApplication.accept_handoff."""
        return self._application.accept_handoff(caller_of(context), request)

    def DeclineHandoff(self, request: api.DeclineHandoffRequest,
                       context: grpc.ServicerContext) -> api.DeclineHandoffResponse:
        """See ReferralApplication.decline_handoff."""
        return self._application.decline_handoff(caller_of(context), request)

    def StartService(self, request: api.StartServiceRequest,
                     context: grpc.ServicerContext) -> api.StartServiceResponse:
        """See ReferralApplication.start_service."""
        return self._application.start_service(caller_of(context), request)

    def CompleteService(self, request: api.CompleteServiceRequest,
                        context: grpc.ServicerContext) -> api.CompleteServiceResponse:
        """See ReferralApplication.complete_service."""
        return self._application.complete_service(caller_of(context), request)

    def WithdrawHandoff(self, request: api.WithdrawHandoffRequest,
                        context: grpc.ServicerContext) -> api.WithdrawHandoffResponse:
        """See ReferralApplication.withdraw_handoff."""
        return self._application.withdraw_handoff(caller_of(context), request)

    def GetReferral(self, request: api.GetReferralRequest,
                    context: grpc.ServicerContext) -> api.GetReferralResponse:
        """See ReferralApplication.get_referral."""
        return self._application.get_referral(caller_of(context), request)

    def UpdateCapacity(self, request: api.UpdateCapacityRequest,
                       context: grpc.ServicerContext) -> api.UpdateCapacityResponse:
        """See ReferralApplication.update_capacity."""
        return self._application.update_capacity(caller_of(context), request)


def register(application: ReferralApplication) -> Callable[[grpc.Server], None]:
    """What ``run_edge`` calls to add the servicer to its server."""
    def add(server: grpc.Server) -> None:
        referral_pb2_grpc.add_ReferralServiceServicer_to_server(ReferralServicer(application), server)
    return add
