"""Unit-tier fixtures. What is real: SQLite files and the cryptography library. Replaced: no servers run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.keyvault_support import VaultFiles, vault_files


@pytest.fixture
def files(tmp_path: Path) -> Iterator[VaultFiles]:
    """A key vault's database (real SQLite file) and KEK file under the test's own directory."""
    made = vault_files(tmp_path)
    yield made
    made.engine.dispose()
