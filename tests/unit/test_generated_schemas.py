"""The committed generated code matches proto/, and the shared vocabulary has the shape routing relies on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.descriptor import EnumDescriptor

from services.core.generated.referralnet.common.v1 import vocabulary_pb2

REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATED = REPO_ROOT / "services" / "core" / "generated"
GENERATE_SCRIPT = REPO_ROOT / "proto" / "generate.sh"

VOCABULARY_ENUMS = {"OrgRole", "Region", "ServiceType", "ExploitationType", "Urgency"}

# The 24 departments of Peru plus the Constitutional Province of Callao.
PERU_REGIONS = {
    "AMAZONAS",
    "ANCASH",
    "APURIMAC",
    "AREQUIPA",
    "AYACUCHO",
    "CAJAMARCA",
    "CALLAO",
    "CUSCO",
    "HUANCAVELICA",
    "HUANUCO",
    "ICA",
    "JUNIN",
    "LA_LIBERTAD",
    "LAMBAYEQUE",
    "LIMA",
    "LORETO",
    "MADRE_DE_DIOS",
    "MOQUEGUA",
    "PASCO",
    "PIURA",
    "PUNO",
    "SAN_MARTIN",
    "TACNA",
    "TUMBES",
    "UCAYALI",
}
PRIORITY_REGIONS = {"CUSCO", "LORETO", "MADRE_DE_DIOS", "LIMA", "PUNO", "AREQUIPA"}


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under root by relative path, leaving out Python's bytecode caches."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def _enum_prefix(enum: EnumDescriptor) -> str:
    """buf's ENUM_VALUE_PREFIX: OrgRole -> ORG_ROLE_."""
    snake = "".join(f"_{char}" if char.isupper() and index else char for index, char in enumerate(enum.name))
    return snake.upper() + "_"


def test_committed_generated_code_matches_a_fresh_generation(tmp_path: Path) -> None:
    fresh = tmp_path / "generated"
    result = subprocess.run(
        ["bash", str(GENERATE_SCRIPT), str(fresh)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"proto/generate.sh failed:\n{result.stdout}\n{result.stderr}"

    committed, expected = _tree(GENERATED), _tree(fresh)
    assert expected, "proto/generate.sh produced no files"
    missing = sorted(expected.keys() - committed.keys())
    stale = sorted(committed.keys() - expected.keys())
    changed = sorted(name for name in expected.keys() & committed.keys() if expected[name] != committed[name])
    assert not (missing or stale or changed), (
        "services/core/generated differs from proto/: run `bash proto/generate.sh` (make proto) "
        "and commit the result; never edit generated code by hand.\n"
        f"missing: {missing}\nstale: {stale}\nchanged: {changed}"
    )


def test_vocabulary_declares_the_shared_enums() -> None:
    assert set(vocabulary_pb2.DESCRIPTOR.enum_types_by_name) == VOCABULARY_ENUMS
    assert vocabulary_pb2.DESCRIPTOR.package == "referralnet.common.v1"


@pytest.mark.parametrize("enum_name", sorted(VOCABULARY_ENUMS))
def test_every_enum_has_an_unspecified_zero_value(enum_name: str) -> None:
    enum = vocabulary_pb2.DESCRIPTOR.enum_types_by_name[enum_name]
    zero = enum.values_by_number.get(0)
    assert zero is not None, f"{enum_name} has no zero value"
    assert zero.name == f"{_enum_prefix(enum)}UNSPECIFIED"
    assert enum.values[0].number == 0, f"{enum_name}: the UNSPECIFIED zero value must come first"


@pytest.mark.parametrize("enum_name", sorted(VOCABULARY_ENUMS))
def test_enum_values_are_prefixed_and_never_aliased(enum_name: str) -> None:
    enum = vocabulary_pb2.DESCRIPTOR.enum_types_by_name[enum_name]
    prefix = _enum_prefix(enum)
    assert [value.name for value in enum.values if not value.name.startswith(prefix)] == []
    numbers = [value.number for value in enum.values]
    assert len(set(numbers)) == len(numbers), f"{enum_name} maps two names to one number"


def test_region_is_exactly_the_departments_of_peru_and_callao() -> None:
    values = vocabulary_pb2.DESCRIPTOR.enum_types_by_name["Region"].values
    regions = {value.name.removeprefix("REGION_") for value in values if value.number != 0}
    assert len(regions) == 25
    assert regions == PERU_REGIONS
    assert regions >= PRIORITY_REGIONS
    assert vocabulary_pb2.Region.Value("REGION_UNSPECIFIED") == 0
