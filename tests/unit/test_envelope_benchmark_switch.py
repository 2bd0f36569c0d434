"""The benchmark-only null-crypto switch: honoured only for a benchmark network the variable names exactly.

A normal network (the seed's id, any id without the benchmark prefix, or a benchmark id the variable does
not name) refuses it: events stay encrypted and signed, and its verifiers reject null envelopes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.envelope.benchmark import (
    BENCH_NETWORK_PREFIX,
    ENVIRONMENT_VARIABLE,
    NULL_FORMAT_VERSION,
    bench_network_id,
    null_crypto_enabled,
)
from services.core.envelope.envelope import Sealer, parse_envelope
from services.core.envelope.errors import UnsupportedVersionError
from services.core.envelope.format import SectionKind
from services.core.envelope.verification import Opener, Verifier
from services.core.identity.seed import NETWORK_ID
from services.core.keyvault.keys import DataKey
from tests.unit.envelope_support import (
    PLAINTEXTS,
    POLICE,
    DictResolver,
    SyntheticOrg,
    make_header,
    section_keys,
)

REPO = Path(__file__).resolve().parents[2]


class NamedResolver(DictResolver):
    """A dict-backed directory that also has a network id, as the real Directory does."""

    def __init__(self, network_id: str, org: SyntheticOrg) -> None:
        super().__init__([org])
        self.network_id = network_id


def _seal(network_id: str, org: SyntheticOrg) -> tuple[bytes, dict[SectionKind, DataKey]]:
    keys = section_keys(PLAINTEXTS)
    sealer = Sealer(org.signer, network_id=network_id)
    wire = sealer.seal(make_header(org), {kind: (keys[kind], PLAINTEXTS[kind]) for kind in keys})
    return wire, keys


@pytest.mark.parametrize("network_id", [NETWORK_ID, "referralnet-prod", "bench-other-0123456789ab"])
def test_a_normal_network_refuses_the_switch(monkeypatch: pytest.MonkeyPatch, network_id: str) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, network_id)
    assert not null_crypto_enabled(network_id)
    org = SyntheticOrg.create(POLICE)
    wire, _ = _seal(network_id, org)
    assert parse_envelope(wire).format_version == 1
    assert Verifier(NamedResolver(network_id, org), workers=1).verify(wire).null_crypto is False


def test_a_benchmark_id_the_variable_does_not_name_exactly_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "1")
    assert not null_crypto_enabled(bench_network_id())
    first, second = bench_network_id(), bench_network_id()
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, first)
    assert not null_crypto_enabled(second)
    assert not null_crypto_enabled(None)
    monkeypatch.delenv(ENVIRONMENT_VARIABLE)
    assert not null_crypto_enabled(first)


def test_a_normal_verifier_rejects_a_null_envelope(monkeypatch: pytest.MonkeyPatch) -> None:
    network_id = bench_network_id()
    org = SyntheticOrg.create(POLICE)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, network_id)
    null_wire, _ = _seal(network_id, org)
    assert parse_envelope(null_wire, allow_null_crypto=True).format_version == NULL_FORMAT_VERSION
    with pytest.raises(UnsupportedVersionError):
        parse_envelope(null_wire)
    for verifier_network in (NETWORK_ID, "referralnet-prod"):  # the variable set, but not for this network
        with pytest.raises(UnsupportedVersionError):
            Verifier(NamedResolver(verifier_network, org), workers=1).verify(null_wire)
    monkeypatch.delenv(ENVIRONMENT_VARIABLE)
    with pytest.raises(UnsupportedVersionError):  # the same benchmark network without the variable
        Verifier(NamedResolver(network_id, org), workers=1).verify(null_wire)
    with pytest.raises(UnsupportedVersionError):  # a resolver with no network id never accepts it
        Verifier(DictResolver([org]), workers=1).verify(null_wire)


def test_the_benchmark_network_round_trips_with_crypto_off(monkeypatch: pytest.MonkeyPatch) -> None:
    network_id = bench_network_id()
    assert network_id.startswith(BENCH_NETWORK_PREFIX)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, network_id)
    org = SyntheticOrg.create(POLICE)
    null_wire, keys = _seal(network_id, org)
    for plaintext in PLAINTEXTS.values():
        assert plaintext in null_wire  # not encrypted: exactly why it is for benchmarks only
    verifier = Verifier(NamedResolver(network_id, org), workers=1)
    verified = verifier.verify(null_wire)
    assert verified.null_crypto
    for kind, plaintext in PLAINTEXTS.items():
        assert Opener().open(verified, kind, keys[kind]) == plaintext
    monkeypatch.delenv(ENVIRONMENT_VARIABLE)
    real_wire, real_keys = _seal(network_id, org)  # the switch is read when a Sealer is made
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, network_id)
    real = verifier.verify(real_wire)  # an encrypted, signed envelope is still verified in full
    assert not real.null_crypto
    for kind, plaintext in PLAINTEXTS.items():
        assert Opener().open(real, kind, real_keys[kind]) == plaintext


def test_no_deployment_file_sets_the_variable() -> None:
    """deploy/ (compose, k8s, LocalNetwork) and the Makefile never name it; only bench/ may."""
    for path in [*REPO.joinpath("deploy").rglob("*"), REPO / "Makefile"]:
        if path.is_file() and path.suffix not in {".pyc"}:
            assert ENVIRONMENT_VARIABLE not in path.read_text(errors="ignore"), path
