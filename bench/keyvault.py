"""Key vault and key release costs on a SQLite file with a local-file KEK, one operation at a time.

    python -m bench.keyvault [--subjects N]

ensure_subject: create both categories' v1 keys (2 wraps, 1 transaction). key_uncached: a database read and
an AES-GCM unwrap (cache disabled); key_cached: a cache hit. rotate: 1 transaction, 1 wrap. release: HPKE
seal of a cached data key to an X25519 KEM key (ephemeral X25519 + HKDF + AES-256-GCM) and serialisation;
open: parse + HPKE open. shred: 1 transaction (tombstones, secure_delete). PostgreSQL figures come later.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench.report import report
from services.core.keyvault.cache import KeyCache
from services.core.keyvault.kek import LocalFileKek
from services.core.keyvault.keys import DataCategory
from services.core.keyvault.release import open_released_key, release_key
from services.core.keyvault.released import ReleasedKey
from services.core.keyvault.store import create_all
from services.core.keyvault.vault import KeyVault

ORG, KEM_KEY_ID, PURPOSE = "org-synthetic-shelter", "kem-1", "shelter"


def rate(items: Sequence[str], operation: Callable[[str], object]) -> float:
    """Operations per second of ``operation`` over ``items``."""
    started = time.perf_counter()
    for item in items:
        operation(item)
    return len(items) / (time.perf_counter() - started)


def run(subjects: int) -> dict[str, float]:
    """Every figure, on a fresh database in a temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        engine = sa.create_engine(f"sqlite+pysqlite:///{Path(folder) / 'vault.db'}")
        create_all(engine)
        kek = LocalFileKek.from_file(Path(folder) / "kek.key")
        vault, uncached = KeyVault(engine, kek), KeyVault(engine, kek, cache=KeyCache(max_entries=0))
        ids = [f"subj-{n}" for n in range(subjects)]
        figures = {"keyvault_ensure_subject_per_s": rate(ids, vault.ensure_subject)}
        key_ids = [vault.current_key(s, DataCategory.CASE_FILE).key_id for s in ids]
        figures["keyvault_key_uncached_per_s"] = rate(key_ids, uncached.key)
        hot = key_ids[-500:]  # well inside the cache's 1,024 entries
        for key_id in hot:
            vault.key(key_id)
        figures["keyvault_key_cached_per_s"] = rate(hot * 20, vault.key)
        figures["keyvault_rotate_per_s"] = rate(ids, lambda s: vault.rotate(s, DataCategory.ROUTING))
        private = X25519PrivateKey.generate()
        released: list[bytes] = []  # key lookups are mostly cache misses here: release = lookup + HPKE seal
        figures["keyvault_release_per_s"] = rate(key_ids, lambda k: released.append(
            release_key(vault, k, ORG, KEM_KEY_ID, private.public_key(), PURPOSE).to_bytes()))
        blobs = iter(released)
        figures["keyvault_open_released_per_s"] = rate(key_ids, lambda _: open_released_key(
            ReleasedKey.from_bytes(next(blobs)), ORG, KEM_KEY_ID, private))
        figures["keyvault_shred_per_s"] = rate(ids, vault.shred)
        engine.dispose()
    return figures


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=2000)
    report("keyvault", run(parser.parse_args().subjects))


if __name__ == "__main__":
    main()
