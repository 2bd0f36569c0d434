"""Audit's database: its migrations (the core tables and the ``audit`` branch) and what they must match."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from services.audit.adapters.custody_tables import CUSTODY_METADATA
from services.audit.adapters.tables import AUDIT_METADATA
from services.core.migrations import CORE_METADATA, upgrade

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
AUDIT_DATABASE_METADATA: tuple[sa.MetaData, ...] = (*CORE_METADATA, AUDIT_METADATA, CUSTODY_METADATA)
"""Every table audit's database holds: the event store's, the vault's, the ledger's (audit_0001) and the
worker's bookkeeping (audit_0002)."""


def migrate(url_or_engine: str | sa.Engine) -> None:
    """Bring audit's database to the latest revision of the core and audit branches (idempotent)."""
    upgrade(url_or_engine, version_locations=[MIGRATIONS_DIR])
