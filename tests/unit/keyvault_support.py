"""Helpers shared by the key vault tests: a vault on a real SQLite file, with a real local-file KEK."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from services.core.keyvault.cache import KeyCache
from services.core.keyvault.kek import LocalFileKek
from services.core.keyvault.store import create_all
from services.core.keyvault.vault import KeyVault


@dataclass
class VaultFiles:
    """Where a test vault lives: its database file, its KEK file and its engine."""

    db_path: Path
    kek_path: Path
    engine: sa.Engine

    def vault(self, cache: KeyCache | None = None) -> KeyVault:
        """A new vault instance on the same database and KEK (no cache shared with earlier instances)."""
        return KeyVault(self.engine, LocalFileKek.from_file(self.kek_path), cache=cache)

    def file_bytes(self) -> bytes:
        """Everything SQLite has on disk for this database: the file, and any journal or WAL beside it."""
        parts = [self.db_path, *(self.db_path.with_name(self.db_path.name + s) for s in ("-journal", "-wal"))]
        return b"".join(path.read_bytes() for path in parts if path.exists())


def vault_files(tmp_path: Path) -> VaultFiles:
    """A fresh SQLite database with the vault's tables, and a fresh KEK file, under ``tmp_path``."""
    db_path = tmp_path / "vault.db"
    engine = sa.create_engine(f"sqlite+pysqlite:///{db_path}")
    create_all(engine)
    return VaultFiles(db_path, tmp_path / "kek.key", engine)
