"""Routing rules: Peru's department borders, offer deadlines, and ranking the candidates of a need.

What is real: the seed network's organisations (services/core/identity/seed.py, in an in-memory directory),
the adjacency map and the ranking. Nothing else is involved.
"""

from __future__ import annotations

import pytest

from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.consent.v1 import consent_pb2 as consent
from services.core.identity.vocabulary import REGIONS
from services.referral.domain import adjacency
from services.referral.domain.deadlines import OfferDeadlines, parse_offer_deadlines
from services.referral.domain.routing import ConsentFact, Ring, covering_consent, rank_candidates
from tests.unit.identity_factories import make_directory

ORGS = make_directory().directory.organisations
NOW = 1_000_000
LATER = NOW + 10**12
R = vocab


# -- adjacency -------------------------------------------------------------------------------------------------

def test_every_region_of_the_enum_is_in_the_map_and_nothing_else_is():
    assert set(adjacency.NEIGHBOURS) == set(REGIONS.values())
    assert len(adjacency.NEIGHBOURS) == 25  # 24 departments and Callao


def test_every_border_is_written_on_both_sides_and_no_region_borders_itself():
    for word, others in adjacency._BORDERS.items():
        assert word not in others
        for other in others:
            assert word in adjacency._BORDERS[other], f"{word} lists {other} but {other} does not list {word}"
    for region, found in adjacency.NEIGHBOURS.items():
        assert all(region in adjacency.neighbours(other) for other in found)


@pytest.mark.parametrize(("region", "expected"), [
    (R.REGION_MADRE_DE_DIOS, {R.REGION_CUSCO, R.REGION_PUNO, R.REGION_UCAYALI}),
    (R.REGION_LIMA, {R.REGION_CALLAO, R.REGION_ANCASH, R.REGION_HUANUCO, R.REGION_PASCO, R.REGION_JUNIN,
                     R.REGION_HUANCAVELICA, R.REGION_ICA}),
    (R.REGION_CALLAO, {R.REGION_LIMA}),
    (R.REGION_TUMBES, {R.REGION_PIURA}),
    (R.REGION_PUNO, {R.REGION_MADRE_DE_DIOS, R.REGION_CUSCO, R.REGION_AREQUIPA, R.REGION_MOQUEGUA, R.REGION_TACNA}),
    (R.REGION_CUSCO, {R.REGION_UCAYALI, R.REGION_JUNIN, R.REGION_AYACUCHO, R.REGION_APURIMAC, R.REGION_AREQUIPA,
                      R.REGION_PUNO, R.REGION_MADRE_DE_DIOS}),
    (R.REGION_LORETO, {R.REGION_AMAZONAS, R.REGION_SAN_MARTIN, R.REGION_HUANUCO, R.REGION_UCAYALI}),
    (R.REGION_TACNA, {R.REGION_MOQUEGUA, R.REGION_PUNO}),
])
def test_known_borders(region, expected):
    assert adjacency.neighbours(region) == expected


def test_regions_that_do_not_border_each_other():
    assert not adjacency.are_neighbours(R.REGION_MADRE_DE_DIOS, R.REGION_LIMA)
    assert not adjacency.are_neighbours(R.REGION_CALLAO, R.REGION_ICA)
    assert not adjacency.are_neighbours(R.REGION_TUMBES, R.REGION_LAMBAYEQUE)
    assert adjacency.neighbours(R.REGION_UNSPECIFIED) == frozenset()


# -- deadlines -------------------------------------------------------------------------------------------------------

def test_default_deadlines_are_those_of_the_adr():
    deadlines = OfferDeadlines()
    hours = {service: deadlines.for_service(service) // 3_600_000_000 for service in (
        R.SERVICE_TYPE_SHELTER, R.SERVICE_TYPE_LEGAL_AID, R.SERVICE_TYPE_PSYCHOSOCIAL, R.SERVICE_TYPE_MEDICAL,
        R.SERVICE_TYPE_REPATRIATION, R.SERVICE_TYPE_CHILD_PROTECTION)}
    assert hours == {R.SERVICE_TYPE_SHELTER: 2, R.SERVICE_TYPE_LEGAL_AID: 24, R.SERVICE_TYPE_PSYCHOSOCIAL: 48,
                     R.SERVICE_TYPE_MEDICAL: 4, R.SERVICE_TYPE_REPATRIATION: 72, R.SERVICE_TYPE_CHILD_PROTECTION: 72}
    assert parse_offer_deadlines("") == parse_offer_deadlines(None) == deadlines


