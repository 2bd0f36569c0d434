"""``network init`` on disk: files and modes, the signed directory, the loaders, and refusing to overwrite."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from services.core.identity import pki
from services.core.identity.directory_codec import dump_directory, parse_directory
from services.core.identity.directory_signature import sign_directory
from services.core.identity.errors import DirectorySignatureError, KeystoreError, NetworkExistsError
from services.core.identity.keystore import (
    load_ca_certificate,
    load_directory,
    load_org_kem_key,
    load_org_signing_key,
    load_org_tls,
    load_service_signing_key,
    load_service_tls,
)
from services.core.identity.network import NetworkCreated, init_network
from services.core.identity.peer import peer_identity
from services.core.identity.records import NETWORK_SERVICES
from services.core.identity.seed import SEED_ORGANISATIONS
from tests.unit.identity_factories import raw

PRIVATE_FILES = {"signing.key", "kem.key", "tls.key", "probe.key", "ca.key", "nrk-1.key"}


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> NetworkCreated:
    """One network for the read-only tests of this module (tests that modify files make their own)."""
    return init_network(tmp_path_factory.mktemp("shared") / "network")


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    init_network(tmp_path / "network")
    return tmp_path / "network"


def _snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(path.relative_to(root)): (stat.S_IMODE(path.stat().st_mode), path.read_bytes() if path.is_file() else b"")
        for path in sorted(root.rglob("*"))
    }


# -- files and modes ----------------------------------------------------------------------------------------


def test_init_creates_exactly_the_layout_with_private_modes(network):
    root = network.layout.root
    expected = {"ca/ca.pem", "ca/ca.key", "directory.json", "directory.json.sig", "routing/nrk-1.key"}
    for seed in SEED_ORGANISATIONS:
        expected |= {f"orgs/{seed.org_id}/{name}" for name in ("signing.key", "kem.key", "tls.key", "tls.pem")}
    for service in NETWORK_SERVICES:
        expected |= {f"services/{service}/{name}"
                     for name in ("signing.key", "tls.key", "tls.pem", "probe.key", "probe.pem")}
    files = {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}
    assert files == expected
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            assert mode == 0o700, path
        elif path.name in PRIVATE_FILES:
            assert mode == 0o600, path
        else:
            assert mode == 0o644, path


def test_init_leaves_no_staging_folder_behind(network):
    assert [path.name for path in network.layout.root.parent.iterdir()] == ["network"]


# -- the signed directory -----------------------------------------------------------------------------------


def test_load_directory_returns_what_init_signed(network):
    loaded = load_directory(network.layout.root)
    assert loaded == network.directory
    assert {org.org_id for org in loaded.organisations} == {seed.org_id for seed in SEED_ORGANISATIONS}
    assert {svc.name for svc in loaded.services} == set(NETWORK_SERVICES)


@pytest.mark.parametrize("position", [0, 1000, -2, -1], ids=["first", "middle", "second-last", "last"])
def test_a_directory_with_one_byte_changed_fails_to_load(fresh, position):
    path = fresh / "directory.json"
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DirectorySignatureError, match="modified after the CA signed it"):
        load_directory(fresh)


def test_a_still_valid_directory_that_was_edited_fails_to_load(fresh):
    """Swapping two orgs' signing keys keeps the file parseable; only the signature catches it."""
    path = fresh / "directory.json"
    document = json.loads(path.read_bytes())
    first, second = document["organisations"][0]["signing_key"], document["organisations"][1]["signing_key"]
    first["public_key"], second["public_key"] = second["public_key"], first["public_key"]
    edited = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    parse_directory(edited)
    path.write_bytes(edited)
    with pytest.raises(DirectorySignatureError):
        load_directory(fresh)


def test_a_directory_re_signed_by_another_ca_fails_against_the_pinned_ca(fresh):
    pinned = load_ca_certificate(fresh)
    attacker = pki.create_ca("referralnet-dev")
    data = (fresh / "directory.json").read_bytes()
    (fresh / "directory.json.sig").write_bytes(sign_directory(data, attacker))
    (fresh / "ca" / "ca.pem").write_bytes(attacker.certificate.public_bytes(Encoding.PEM))
    load_directory(fresh)  # the folder is self-consistent again ...
    with pytest.raises(DirectorySignatureError, match="different CA"):
        load_directory(fresh, ca_certificate=pinned)  # ... but not under the CA the service trusts


