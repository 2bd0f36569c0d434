"""The gRPC servicer of ``referralnet.notify.v1.NotifyService``: the caller from the edge, then the application.

Thin on purpose: the edge's interceptor authenticates the caller (mTLS, the signed directory) and maps
ApplicationError to a status code with its message in the caller's language; this only hands each request
to NotifyApplication, which lists the caller's own deliveries and nobody else's.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from services.core.generated.referralnet.notify.v1 import notify_pb2 as api
from services.core.generated.referralnet.notify.v1 import notify_pb2_grpc
from services.core.grpcedge.caller import caller_of
from services.notify.application.app import NotifyApplication

SERVICE_NAME: str = api.DESCRIPTOR.services_by_name["NotifyService"].full_name
"""``referralnet.notify.v1.NotifyService`` (for health checking and reflection)."""


class NotifyServicer(notify_pb2_grpc.NotifyServiceServicer):
    """Serves NotifyService with one NotifyApplication."""

    def __init__(self, application: NotifyApplication) -> None:
        self._application = application

    def ListDeliveries(self, request: api.ListDeliveriesRequest,
                       context: grpc.ServicerContext) -> api.ListDeliveriesResponse:
        """See NotifyApplication.list_deliveries."""
        return self._application.list_deliveries(caller_of(context), request)


def register(application: NotifyApplication) -> Callable[[grpc.Server], None]:
    """What ``run_edge`` calls to add the servicer to its server."""
    def add(server: grpc.Server) -> None:
        notify_pb2_grpc.add_NotifyServiceServicer_to_server(NotifyServicer(application), server)
    return add
