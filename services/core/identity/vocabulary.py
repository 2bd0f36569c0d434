"""The words of the shared vocabulary (proto/referralnet/common/v1/vocabulary.proto) as the directory writes them.

The directory, certificates and CLI spell an enum value as its proto name without the enum prefix, in lower
case: ``ORG_ROLE_CHILD_PROTECTION`` is ``child_protection``, ``REGION_MADRE_DE_DIOS`` is ``madre_de_dios``,
``SERVICE_TYPE_LEGAL_AID`` is ``legal_aid``. The ``*_UNSPECIFIED`` values have no word: they are never valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar, cast

# Generated enums are plain ints at run time and items() is typed ``int``, hence the casts below.
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import OrgRole, Region, ServiceType

_E = TypeVar("_E", OrgRole, Region, ServiceType)


def _table(items: list[tuple[str, int]], prefix: str) -> dict[str, int]:
    return {name.removeprefix(prefix).lower(): value for name, value in items if value != 0}


ROLES = cast("dict[str, OrgRole]", _table(OrgRole.items(), "ORG_ROLE_"))
REGIONS = cast("dict[str, Region]", _table(Region.items(), "REGION_"))
SERVICE_TYPES = cast("dict[str, ServiceType]", _table(ServiceType.items(), "SERVICE_TYPE_"))

_ROLE_WORDS = {value: word for word, value in ROLES.items()}
_REGION_WORDS = {value: word for word, value in REGIONS.items()}
_SERVICE_WORDS = {value: word for word, value in SERVICE_TYPES.items()}


def _parse(kind: str, word: str, table: Mapping[str, _E]) -> _E:
    if word not in table:
        msg = f"{word!r} is not a {kind}; expected one of {', '.join(sorted(table))}"
        raise ValueError(msg)
    return table[word]


def _word(kind: str, value: _E, table: Mapping[_E, str]) -> str:
    if value not in table:
        msg = f"{value!r} is not a valid {kind} value"
        raise ValueError(msg)
    return table[value]


def parse_role(word: str) -> OrgRole:
    """``"police"`` -> ``ORG_ROLE_POLICE``; ValueError listing the valid words otherwise."""
    return _parse("role", word, ROLES)


def parse_region(word: str) -> Region:
    """``"madre_de_dios"`` -> ``REGION_MADRE_DE_DIOS``; ValueError listing the valid words otherwise."""
    return _parse("region", word, REGIONS)


def parse_service_type(word: str) -> ServiceType:
    """``"legal_aid"`` -> ``SERVICE_TYPE_LEGAL_AID``; ValueError listing the valid words otherwise."""
    return _parse("service type", word, SERVICE_TYPES)


def role_word(role: OrgRole) -> str:
    """``ORG_ROLE_POLICE`` -> ``"police"``; ValueError for UNSPECIFIED or an unknown number."""
    return _word("role", role, _ROLE_WORDS)


def region_word(region: Region) -> str:
    """``REGION_MADRE_DE_DIOS`` -> ``"madre_de_dios"``; ValueError for UNSPECIFIED or an unknown number."""
    return _word("region", region, _REGION_WORDS)


def service_type_word(service_type: ServiceType) -> str:
    """``SERVICE_TYPE_LEGAL_AID`` -> ``"legal_aid"``; ValueError for UNSPECIFIED or an unknown number."""
    return _word("service type", service_type, _SERVICE_WORDS)
