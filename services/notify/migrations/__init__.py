"""The ``notify`` branch of the database revisions (ADR 7): the notify service's own tables.

Alembic loads each revision file here by path: pass :data:`MIGRATIONS` in ``version_locations`` to
``services.core.migrations.upgrade``. This file only makes the folder a package.
"""

from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent
"""This folder: the notify branch's ``version_locations`` entry."""
