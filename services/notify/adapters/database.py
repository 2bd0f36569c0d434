"""Bringing the notify database to the latest revision: the core branch and the ``notify`` branch."""

from __future__ import annotations

import sqlalchemy as sa

from services.core.migrations import upgrade
from services.notify.migrations import MIGRATIONS


def migrate(url_or_engine: str | sa.Engine) -> None:
    """Upgrade the database to every branch's head (event store, key vault and notify tables)."""
    upgrade(url_or_engine, version_locations=[MIGRATIONS])
