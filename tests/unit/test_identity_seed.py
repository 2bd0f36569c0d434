"""The synthetic development network: every role and priority department covered, nothing real-looking."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cryptography import x509

from services.core.identity.keystore import load_directory
from services.core.identity.network import NetworkCreated, init_network
from services.core.identity.seed import FICTIONAL_MARKERS, SEED_ORGANISATIONS, SEED_REGIONS
from services.core.identity.vocabulary import REGIONS, ROLES, SERVICE_TYPES, region_word, role_word

# Names and acronyms of real Peruvian institutions and programmes that must never appear as an organisation.
REAL_INSTITUTIONS = (
    "Policía Nacional",
    "Policia Nacional",
    "PNP",
    "DIRCTPTIM",
    "Ministerio Público",
    "Ministerio Publico",
    "FISTRAP",
    "MIMP",
    "Ministerio de la Mujer",
    "Ministerio del Interior",
    "Unidad de Protección Especial",
    "UPE",
    "DEMUNA",
    "INABIF",
    "Aurora",
    "CEM",
    "MINSA",
    "Defensoría del Pueblo",
    "Comisión Multisectorial",
    "CHS",
    "Capital Humano",
)
PII_PATTERNS = {
    "e-mail": re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"),
    "phone or id number": re.compile(r"\+?\d[\d -]{5,}\d"),
    "url": re.compile(r"https?://|www\."),
}
KEY_MATERIAL = {"public_key", "tls_cert_sha256", "issued_at"}


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> NetworkCreated:
    return init_network(tmp_path_factory.mktemp("seed") / "network")


def test_every_role_is_played_by_at_least_one_organisation(network):
    assert {role_word(org.role) for org in network.directory.organisations} == set(ROLES)


def test_the_six_priority_departments_are_covered():
    served = {region_word(region) for seed in SEED_ORGANISATIONS for region in seed.regions}
    assert set(SEED_REGIONS) == {"cusco", "loreto", "madre_de_dios", "lima", "puno", "arequipa"}
    assert served == set(SEED_REGIONS)


@pytest.mark.parametrize(
    ("service", "regions"),
    [
        ("shelter", ("cusco", "lima", "madre_de_dios", "puno")),
        ("legal_aid", ("lima", "arequipa")),
        ("psychosocial", ("cusco", "lima")),
        ("medical", ("loreto",)),
        ("child_protection", SEED_REGIONS),
    ],
)
def test_providers_are_where_the_development_network_needs_them(network, service, regions):
    for region in regions:
        assert network.directory.providers_of(SERVICE_TYPES[service], REGIONS[region]), (service, region)


def test_there_is_a_shelter_for_minors_and_the_child_protection_authority_serves_minors(network):
    shelter = SERVICE_TYPES["shelter"]
    minors = [org for region in SEED_REGIONS for org in network.directory.providers_of(shelter, REGIONS[region])]
    assert any(org.age_group == "minors" for org in minors)
    (authority,) = network.directory.by_role(ROLES["child_protection"])
    assert authority.age_group == "minors"


@pytest.mark.parametrize("seed", SEED_ORGANISATIONS, ids=[seed.org_id for seed in SEED_ORGANISATIONS])
def test_every_name_says_it_is_fictional_and_is_no_real_institution(seed):
    assert any(marker in seed.display_name for marker in FICTIONAL_MARKERS), seed.display_name
    for real in REAL_INSTITUTIONS:
        assert not re.search(rf"\b{re.escape(real)}\b", seed.display_name), (real, seed.display_name)


def _strings(value: object, key: str = ""):
    if isinstance(value, dict):
        for child_key, child in value.items():
            yield from _strings(child, child_key)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, key)
    elif isinstance(value, str) and key not in KEY_MATERIAL:
        yield key, value


def test_no_real_looking_personal_data_in_the_directory_or_certificates(network):
    root: Path = network.layout.root
    texts = list(_strings(json.loads((root / "directory.json").read_bytes())))
    for pem in root.rglob("*.pem"):
        certificate = x509.load_pem_x509_certificate(pem.read_bytes())
        texts += [("subject", str(attribute.value)) for attribute in certificate.subject]
    assert len(texts) > 100
    for key, text in texts:
        for kind, pattern in PII_PATTERNS.items():
            assert not pattern.search(text), (kind, key, text)


def test_the_privacy_scan_would_catch_personal_data():
    """The patterns above are not vacuous: planted canaries are found."""
    canaries = ["Contacto: maria.quispe@correo.pe", "Cel. 987 654 321", "DNI 40123456", "https://ong.example"]
    assert all(any(p.search(c) for p in PII_PATTERNS.values()) for c in canaries)


def test_the_seed_loads_back_from_disk_unchanged(network):
    assert load_directory(network.layout.root) == network.directory
