"""The synthetic development network that ``referralnet network init`` creates.

Every organisation here is fictional: each name says so ("Sintético/a", "Ficticio/a", "Fictional",
"Synthetic") and none is, or abbreviates, a real institution's name. There are no people, addresses,
telephone numbers or e-mail addresses. At least one organisation plays each role, and the six priority
departments (Cusco, Loreto, Madre de Dios, Lima, Puno, Arequipa) are all served.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import OrgRole, Region, ServiceType
from services.core.identity.vocabulary import parse_region, parse_role, parse_service_type

NETWORK_ID = "referralnet-dev"
SEED_REGIONS = ("cusco", "loreto", "madre_de_dios", "lima", "puno", "arequipa")
FICTIONAL_MARKERS = ("Sintétic", "Ficticia", "Ficticio", "Fictional", "Synthetic")


@dataclass(frozen=True)
class SeedOrganisation:
    """What ``network init`` needs to create one organisation (its keys are generated)."""

    org_id: str
    display_name: str
    role: OrgRole
    regions: tuple[Region, ...]
    services: tuple[ServiceType, ...] = ()
    language: str = "es"
    age_group: str = "all"


def _org(
    org_id: str,
    name: str,
    role: str,
    regions: tuple[str, ...],
    services: tuple[str, ...] = (),
    *,
    language: str = "es",
    age_group: str = "all",
) -> SeedOrganisation:
    return SeedOrganisation(
        org_id=org_id,
        display_name=name,
        role=parse_role(role),
        regions=tuple(parse_region(region) for region in regions),
        services=tuple(parse_service_type(service) for service in services),
        language=language,
        age_group=age_group,
    )


SEED_ORGANISATIONS: tuple[SeedOrganisation, ...] = (
    # Identify victims and submit referrals.
    _org("pol-mdd-01", "Unidad Policial Sintética contra la Trata - Madre de Dios", "police", ("madre_de_dios",)),
    _org("pol-cus-01", "Unidad Policial Sintética contra la Trata - Cusco", "police", ("cusco",)),
    _org("fis-lim-01", "Fiscalía Ficticia Especializada en Trata - Lima", "prosecutor", ("lima",)),
    _org("ong-cus-01", "Asociación Ficticia Caminos Seguros", "ngo", ("cusco",), ("family_reintegration",)),
    _org(
        "ong-lor-01",
        "Fictional River Network Foundation (synthetic NGO)",
        "ngo",
        ("loreto",),
        ("repatriation", "interpretation"),
        language="en",
    ),
    # Providers.
    _org("alb-cus-01", "Casa de Acogida Sintética Cusco", "shelter", ("cusco",), ("shelter",), age_group="adults"),
    _org("alb-lim-01", "Hogar Refugio Ficticio Lima", "shelter", ("lima",), ("shelter",), age_group="adults"),
    _org("alb-mdd-01", "Albergue Temporal Sintético Madre de Dios", "shelter", ("madre_de_dios",), ("shelter",)),
    _org(
        "alb-pun-01",
        "Casa Hogar Ficticia para Niñas, Niños y Adolescentes - Puno",
        "shelter",
        ("puno",),
        ("shelter", "education_vocational"),
        age_group="minors",
    ),
    _org("leg-lim-01", "Consultorio Jurídico Ficticio Lima", "legal", ("lima",), ("legal_aid",)),
    _org("leg-aqp-01", "Defensa Legal Sintética Arequipa", "legal", ("arequipa", "puno"), ("legal_aid",)),
    _org("psi-cus-01", "Centro Psicosocial Sintético Cusco", "psychosocial", ("cusco",), ("psychosocial",)),
    _org("psi-lim-01", "Centro Psicosocial Ficticio Lima", "psychosocial", ("lima",), ("psychosocial",)),
    _org("sal-lor-01", "Puesto de Salud Sintético Loreto", "health", ("loreto",), ("medical",)),
    _org(
        "pro-nna-01",
        "Autoridad Ficticia de Protección de Niñas, Niños y Adolescentes",
        "child_protection",
        SEED_REGIONS,
        ("child_protection",),
        age_group="minors",
    ),
    # Oversight.
    _org("coo-lim-01", "Secretaría Sintética de la Comisión Interinstitucional", "coordinator", SEED_REGIONS),
    _org("aud-lim-01", "Fictional Donor Audit Team (synthetic)", "auditor", SEED_REGIONS, language="en"),
)