def test_offer_deadlines_can_be_overridden_per_service_and_for_the_others():
    deadlines = parse_offer_deadlines(" shelter=2h, legal_aid=1d ,psychosocial=30s,others=15m,medical=3m")
    assert deadlines.for_service(R.SERVICE_TYPE_PSYCHOSOCIAL) == 30_000_000
    assert deadlines.for_service(R.SERVICE_TYPE_LEGAL_AID) == 86_400_000_000
    assert deadlines.for_service(R.SERVICE_TYPE_MEDICAL) == 180_000_000
    assert deadlines.for_service(R.SERVICE_TYPE_INTERPRETATION) == 900_000_000
    assert deadlines.expires_at(R.SERVICE_TYPE_PSYCHOSOCIAL, 5) == 30_000_005


@pytest.mark.parametrize(("text", "problem"), [
    ("shelter", "is not <service>"), ("shelter=2x", "is not <service>"), ("shelter=-1h", "is not <service>"),
    ("housing=2h", "'housing' is not a service type"), ("shelter=0s", "longer than 0"),
])
def test_malformed_offer_deadlines_are_refused_naming_the_item(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_offer_deadlines(text)


# -- ranking ----------------------------------------------------------------------------------------------------------

def role_consent(role: int, *, consent_id: str = "con-role", purposes=(consent.PURPOSE_SERVICE_DELIVERY,),
                 categories=(consent.DATA_CATEGORY_ROUTING,), expires_at: int = LATER,
                 revoked_at: int | None = None) -> ConsentFact:
    return ConsentFact(consent_id, "sub-1", "", role, frozenset(purposes), frozenset(categories), expires_at,
                       revoked_at)


def org_consent(org_id: str, consent_id: str = "con-org", expires_at: int = LATER) -> ConsentFact:
    return ConsentFact(consent_id, "sub-1", org_id, 0, frozenset({consent.PURPOSE_SERVICE_DELIVERY}),
                       frozenset({consent.DATA_CATEGORY_ROUTING}), expires_at)


EVERY_PROVIDER_ROLE = [role_consent(role, consent_id=f"con-{role}") for role in (
    R.ORG_ROLE_SHELTER, R.ORG_ROLE_LEGAL, R.ORG_ROLE_PSYCHOSOCIAL, R.ORG_ROLE_HEALTH, R.ORG_ROLE_CHILD_PROTECTION,
    R.ORG_ROLE_NGO)]


def ranked(service: vocab.ServiceType, region: vocab.Region = R.REGION_MADRE_DE_DIOS, *, minor: bool = False,
           consents: list[ConsentFact] = EVERY_PROVIDER_ROLE, capacity: dict[str, int] | None = None,
           offered: frozenset[str] = frozenset(), at: int = NOW) -> list[str]:
    return [candidate.org_id for candidate in rank_candidates(
        ORGS, service_type=service, region=region, minor=minor, consents=consents, capacity=capacity or {},
        already_offered=offered, at=at)]


def test_an_adult_in_madre_de_dios_needing_shelter_goes_to_the_local_shelter_then_cusco_never_the_minors_one():
    assert ranked(R.SERVICE_TYPE_SHELTER) == ["alb-mdd-01", "alb-cus-01", "alb-lim-01"]
    assert ranked(R.SERVICE_TYPE_SHELTER, offered=frozenset({"alb-mdd-01"}))[0] == "alb-cus-01"


def test_a_minor_in_madre_de_dios_needing_shelter_goes_to_shelters_serving_minors_only():
    assert ranked(R.SERVICE_TYPE_SHELTER, minor=True) == ["alb-mdd-01", "alb-pun-01"]


def test_legal_aid_goes_first_to_the_neighbouring_puno_provider_then_lima():
    found = rank_candidates(ORGS, service_type=R.SERVICE_TYPE_LEGAL_AID, region=R.REGION_MADRE_DE_DIOS, minor=False,
                            consents=EVERY_PROVIDER_ROLE, capacity={}, already_offered=(), at=NOW)
    assert [(c.org_id, c.ring) for c in found] == [("leg-aqp-01", Ring.NEIGHBOUR), ("leg-lim-01", Ring.ELSEWHERE)]
    assert found[0].consent_id == f"con-{R.ORG_ROLE_LEGAL}"


def test_psychosocial_care_goes_to_cusco_then_lima():
    assert ranked(R.SERVICE_TYPE_PSYCHOSOCIAL) == ["psi-cus-01", "psi-lim-01"]


def test_within_a_ring_most_places_published_come_first_and_unpublished_after_them():
    # in Lima, alb-lim-01 is local; alb-cus-01 and alb-mdd-01 are both elsewhere
    assert ranked(R.SERVICE_TYPE_SHELTER, R.REGION_LIMA) == ["alb-lim-01", "alb-cus-01", "alb-mdd-01"]
    assert ranked(R.SERVICE_TYPE_SHELTER, R.REGION_LIMA, capacity={"alb-mdd-01": 3}) == [
        "alb-lim-01", "alb-mdd-01", "alb-cus-01"]
    assert ranked(R.SERVICE_TYPE_SHELTER, R.REGION_LIMA, capacity={"alb-mdd-01": 3, "alb-cus-01": 4}) == [
        "alb-lim-01", "alb-cus-01", "alb-mdd-01"]


def test_no_capacity_published_counts_as_available_and_zero_does_not():
    assert ranked(R.SERVICE_TYPE_SHELTER, capacity={"alb-mdd-01": 0}) == ["alb-cus-01", "alb-lim-01"]
    assert ranked(R.SERVICE_TYPE_SHELTER, capacity={"alb-mdd-01": 1}) == ["alb-mdd-01", "alb-cus-01", "alb-lim-01"]


def test_only_orgs_covered_by_consent_are_candidates():
    assert ranked(R.SERVICE_TYPE_SHELTER, consents=[org_consent("alb-lim-01")]) == ["alb-lim-01"]
    assert ranked(R.SERVICE_TYPE_SHELTER, consents=[role_consent(R.ORG_ROLE_LEGAL)]) == []
    assert ranked(R.SERVICE_TYPE_SHELTER, consents=[]) == []


@pytest.mark.parametrize(("fact", "valid_just_before"), [
    (role_consent(R.ORG_ROLE_SHELTER, purposes=(consent.PURPOSE_LEGAL_PROCEEDINGS,)), False),
    (role_consent(R.ORG_ROLE_SHELTER, categories=(consent.DATA_CATEGORY_CASE_FILE,)), False),
    (role_consent(R.ORG_ROLE_SHELTER, expires_at=NOW), True),
    (role_consent(R.ORG_ROLE_SHELTER, revoked_at=NOW), True),
], ids=["wrong purpose", "wrong category", "expired at that instant", "revoked at that instant"])
def test_a_consent_that_does_not_cover_routing_for_service_delivery_at_that_instant_is_ignored(
        fact, valid_just_before):
    assert ranked(R.SERVICE_TYPE_SHELTER, consents=[fact]) == []
    just_before = ranked(R.SERVICE_TYPE_SHELTER, consents=[fact], at=NOW - 1)
    assert just_before == (["alb-mdd-01", "alb-cus-01", "alb-lim-01"] if valid_just_before else [])


def test_a_consent_naming_the_org_is_preferred_to_one_naming_its_role():
    shelter = next(org for org in ORGS if org.org_id == "alb-mdd-01")
    chosen = covering_consent(shelter, [role_consent(R.ORG_ROLE_SHELTER, expires_at=LATER * 2),
                                        org_consent("alb-mdd-01")], NOW)
    assert chosen is not None and chosen.consent_id == "con-org"
    assert covering_consent(shelter, [org_consent("alb-cus-01")], NOW) is None
