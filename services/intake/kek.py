"""Intake's key-encryption key file (``KEYVAULT_KEK_PATH``): created once, then only read.

Only intake holds a key vault, so only intake needs a KEK. Back the file up apart from the database: a
database copy alone unwraps nothing, and losing the file loses every case-file key (ADR 5).
"""

from __future__ import annotations

from pathlib import Path

from services.core.identity.keystore import PRIVATE_DIR_MODE
from services.core.keyvault import LocalFileKek


def ensure_kek_file(path: Path) -> Path:
    """Create the KEK file at ``path`` (mode 0600, in a 0700 folder if the folder is new) unless it exists,
    and check it: PermissionError for a file others may read, ValueError for one that is not a KEK."""
    path = Path(path)
    if not path.parent.exists():
        path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True)
    LocalFileKek.from_file(path)
    return path