@pytest.mark.parametrize("content", [None, b"", b"{}", b'{"format_version":1}'])
def test_a_missing_or_broken_signature_file_fails_to_load(fresh, content):
    signature = fresh / "directory.json.sig"
    if content is None:
        signature.unlink()
    else:
        signature.write_bytes(content)
    with pytest.raises((DirectorySignatureError, KeystoreError)):
        load_directory(fresh)


def test_the_directory_signature_verifies_on_untouched_bytes(fresh):
    """Control for the tamper tests: re-writing the same bytes keeps it loadable."""
    path = fresh / "directory.json"
    path.write_bytes(path.read_bytes())
    assert load_directory(fresh).serial == 1
    assert dump_directory(load_directory(fresh)) == path.read_bytes()


# -- loaders ------------------------------------------------------------------------------------------------


def test_loaded_private_keys_match_the_directory(network):
    root, directory = network.layout.root, network.directory
    ca = load_ca_certificate(root)
    for org in directory.organisations:
        signing = load_org_signing_key(root, org.org_id)
        _, public = directory.signing_key(org.signing_key.key_id)
        public.verify(signing.sign(b"header"), b"header")
        assert raw(load_org_kem_key(root, org.org_id)) == org.kem_key.public_bytes
        tls = load_org_tls(root, org.org_id)
        identity = peer_identity(tls.certificate_chain, ca)
        assert (identity.org_id, identity.role, identity.tls_cert_sha256) == (org.org_id, org.role, org.tls_cert_sha256)
    for service in directory.services:
        assert raw(load_service_signing_key(root, service.name)) == service.signing_key.public_bytes
        tls = load_service_tls(root, service.name)
        assert pki.fingerprint(x509.load_pem_x509_certificate(tls.certificate_chain)) == service.tls_cert_sha256
        assert tls.root_certificates == (root / "ca" / "ca.pem").read_bytes()


def test_a_private_key_readable_by_others_is_refused(fresh):
    (fresh / "orgs" / "alb-cus-01" / "signing.key").chmod(0o644)
    with pytest.raises(KeystoreError, match="chmod 600"):
        load_org_signing_key(fresh, "alb-cus-01")


def test_a_key_of_the_wrong_type_is_refused(fresh):
    folder = fresh / "orgs" / "alb-cus-01"
    os.replace(folder / "kem.key", folder / "signing.key")
    with pytest.raises(KeystoreError, match="expected an Ed25519"):
        load_org_signing_key(fresh, "alb-cus-01")


@pytest.mark.parametrize("org_id", ["../ca", "alb-cus-01/../../ca", "nobody-01", ""])
def test_loaders_refuse_unknown_or_path_like_org_ids(network, org_id):
    with pytest.raises(KeystoreError):
        load_org_signing_key(network.layout.root, org_id)


# -- refusing to overwrite ----------------------------------------------------------------------------------


def test_re_init_without_force_refuses_and_touches_nothing(fresh):
    before = _snapshot(fresh)
    with pytest.raises(NetworkExistsError, match="--force"):
        init_network(fresh)
    assert _snapshot(fresh) == before
    assert [path.name for path in fresh.parent.iterdir()] == ["network"]


def test_re_init_with_force_replaces_the_network(fresh):
    old_ca = (fresh / "ca" / "ca.pem").read_bytes()
    created = init_network(fresh, force=True)
    assert (fresh / "ca" / "ca.pem").read_bytes() != old_ca
    assert load_directory(fresh) == created.directory
    assert [path.name for path in fresh.parent.iterdir()] == ["network"]


def test_force_never_replaces_a_folder_that_is_not_a_network(tmp_path):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(NetworkExistsError, match="not a network folder"):
        init_network(folder, force=True)
    assert (folder / "notes.txt").read_text() == "keep me"


def test_an_empty_existing_folder_is_used(tmp_path):
    init_network(tmp_path)
    assert load_directory(tmp_path).network_id == "referralnet-dev"
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700


def test_a_file_in_the_way_is_refused_even_with_force(tmp_path):
    (tmp_path / "network").write_text("x")
    with pytest.raises(NetworkExistsError, match="not a folder"):
        init_network(tmp_path / "network", force=True)


def test_a_failure_during_generation_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("disk full")

    monkeypatch.setattr("services.core.identity.network.sign_directory", boom)
    with pytest.raises(RuntimeError):
        init_network(tmp_path / "network")
    assert list(tmp_path.iterdir()) == []
