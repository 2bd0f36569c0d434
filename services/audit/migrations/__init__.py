"""Alembic revisions of audit's own tables: the ``audit`` branch, after core_0001 (docs/adr/0007)."""
