"""The shared core tables: the event store's (events, outbox, processed_events) and the key vault's.

Revision ID: core_0001
Revises: (none: the root of the ``core`` branch)

A frozen copy of services/core/eventstore/schema.py and services/core/keyvault/store.py as they were; later
changes to those modules come as new revisions. tests/integration/test_migrations.py fails when the two drift.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0001"
down_revision = None
branch_labels = ("core",)
depends_on = None

# BIGINT everywhere but SQLite, whose autoincrementing rowid alias must be spelt INTEGER PRIMARY KEY.
_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ACTIVE = sa.text("state = 'active'")


def upgrade() -> None:
    _event_store()
    _key_vault()


def downgrade() -> None:
    op.drop_index("uq_keyvault_one_active", table_name="keyvault_data_keys")
    op.drop_index("ix_keyvault_data_keys_subject_id", table_name="keyvault_data_keys")
    for table in ("keyvault_data_keys", "keyvault_subjects", "processed_events"):
        op.drop_table(table)
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("events")


def _event_store() -> None:
    op.create_table(
        "events",
        sa.Column("position", _POSITION, autoincrement=True, nullable=False),
        sa.Column("stream_id", sa.String(128), nullable=False),
        sa.Column("stream_sequence", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("canonical_hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("position", name="pk_events"),
        sa.UniqueConstraint("stream_id", "stream_sequence", name="uq_events_stream_sequence"),
        sa.UniqueConstraint("event_id", name="uq_events_event_id"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", _POSITION, autoincrement=True, nullable=False),
        sa.Column("event_position", sa.BigInteger, nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("published_at_us", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(["event_position"], ["events.position"], name="fk_outbox_event_position_events"),
        sa.UniqueConstraint("event_position", name="uq_outbox_event_position"),
    )
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at_us", "id"])
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(128), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("processed_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_processed_events"),
    )


def _key_vault() -> None:
    op.create_table(
        "keyvault_subjects",
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_generation", sa.Integer, nullable=False),
        sa.Column("shredded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("subject_id", name="pk_keyvault_subjects"),
    )
    op.create_table(
        "keyvault_data_keys",
        sa.Column("key_id", sa.String(35), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("kek_id", sa.String(64), nullable=True),
        sa.Column("wrapped", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_keyvault_data_keys"),
        sa.ForeignKeyConstraint(["subject_id"], ["keyvault_subjects.subject_id"],
                                name="fk_keyvault_data_keys_subject_id_keyvault_subjects"),
        sa.UniqueConstraint("subject_id", "category", "version", name="uq_keyvault_subject_category_version"),
        sa.CheckConstraint("state IN ('active', 'retired', 'shredded')", name="ck_keyvault_state"),
        sa.CheckConstraint("(state = 'shredded') = (wrapped IS NULL)", name="ck_keyvault_shredded_has_no_key"),
    )
    op.create_index("ix_keyvault_data_keys_subject_id", "keyvault_data_keys", ["subject_id"])
    op.create_index("uq_keyvault_one_active", "keyvault_data_keys", ["subject_id", "category"], unique=True,
                    sqlite_where=_ACTIVE, postgresql_where=_ACTIVE)
