"""Intake's database: its migrations (the core tables and the ``intake`` branch) and what they must match."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from services.core.migrations import CORE_METADATA, upgrade
from services.intake.adapters.tables import METADATA

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
INTAKE_METADATA: tuple[sa.MetaData, ...] = (*CORE_METADATA, METADATA)
"""Every table intake's database holds: the event store's, the vault's and intake's own."""


def migrate(url_or_engine: str | sa.Engine) -> None:
    """Bring intake's database to the latest revision of the core and intake branches (idempotent)."""
    upgrade(url_or_engine, version_locations=[MIGRATIONS_DIR])
