"""Alembic revisions of intake's own tables: the ``intake`` branch, after core_0001 (docs/adr/0007)."""
