"""Every RPC of every service refuses an organisation with no right to it; no edge talks to a stranger.

ong-lor-01 refers an adult in Lima who needs a shelter and legal aid; the shelter offered accepts. Then:

- intake and referral: organisations with no part in the referral call every RPC on its real ids:
  sal-lor-01 (a health provider), aud-lim-01 (an auditor) and alb-pun-01 (a shelter, the role the consent
  names, never offered this referral): PERMISSION_DENIED, every time (ListHandoffs, a provider's own inbox,
  shows the providers nothing of it); the referral and the subject's consents are unchanged afterwards;
- audit: every AuditService RPC (GetCheckpoint, GetInclusionProof, GetConsistencyProof, ReplayLog,
  ComplianceReport) called by organisations that neither audit nor coordinate (the referrer, the
  accepting shelter, a police unit): PERMISSION_DENIED;
- notify: ListDeliveries is every organisation's own delivery log, so it is nobody's to refuse; asked by
  the same outsiders for the offer's event, it shows none of the shelter's deliveries;
- transport: a client whose certificate comes from another CA (a whole second development network with the
  same organisation ids), a client with no certificate, and a plaintext client cannot even reach the
  health check of any edge (UNAVAILABLE: the TLS handshake fails), while the network's own certificate can.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.local.network import NETWORK_SERVICES, LocalNetwork
from services.core.generated.referralnet.audit.v1 import audit_pb2, audit_pb2_grpc
from services.core.generated.referralnet.notify.v1 import notify_pb2, notify_pb2_grpc
from services.core.grpcedge.client import TARGET_NAME_OVERRIDE, org_channel
from services.core.identity.keystore import load_org_tls
from services.core.identity.network import init_network
from tests.e2e.support import RPC_TIMEOUT_S, Partner, wait_for
from tests.outsider_calls import OUTSIDERS, accepted_referral, assert_unchanged, call_everything_as_outsiders

pytestmark = [pytest.mark.security, pytest.mark.timeout(300)]

REFERRER = "ong-lor-01"
NOT_AUDITORS = (REFERRER, "pol-mdd-01", "alb-lim-01")


def test_every_rpc_of_every_service_refuses_an_organisation_with_no_right_to_it(
        org: Callable[[str], Partner], security_network: LocalNetwork) -> None:
    referrer = org(REFERRER)
    accepted = accepted_referral(org, REFERRER, case_file_number=901)
    referral_id, subject_id, shelter = accepted.referral_id, accepted.subject_id, accepted.shelter

    refusals = call_everything_as_outsiders(org, referral_id=referral_id, subject_id=subject_id,
                                            consent_id=accepted.consent_id, handoff_ids=accepted.handoff_ids)

    # Audit: only auditors and coordinators may ask anything.
    event_id = _offer_event_id(security_network, shelter.provider_org, shelter.handoff_id)
    audit_calls: dict[str, Callable[[audit_pb2_grpc.AuditServiceStub], object]] = {
        "GetCheckpoint": lambda a: a.GetCheckpoint(audit_pb2.GetCheckpointRequest(), timeout=RPC_TIMEOUT_S),
        "GetInclusionProof": lambda a: a.GetInclusionProof(audit_pb2.GetInclusionProofRequest(event_id=event_id),
                                                           timeout=RPC_TIMEOUT_S),
        "GetConsistencyProof": lambda a: a.GetConsistencyProof(audit_pb2.GetConsistencyProofRequest(
            first_tree_size=1, second_tree_size=2), timeout=RPC_TIMEOUT_S),
        "ReplayLog": lambda a: list(a.ReplayLog(audit_pb2.ReplayLogRequest(limit=10), timeout=RPC_TIMEOUT_S)),
        "ComplianceReport": lambda a: a.ComplianceReport(audit_pb2.ComplianceReportRequest(subject_id=subject_id),
                                                         timeout=RPC_TIMEOUT_S),
    }
    for org_id in NOT_AUDITORS:
        stub = audit_pb2_grpc.AuditServiceStub(security_network.channel(org_id, "audit"))
        for name, audit_call in audit_calls.items():
            refusals.expect_denied(org_id, f"AuditService/{name}", partial(audit_call, stub))
    auditor = audit_pb2_grpc.AuditServiceStub(security_network.channel("aud-lim-01", "audit"))
    assert auditor.ComplianceReport(audit_pb2.ComplianceReportRequest(subject_id=subject_id),
                                    timeout=RPC_TIMEOUT_S).events_checked >= 0  # the auditor is let in

    # Notify: each organisation's own log; the shelter's deliveries are nobody else's.
    for org_id in (*OUTSIDERS, REFERRER):
        notify = notify_pb2_grpc.NotifyServiceStub(security_network.channel(org_id, "notify"))
        deliveries = notify.ListDeliveries(notify_pb2.ListDeliveriesRequest(event_id=event_id, page_size=500),
                                           timeout=RPC_TIMEOUT_S).deliveries
        if deliveries:
            refusals.failures.append(f"{org_id} ListDeliveries shows {[d.delivery_id for d in deliveries]}")
        refusals.calls += 1
    failures, calls = refusals.failures, refusals.calls
    assert not failures, f"{len(failures)} of {calls} calls by organisations with no right were not refused:\n" + (
        "\n".join(failures))

    assert_unchanged(referrer, accepted)  # nothing they tried changed anything
    print(f"{calls} calls by organisations with no right: all refused")


def _offer_event_id(network: LocalNetwork, provider: str, handoff_id: str) -> str:
    """The event id of the HandoffOffered behind ``provider``'s offer notice (from its own delivery log)."""
    stub = notify_pb2_grpc.NotifyServiceStub(network.channel(provider, "notify"))

    def found() -> str | None:
        deliveries = stub.ListDeliveries(notify_pb2.ListDeliveriesRequest(page_size=500), timeout=RPC_TIMEOUT_S)
        return next((d.event_id for d in deliveries.deliveries if d.reference == handoff_id
                     and d.notice_type == notify_pb2.NOTICE_TYPE_HANDOFF_OFFERED), None)
    return wait_for(found, 60, f"{provider}'s offer delivery of {handoff_id}", interval_s=0.3)


