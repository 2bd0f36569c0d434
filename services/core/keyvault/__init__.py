"""The key vault: per-subject data keys, wrapped by a key-encryption key, rotated, crypto-shredded, released.

Modules: ``keys`` (DataKey and its metadata), ``kek`` (the KEK port and the local-file KEK), ``store`` (tables),
``cache`` (short-lived key cache), ``vault`` (KeyVault), ``released`` (ReleasedKey and its byte format),
``release`` (HPKE release to an organisation). See docs/adr/0005-key-vault-and-release.md.
"""

from services.core.keyvault.kek import KeyEncryptionKey, LocalFileKek
from services.core.keyvault.keys import DataCategory, DataKey, KeyMetadata, KeyState
from services.core.keyvault.release import open_released_key, release_key
from services.core.keyvault.released import ReleasedKey
from services.core.keyvault.store import create_all
from services.core.keyvault.vault import KeyVault

__all__ = [
    "DataCategory",
    "DataKey",
    "KeyEncryptionKey",
    "KeyMetadata",
    "KeyState",
    "KeyVault",
    "LocalFileKek",
    "ReleasedKey",
    "create_all",
    "open_released_key",
    "release_key",
]
