"""The gRPC servicer of ``referralnet.audit.v1.AuditService``: the caller from the edge, then the use cases.

Thin on purpose: the edge's interceptor authenticates the caller and maps ApplicationError to a status code
with its message in the caller's language (also for ReplayLog's stream); this hands each request to
AuditQueries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc

from services.audit.application.queries import AuditQueries
from services.core.generated.referralnet.audit.v1 import audit_pb2 as api
from services.core.generated.referralnet.audit.v1 import audit_pb2_grpc
from services.core.grpcedge.caller import caller_of

SERVICE_NAME: str = api.DESCRIPTOR.services_by_name["AuditService"].full_name
"""``referralnet.audit.v1.AuditService`` (for health checking and reflection)."""


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """Serves AuditService with one AuditQueries."""

    def __init__(self, queries: AuditQueries) -> None:
        self._queries = queries

    def GetCheckpoint(self, request: api.GetCheckpointRequest,
                      context: grpc.ServicerContext) -> api.GetCheckpointResponse:
        """See AuditQueries.get_checkpoint."""
        return self._queries.get_checkpoint(caller_of(context), request)

    def GetInclusionProof(self, request: api.GetInclusionProofRequest,
                          context: grpc.ServicerContext) -> api.GetInclusionProofResponse:
        """See AuditQueries.inclusion_proof."""
        return self._queries.inclusion_proof(caller_of(context), request)

    def GetConsistencyProof(self, request: api.GetConsistencyProofRequest,
                            context: grpc.ServicerContext) -> api.GetConsistencyProofResponse:
        """See AuditQueries.consistency_proof."""
        return self._queries.consistency_proof(caller_of(context), request)

    def ReplayLog(self, request: api.ReplayLogRequest,
                  context: grpc.ServicerContext) -> Iterator[api.ReplayLogResponse]:
        """See AuditQueries.replay_log."""
        return self._queries.replay_log(caller_of(context), request)

    def ComplianceReport(self, request: api.ComplianceReportRequest,
                         context: grpc.ServicerContext) -> api.ComplianceReportResponse:
        """See AuditQueries.compliance_report."""
        return self._queries.compliance_report(caller_of(context), request)


def register(queries: AuditQueries) -> Callable[[grpc.Server], None]:
    """What ``run_edge`` calls to add the servicer to its server."""
    def add(server: grpc.Server) -> None:
        audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(queries), server)
    return add
