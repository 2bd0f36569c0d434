"""The key vault: per-subject, per-category data keys, stored wrapped by a KEK, rotated and crypto-shredded.

Only intake holds a vault. Other services get a key only through a release (see ``release.py``).
"""

from __future__ import annotations

from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from services.core.envelope.errors import ShreddedSubjectError, TamperedSectionError, UnknownKeyError
from services.core.keyvault.cache import KeyCache
from services.core.keyvault.encoding import wrap_context
from services.core.keyvault.kek import KeyEncryptionKey
from services.core.keyvault.keys import DataCategory, DataKey, KeyMetadata, KeyState, check_subject_id, new_data_key
from services.core.keyvault.store import data_keys, row_metadata, subject_row, subjects, utcnow


class KeyVault:
    """Data keys of subjects, wrapped under ``kek`` in the database behind ``engine``.

    Unwrapped keys are kept in ``cache`` (bounded, short-lived); shredding a subject here drops its entries
    at once, and a shred by another process takes effect here when the entries expire.
    """

    def __init__(self, engine: sa.Engine, kek: KeyEncryptionKey, *, cache: KeyCache | None = None) -> None:
        """Use the vault's tables in ``engine`` (see :func:`services.core.keyvault.store.create_all`)."""
        self._engine = engine
        self._kek = kek
        self._cache = KeyCache() if cache is None else cache
        self._sqlite = engine.dialect.name == "sqlite"

    def ensure_subject(self, subject_id: str) -> None:
        """Create version 1 of every category's key for ``subject_id`` if absent. Idempotent.

        Raises ShreddedSubjectError for a shredded subject: erasure is final, no new keys.
        """
        check_subject_id(subject_id)
        try:
            self._ensure(subject_id)
        except IntegrityError:  # a concurrent ensure_subject won the race: the keys exist now
            self._ensure(subject_id)

    def current_key(self, subject_id: str, category: DataCategory) -> DataKey:
        """The active key of ``subject_id`` for ``category``: the one that seals new events."""
        query = sa.select(data_keys).where(
            data_keys.c.subject_id == subject_id,
            data_keys.c.category == DataCategory(category).value,
            data_keys.c.state == KeyState.ACTIVE.value,
        )
        epoch = self._cache.epoch
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
            if row is None:
                self._raise_missing(conn, subject_id, f"no active {category} key")
        return self._cached_or_unwrapped(row, epoch)

    def key(self, key_id: str) -> DataKey:
        """The key named ``key_id``, whatever its version: UnknownKeyError or ShreddedSubjectError otherwise."""
        cached = self._cache.get(key_id)
        if cached is not None:
            return cached
        epoch = self._cache.epoch
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(data_keys).where(data_keys.c.key_id == key_id)).first()
        if row is None:
            raise UnknownKeyError(f"data key {key_id} is not in this vault")
        return self._cached_or_unwrapped(row, epoch)

    def rotate(self, subject_id: str, category: DataCategory) -> DataKey:
        """Make a new version current for ``category``; older versions stay readable (state retired)."""
        category = DataCategory(category)
        key, epoch = new_data_key(), self._cache.epoch  # the epoch before: a shred after commit wins
        with self._engine.begin() as conn:
            self._lock_subject(conn, subject_id)
            scope = (data_keys.c.subject_id == subject_id, data_keys.c.category == category.value)
            latest = conn.execute(sa.select(sa.func.max(data_keys.c.version)).where(*scope)).scalar_one()
            conn.execute(
                data_keys.update()
                .where(*scope, data_keys.c.state == KeyState.ACTIVE.value)
                .values(state=KeyState.RETIRED.value)
            )
            self._insert_key(conn, subject_id, category, (latest or 0) + 1, key)
        self._cache.put(subject_id, key, epoch)
        return key

    def shred(self, subject_id: str) -> None:
        """Destroy every version of every key of ``subject_id``, keeping tombstones. Idempotent.

        A subject never seen gets a tombstone too, so a late ensure_subject cannot create keys for it.
        """
        check_subject_id(subject_id)
        try:
            self._shred_rows(subject_id)
        except IntegrityError:  # a concurrent ensure_subject created the subject row first: mark that one
            self._shred_rows(subject_id)
        self._cache.drop_subject(subject_id)
        if self._sqlite:  # in WAL mode, old frames would otherwise keep the old pages until the next checkpoint
            with self._engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def subject_of(self, key_id: str) -> str:
        """The subject a key id belongs to (also after shredding); UnknownKeyError if not in this vault."""
        return self.metadata(key_id).subject_id

    def metadata(self, key_id: str) -> KeyMetadata:
        """What the vault knows about ``key_id`` besides the key itself."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(data_keys).where(data_keys.c.key_id == key_id)).first()
        if row is None:
            raise UnknownKeyError(f"data key {key_id} is not in this vault")
        return row_metadata(row)

    def subject_keys(self, subject_id: str) -> list[KeyMetadata]:
        """Every key version of ``subject_id`` (shredded ones included), by category then version."""
        query = (
            sa.select(data_keys)
            .where(data_keys.c.subject_id == subject_id)
            .order_by(data_keys.c.category, data_keys.c.version)
        )
        with self._engine.connect() as conn:
            return [row_metadata(row) for row in conn.execute(query)]

    def _shred_rows(self, subject_id: str) -> None:
        """Tombstone the subject and drop its wrapped keys, in one transaction."""
        now = utcnow()
        with self._engine.begin() as conn:
            if self._sqlite:  # zero freed pages, so the old wrapped bytes do not linger in the file
                conn.exec_driver_sql("PRAGMA secure_delete = ON")
            marked = conn.execute(
                subjects.update()
                .where(subjects.c.subject_id == subject_id, subjects.c.shredded_at.is_(None))
                .values(shredded_at=now)
            )
            if marked.rowcount == 0 and not subject_row(conn, subject_id):
                conn.execute(
                    subjects.insert().values(subject_id=subject_id, created_at=now, key_generation=0, shredded_at=now)
                )
            conn.execute(
                data_keys.update()
                .where(data_keys.c.subject_id == subject_id)
                .values(state=KeyState.SHREDDED.value, wrapped=None)
            )

    def _ensure(self, subject_id: str) -> None:
        query = sa.select(data_keys.c.category, data_keys.c.state).where(data_keys.c.subject_id == subject_id)
        with self._engine.begin() as conn:
            rows = conn.execute(query).all()
            if any(row.state == KeyState.SHREDDED.value for row in rows):
                raise ShreddedSubjectError(f"subject {subject_id} was shredded")
            missing = set(DataCategory) - {DataCategory(row.category) for row in rows}
            if not missing:
                return
            if not subject_row(conn, subject_id):
                conn.execute(subjects.insert().values(subject_id=subject_id, created_at=utcnow(), key_generation=0))
            self._lock_subject(conn, subject_id)
            for category in sorted(missing):
                self._insert_key(conn, subject_id, category, 1, new_data_key())

    def _lock_subject(self, conn: sa.Connection, subject_id: str) -> None:
        """Bump the subject's generation: the row lock orders this transaction after any concurrent shred."""
        bumped = conn.execute(
            subjects.update()
            .where(subjects.c.subject_id == subject_id, subjects.c.shredded_at.is_(None))
            .values(key_generation=subjects.c.key_generation + 1)
        )
        if bumped.rowcount == 0:
            self._raise_missing(conn, subject_id, "no keys")

    def _raise_missing(self, conn: sa.Connection, subject_id: str, what: str) -> NoReturn:
        row = subject_row(conn, subject_id)
        if row is not None and row.shredded_at is not None:
            raise ShreddedSubjectError(f"subject {subject_id} was shredded")
        raise UnknownKeyError(f"subject {subject_id} has {what} in this vault (ensure_subject first)")

    def _insert_key(
        self, conn: sa.Connection, subject_id: str, category: DataCategory, version: int, key: DataKey
    ) -> None:
        context = wrap_context(key.key_id, subject_id, category.value, version, self._kek.kek_id)
        conn.execute(
            data_keys.insert().values(
                key_id=key.key_id, subject_id=subject_id, category=category.value, version=version,
                state=KeyState.ACTIVE.value, kek_id=self._kek.kek_id, wrapped=self._kek.wrap(key.key, context),
                created_at=utcnow(),
            )
        )

    def _cached_or_unwrapped(self, row: sa.Row[Any], epoch: int) -> DataKey:
        if row.state == KeyState.SHREDDED.value or row.wrapped is None:
            raise ShreddedSubjectError(f"data key {row.key_id} was shredded with its subject")
        cached = self._cache.get(row.key_id)
        if cached is not None:
            return cached
        if row.kek_id != self._kek.kek_id:
            raise UnknownKeyError(f"data key {row.key_id} is wrapped by KEK {row.kek_id}, not {self._kek.kek_id}")
        context = wrap_context(row.key_id, row.subject_id, row.category, row.version, row.kek_id)
        try:
            key = DataKey(row.key_id, self._kek.unwrap(row.wrapped, context))
        except TamperedSectionError:
            error = TamperedSectionError(f"wrapped data key {row.key_id} does not unwrap: its row was altered")
            raise error from None
        self._cache.put(row.subject_id, key, epoch)
        return key
