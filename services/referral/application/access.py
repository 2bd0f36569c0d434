"""Who may do what in the referral API (docs/adr/0011, "Who may do what").

Role comes from the signed directory (the edge put it in the Caller); relationship from this service's
state. A handoff or referral that exists but is not the caller's gets the same PERMISSION_DENIED as one
that does not exist, so an answer never tells whether an id exists.
"""

from __future__ import annotations

from services.core.application import PermissionDenied
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import ORG_ROLE_COORDINATOR, ServiceType
from services.core.grpcedge.caller import Caller
from services.core.identity.directory import Directory, Organisation
from services.core.identity.errors import UnknownOrganisationError
from services.referral.domain.handoff import Handoff
from services.referral.domain.referral import Referral


def not_yours_handoff() -> PermissionDenied:
    """The answer for a handoff the caller is not the provider of (or that does not exist)."""
    return PermissionDenied(es="esta derivación no está asignada a su organización",
                            en="this handoff is not assigned to your organisation")


def not_yours_referral() -> PermissionDenied:
    """The answer for a referral the caller neither made nor coordinates (or that does not exist)."""
    return PermissionDenied(es="solo quien derivó el caso y la coordinación pueden ver o retirar esta derivación",
                            en="only the referrer and the coordinators may see or withdraw this referral")


def provider(directory: Directory, caller: Caller) -> Organisation:
    """The caller's directory entry, if it provides at least one service; PermissionDenied otherwise."""
    try:
        org = directory.org(caller.org_id)
    except UnknownOrganisationError:
        org = None
    if org is None or not org.is_provider:
        raise PermissionDenied(es="solo las organizaciones que prestan servicios tienen bandeja y capacidad",
                               en="only organisations that provide services have an inbox and a capacity")
    return org


def offers(org: Organisation, service_type: ServiceType) -> None:
    """PermissionDenied unless ``org`` offers ``service_type``."""
    if service_type not in org.services:
        raise PermissionDenied(es="su organización no ofrece este servicio en el directorio",
                               en="your organisation does not offer this service in the directory")


def handoff_provider(caller: Caller, handoff: Handoff) -> None:
    """PermissionDenied unless the caller is the handoff's provider."""
    if handoff.provider_org != caller.org_id:
        raise not_yours_handoff()


def referrer_or_coordinator(caller: Caller, referral: Referral) -> None:
    """PermissionDenied unless the caller made the referral or is a coordinator."""
    if caller.org_id != referral.referrer_org and caller.role != ORG_ROLE_COORDINATOR:
        raise not_yours_referral()
