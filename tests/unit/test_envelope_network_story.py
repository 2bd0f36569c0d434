"""The envelope, the directory and the key vault together, as the services will use them.

Real: a development network made by `network init` (CA, org keys, signed directory), a key vault on a
SQLite file with a local-file KEK, the envelope code. Replaced: nothing (no servers are needed).
"""

from __future__ import annotations

import pytest

from services.core.envelope import (
    BadSignatureError,
    EnvelopeSigner,
    EventHeader,
    Opener,
    Sealer,
    SectionKind,
    ShreddedSubjectError,
    TamperedSectionError,
    Verifier,
    WrongRecipientError,
    new_event_id,
    now_micros,
)
from services.core.identity.keystore import (
    load_ca_certificate,
    load_directory,
    load_org_kem_key,
    load_org_signing_key,
    load_service_signing_key,
)
from services.core.identity.network import init_network
from services.core.keyvault.keys import DataCategory
from services.core.keyvault.release import open_released_key, release_key
from tests.unit.keyvault_support import vault_files

ROUTING = b"shelter,legal_aid|madre_de_dios|immediate|adult"
CASE_FILE = "Persona Sintética 001 · documento SINTETICO-0001 · relato ficticio".encode()


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    folder = tmp_path_factory.mktemp("network") / "net"
    init_network(folder)
    return folder


@pytest.fixture
def directory(network):
    return load_directory(network, ca_certificate=load_ca_certificate(network))


def _header(org: str, key_id: str, service: str = "intake", sequence: int = 1) -> EventHeader:
    return EventHeader(event_id=new_event_id(), event_type="ReferralSubmitted", schema_version=1,
                       stream_id="ref-0001", stream_sequence=sequence, occurred_at_unix_micros=now_micros(),
                       producer_org=org, producer_service=service, signing_key_id=key_id)


def test_a_police_referral_reaches_only_the_shelter_it_was_released_to(network, directory, tmp_path):
    vault = vault_files(tmp_path).vault()
    vault.ensure_subject("subj-0001")
    routing_key = vault.current_key("subj-0001", DataCategory.ROUTING)
    case_key = vault.current_key("subj-0001", DataCategory.CASE_FILE)
    police = EnvelopeSigner("pol-mdd-01", "pol-mdd-01#sig-1", load_org_signing_key(network, "pol-mdd-01"))
    wire = Sealer(police).seal(_header("pol-mdd-01", "pol-mdd-01#sig-1"), {
        SectionKind.ROUTING: (routing_key, ROUTING), SectionKind.CASE_FILE: (case_key, CASE_FILE)})

    verified = Verifier(directory).verify(wire)
    assert verified.header.producer_org == "pol-mdd-01"

    kem_key_id, shelter_public = directory.kem_key("alb-mdd-01")
    released = release_key(vault, case_key.key_id, "alb-mdd-01", kem_key_id, shelter_public, "shelter_intake")
    shelter_key = open_released_key(released, "alb-mdd-01", kem_key_id, load_org_kem_key(network, "alb-mdd-01"))
    assert Opener().open(verified, SectionKind.CASE_FILE, shelter_key) == CASE_FILE

    other_kem_id, _ = directory.kem_key("alb-cus-01")
    with pytest.raises(WrongRecipientError):
        open_released_key(released, "alb-cus-01", other_kem_id, load_org_kem_key(network, "alb-cus-01"))
    with pytest.raises(TamperedSectionError):  # naming itself the recipient does not help without its key
        open_released_key(released, "alb-mdd-01", kem_key_id, load_org_kem_key(network, "alb-cus-01"))

    canonical = verified.canonical_hash()
    vault.shred("subj-0001")
    with pytest.raises(ShreddedSubjectError):
        release_key(vault, case_key.key_id, "alb-mdd-01", kem_key_id, shelter_public, "shelter_intake")
    assert Verifier(directory).verify(wire).canonical_hash() == canonical


def test_a_service_key_signs_only_for_its_own_service(network, directory, tmp_path):
    vault = vault_files(tmp_path).vault()
    vault.ensure_subject("subj-0002")
    routing_key = vault.current_key("subj-0002", DataCategory.ROUTING)
    notify_key = load_service_signing_key(network, "notify")
    as_notify = EnvelopeSigner("svc:notify", "svc:notify#sig-1", notify_key)
    honest = Sealer(as_notify).seal(_header("svc:notify", "svc:notify#sig-1", "notify"),
                                    {SectionKind.ROUTING: (routing_key, ROUTING)})
    assert Verifier(directory).verify(honest).header.producer_org == "svc:notify"

    posing = EnvelopeSigner("svc:referral", "svc:notify#sig-1", notify_key)
    forged = Sealer(posing).seal(_header("svc:referral", "svc:notify#sig-1", "referral"),
                                 {SectionKind.ROUTING: (routing_key, ROUTING)})
    with pytest.raises(BadSignatureError, match="belongs to svc:notify"):
        Verifier(directory).verify(forged)
