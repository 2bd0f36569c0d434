"""Which of Peru's 25 departments (and the Constitutional Province of Callao) share a land border.

Routing offers a need first in the referral's department, then in a neighbouring one, then anywhere
(docs/adr/0011). Only borders between Peruvian regions count; borders with other countries do not. The
Region enum has 25 values: the 24 departments and Callao. Each border is written on both sides, as a
department's own description lists it; a unit test checks that the two sides agree and every region is here.
"""

from __future__ import annotations

from collections.abc import Mapping

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import Region
from services.core.identity.vocabulary import REGIONS

_BORDERS: dict[str, tuple[str, ...]] = {
    "amazonas": ("cajamarca", "la_libertad", "san_martin", "loreto"),
    "ancash": ("la_libertad", "huanuco", "lima"),
    "apurimac": ("ayacucho", "cusco", "arequipa"),
    "arequipa": ("ica", "ayacucho", "apurimac", "cusco", "puno", "moquegua"),
    "ayacucho": ("junin", "cusco", "apurimac", "arequipa", "ica", "huancavelica"),
    "cajamarca": ("piura", "lambayeque", "la_libertad", "amazonas"),
    "callao": ("lima",),
    "cusco": ("ucayali", "junin", "ayacucho", "apurimac", "arequipa", "puno", "madre_de_dios"),
    "huancavelica": ("junin", "ayacucho", "ica", "lima"),
    "huanuco": ("la_libertad", "san_martin", "loreto", "ucayali", "pasco", "lima", "ancash"),
    "ica": ("lima", "huancavelica", "ayacucho", "arequipa"),
    "junin": ("pasco", "ucayali", "cusco", "ayacucho", "huancavelica", "lima"),
    "la_libertad": ("lambayeque", "cajamarca", "amazonas", "san_martin", "huanuco", "ancash"),
    "lambayeque": ("piura", "cajamarca", "la_libertad"),
    "lima": ("callao", "ancash", "huanuco", "pasco", "junin", "huancavelica", "ica"),
    "loreto": ("amazonas", "san_martin", "huanuco", "ucayali"),
    "madre_de_dios": ("cusco", "puno", "ucayali"),
    "moquegua": ("arequipa", "puno", "tacna"),
    "pasco": ("huanuco", "ucayali", "junin", "lima"),
    "piura": ("tumbes", "lambayeque", "cajamarca"),
    "puno": ("madre_de_dios", "cusco", "arequipa", "moquegua", "tacna"),
    "san_martin": ("amazonas", "loreto", "huanuco", "la_libertad"),
    "tacna": ("moquegua", "puno"),
    "tumbes": ("piura",),
    "ucayali": ("loreto", "huanuco", "pasco", "junin", "cusco", "madre_de_dios"),
}


NEIGHBOURS: Mapping[Region, frozenset[Region]] = {
    REGIONS[word]: frozenset(REGIONS[other] for other in others) for word, others in _BORDERS.items()
}
"""Every region (each value of the Region enum but UNSPECIFIED) -> the regions it borders."""


def neighbours(region: Region) -> frozenset[Region]:
    """The regions bordering ``region`` (empty for UNSPECIFIED or an unknown number)."""
    return NEIGHBOURS.get(region, frozenset())


def are_neighbours(first: Region, second: Region) -> bool:
    """Whether the two regions share a border."""
    return second in neighbours(first)