def _health(channel: grpc.Channel) -> grpc.StatusCode:
    """The gRPC status of a health check over ``channel`` (OK when it answered)."""
    try:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)  # type: ignore[attr-defined]
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        return code
    finally:
        channel.close()
    return grpc.StatusCode.OK


def test_a_client_without_a_certificate_of_the_network_ca_cannot_connect_to_any_edge(
        security_network: LocalNetwork, security_network_dir: Path, tmp_path: Path) -> None:
    stranger = init_network(tmp_path / "stranger").layout.root  # another CA; the same organisation ids
    real = load_org_tls(security_network_dir, "pol-mdd-01")
    forged = load_org_tls(stranger, "pol-mdd-01")
    results: dict[tuple[str, str], grpc.StatusCode] = {}
    for service in NETWORK_SERVICES:
        target = security_network.endpoint(service)
        options = [(TARGET_NAME_OVERRIDE, service)]
        results[(service, "network certificate")] = _health(
            org_channel(security_network_dir, "pol-mdd-01", target, server_name=service))
        stranger_credentials = grpc.ssl_channel_credentials(
            root_certificates=real.root_certificates, private_key=forged.private_key,
            certificate_chain=forged.certificate_chain)
        results[(service, "another CA's certificate")] = _health(
            grpc.secure_channel(target, stranger_credentials, options=options))
        results[(service, "no certificate")] = _health(grpc.secure_channel(
            target, grpc.ssl_channel_credentials(root_certificates=real.root_certificates), options=options))
        results[(service, "plaintext")] = _health(grpc.insecure_channel(target))
    refused = {key: code for key, code in results.items() if key[1] != "network certificate"}
    assert {code for key, code in results.items() if key[1] == "network certificate"} == {grpc.StatusCode.OK}, results
    assert set(refused.values()) == {grpc.StatusCode.UNAVAILABLE}, refused
