"""The event store's tables (SQLAlchemy 2.x Core), the same in every service's own database.

``events`` is the service's source of truth: one row per event, its sealed envelope, gap-free sequences per
stream (unique stream + sequence: the optimistic-concurrency guard). ``outbox`` names the events still to be
published to Kafka, written in the same transaction as the events. ``processed_events`` is the consumer
side: the ids of events a consumer has applied, written in the handler's transaction, so a redelivered
record is dropped. Alembic migrations (services/core/migrations) create them.
"""

from __future__ import annotations

import sqlalchemy as sa

# Every constraint gets a predictable name, so a later migration can alter or drop it on any backend (SQLite
# batch mode rebuilds tables and needs the names). The migration spells out the same names. No "ck" entry: it
# would rename explicitly named check constraints.
NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ix": "ix_%(column_0_label)s",
}
METADATA = sa.MetaData(naming_convention=NAMING_CONVENTION)

# The constraints whose violation means something to the store (see errors.py and transaction.py).
STREAM_SEQUENCE_CONSTRAINT = "uq_events_stream_sequence"
EVENT_ID_CONSTRAINT = "uq_events_event_id"

# BIGINT autoincrement everywhere but SQLite, whose rowid alias must be spelt INTEGER PRIMARY KEY.
_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

events = sa.Table(
    "events",
    METADATA,
    sa.Column("position", _POSITION, primary_key=True, autoincrement=True),
    sa.Column("stream_id", sa.String(128), nullable=False),
    sa.Column("stream_sequence", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    sa.Column("canonical_hash", sa.LargeBinary(32), nullable=False),
    sa.UniqueConstraint("stream_id", "stream_sequence", name=STREAM_SEQUENCE_CONSTRAINT),
    sa.UniqueConstraint("event_id", name=EVENT_ID_CONSTRAINT),
)

outbox = sa.Table(
    "outbox",
    METADATA,
    sa.Column("id", _POSITION, primary_key=True, autoincrement=True),
    sa.Column("event_position", sa.BigInteger, sa.ForeignKey("events.position"), nullable=False),
    sa.Column("topic", sa.String(249), nullable=False),
    sa.Column("created_at_us", sa.BigInteger, nullable=False),
    sa.Column("published_at_us", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("event_position", name="uq_outbox_event_position"),
    sa.Index("ix_outbox_unpublished", "published_at_us", "id"),
)

processed_events = sa.Table(
    "processed_events",
    METADATA,
    sa.Column("consumer", sa.String(128), primary_key=True),
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("topic", sa.String(249), nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("processed_at_us", sa.BigInteger, nullable=False),
)
