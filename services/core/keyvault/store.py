"""The vault's tables (SQLAlchemy 2.x Core). Only wrapped keys are stored, never a usable key.

``keyvault_subjects`` has one row per subject: it is the lock that serialises rotation with shredding, and the
tombstone that keeps a shredded subject shredded. ``keyvault_data_keys`` has one row per key version; shredding
sets ``wrapped`` to NULL and ``state`` to ``shredded`` but keeps the row, so a later lookup of that key id
says "shredded" rather than "unknown". Alembic migrations will take over from :func:`create_all` later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from services.core.keyvault.keys import DataCategory, KeyMetadata, KeyState

METADATA = sa.MetaData()

subjects = sa.Table(
    "keyvault_subjects",
    METADATA,
    sa.Column("subject_id", sa.String(128), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("key_generation", sa.Integer, nullable=False),  # bumped by every key change (takes the row lock)
    sa.Column("shredded_at", sa.DateTime(timezone=True), nullable=True),
)

data_keys = sa.Table(
    "keyvault_data_keys",
    METADATA,
    sa.Column("key_id", sa.String(35), primary_key=True),
    sa.Column(
        "subject_id", sa.String(128), sa.ForeignKey("keyvault_subjects.subject_id"), nullable=False, index=True
    ),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("kek_id", sa.String(64), nullable=True),
    sa.Column("wrapped", sa.LargeBinary, nullable=True),  # NULL once shredded
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("subject_id", "category", "version", name="uq_keyvault_subject_category_version"),
    sa.CheckConstraint("state IN ('active', 'retired', 'shredded')", name="ck_keyvault_state"),
    sa.CheckConstraint("(state = 'shredded') = (wrapped IS NULL)", name="ck_keyvault_shredded_has_no_key"),
)

# At most one active version per (subject, category): two racing rotations cannot both win.
sa.Index(
    "uq_keyvault_one_active",
    data_keys.c.subject_id,
    data_keys.c.category,
    unique=True,
    sqlite_where=data_keys.c.state == "active",
    postgresql_where=data_keys.c.state == "active",
)


def create_all(engine: sa.Engine) -> None:
    """Create the vault's tables and indexes if they do not exist yet (idempotent)."""
    METADATA.create_all(engine)


def subject_row(conn: sa.Connection, subject_id: str) -> sa.Row[Any] | None:
    """The subject's row (its tombstone once shredded), or None if the vault never saw it."""
    return conn.execute(sa.select(subjects).where(subjects.c.subject_id == subject_id)).first()


def row_metadata(row: sa.Row[Any]) -> KeyMetadata:
    """A ``keyvault_data_keys`` row as :class:`KeyMetadata` (times in UTC)."""
    created = row.created_at
    if created.tzinfo is None:  # SQLite keeps no zone; the vault writes UTC only
        created = created.replace(tzinfo=UTC)
    return KeyMetadata(
        row.key_id, row.subject_id, DataCategory(row.category), row.version, created, KeyState(row.state)
    )


def utcnow() -> datetime:
    """The time the vault writes: aware, UTC."""
    return datetime.now(UTC)
