"""The audit worker's own bookkeeping beside the ledger tables (SQLAlchemy 2.x Core).

``audit_pending_runs``: the runs of source records appended since the newest checkpoint, in append order
(``run_id``), written in each batch's transaction and folded into the next checkpoint, so a restart loses
none. ``audit_rejections``: every source record that did not verify, named by its claimed event id or its
position (never a leaf). ``audit_dead_letters``: every record read from a worker's dead-letter topic, with
why and from where (never a leaf: it carries an envelope read before). ``audit_subject_leaves``: which
leaves concern which subject (from their routing sections), so a subject's report replays only those.
``audit_checkpoint_publications``: which stored checkpoints the checkpoint topic acknowledged; a stored
checkpoint without a row here is published again on the next tick.

Revision ``audit_0002`` (services/audit/migrations) creates them after the ledger tables; the drift test
in tests/unit/test_audit_application.py fails when the two differ.
"""

from __future__ import annotations

import sqlalchemy as sa

from services.core.eventstore.schema import NAMING_CONVENTION

CUSTODY_METADATA = sa.MetaData(naming_convention=NAMING_CONVENTION)

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY autoincrements on SQLite

pending_runs = sa.Table(
    "audit_pending_runs",
    CUSTODY_METADATA,
    sa.Column("run_id", _ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("source_topic", sa.String(249), nullable=False),
    sa.Column("source_partition", sa.Integer, nullable=False),
    sa.Column("first_offset", sa.BigInteger, nullable=False),
    sa.Column("last_offset", sa.BigInteger, nullable=False),
)

rejections = sa.Table(
    "audit_rejections",
    CUSTODY_METADATA,
    sa.Column("source_topic", sa.String(249), primary_key=True),
    sa.Column("source_partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("source_offset", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.String(128), nullable=True),  # claimed, not verified
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("detail", sa.String(512), nullable=False),
    sa.Column("recorded_at_us", sa.BigInteger, nullable=False),
)

dead_letters = sa.Table(
    "audit_dead_letters",
    CUSTODY_METADATA,
    sa.Column("source_topic", sa.String(249), primary_key=True),
    sa.Column("source_partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("source_offset", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.String(128), nullable=True),
    sa.Column("verified", sa.Boolean, nullable=False),  # whether the dead record's envelope verified
    sa.Column("subject_id", sa.String(128), nullable=True),
    sa.Column("occurred_at_us", sa.BigInteger, nullable=True),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("error", sa.String(512), nullable=False),
    sa.Column("consumer", sa.String(128), nullable=False),
    sa.Column("original_topic", sa.String(249), nullable=False),
    sa.Column("original_partition", sa.Integer, nullable=False),
    sa.Column("original_offset", sa.BigInteger, nullable=False),
    sa.Column("recorded_at_us", sa.BigInteger, nullable=False),
)

subject_leaves = sa.Table(
    "audit_subject_leaves",
    CUSTODY_METADATA,
    sa.Column("subject_id", sa.String(128), primary_key=True),
    sa.Column("leaf_index", sa.BigInteger, primary_key=True, autoincrement=False),
)

checkpoint_publications = sa.Table(
    "audit_checkpoint_publications",
    CUSTODY_METADATA,
    sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("published_at_us", sa.BigInteger, nullable=False),
)
