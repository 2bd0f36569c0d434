"""Bringing the referral database to the latest revision: the core branch and the ``referral`` branch."""

from __future__ import annotations

import sqlalchemy as sa

from services.core.migrations import upgrade
from services.referral.migrations import MIGRATIONS


def migrate(url_or_engine: str | sa.Engine) -> None:
    """Upgrade the database to every branch's head (event store, key vault and referral tables)."""
    upgrade(url_or_engine, version_locations=[MIGRATIONS])
