"""Alembic's environment, run by ``alembic.command`` on the connection :func:`upgrade` opened and locked."""

from __future__ import annotations

from alembic import context

from services.core.migrations import MigrationError, target_metadata

connection = context.config.attributes.get("connection")
if context.is_offline_mode() or connection is None:
    raise MigrationError("migrations run on a live connection: use services.core.migrations.upgrade()")

context.configure(
    connection=connection,
    target_metadata=target_metadata(),
    compare_type=True,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
