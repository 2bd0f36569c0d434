"""Inclusion proofs of the audit ledger at a million leaves: a SqlTree on SQLite, built, then queried.

Called by bench/audit.py (``bench_inclusion_proof_1m``), which reports its figures with the others:

- ``tree_build_s_1m``: appending 1,000,000 leaves through ``SqlTree.append`` in batches of 10,000, one
  transaction each (leaf rows, level-0 hashes and the parents they complete, bulk-inserted), from an empty
  database file.
- ``inclusion_proof_ms_1m``: the mean time, over 2,000 random leaves, to answer and check what an auditor
  asks (``GetInclusionProof`` without the network): in a new session, read the event's leaf (index and leaf
  input) by its id and build its audit path in the tree of 1,000,000 leaves; then verify the path against
  the root of that size (read once beforehand, as a checkpoint's root is). Target: < 1 ms.

Leaves are synthetic: the leaf input is SHA-256 of the leaf number, the stored envelope a 64-byte stand-in
(a real one is ~1.5 KB; its size does not change the proof path, only the file's size).
"""

from __future__ import annotations

import hashlib
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session

from services.audit.adapters.database import migrate
from services.audit.adapters.tree_store import LeafRecord, SqlTree
from services.audit.domain.merkle import verify_inclusion
from services.core.database import create_engine

LEAVES = 1_000_000
BATCH = 10_000
PROOFS = 2_000
_ENVELOPE = bytes(64)


def _event_id(number: int) -> str:
    """A synthetic UUIDv7-shaped event id, distinct per number."""
    return f"{number >> 16:08x}-{number & 0xFFFF:04x}-7000-8000-{number:012x}"


def _record(number: int) -> LeafRecord:
    return LeafRecord(
        event_id=_event_id(number),
        leaf_input=hashlib.sha256(number.to_bytes(8, "big")).digest(),
        topic="referralnet.intake.events.v1",
        partition=number % 3,
        offset=number // 3,
        event_type="ReferralSubmitted",
        stream_id=f"ref-{number:032x}",
        stream_sequence=1,
        producer_org="pol-mdd-01",
        occurred_at_us=1_768_469_400_000_000 + number,
        envelope=_ENVELOPE,
    )


def build_tree(url: str, leaves: int = LEAVES, batch: int = BATCH) -> float:
    """Append ``leaves`` synthetic leaves to a fresh ledger at ``url``; the seconds it took (appends only)."""
    engine = create_engine(url)
    try:
        migrate(engine)
        tree = SqlTree()
        started = time.perf_counter()
        for start in range(0, leaves, batch):
            with Session(engine) as session, session.begin():
                tree.append(session, [_record(n) for n in range(start, min(start + batch, leaves))])
        return time.perf_counter() - started
    finally:
        engine.dispose()


def time_inclusion_proofs(url: str, size: int, proofs: int = PROOFS, seed: int = 6) -> list[float]:
    """Seconds per look-up + proof + verification of ``proofs`` random leaves of the tree of ``size``."""
    engine = create_engine(url)
    tree = SqlTree()
    try:
        with Session(engine) as session:
            root = tree.root(session, size)
        numbers = random.Random(seed).sample(range(size), proofs)
        timings = []
        for number in numbers:
            started = time.perf_counter()
            with Session(engine) as session:
                leaf = tree.leaf_of(session, _event_id(number))
                if leaf is None:
                    raise RuntimeError(f"leaf {number} is missing")
                index, record = leaf
                proof = tree.inclusion_proof(session, index, size)
            verify_inclusion(record.leaf_input, index, size, proof, root)
            timings.append(time.perf_counter() - started)
        return timings
    finally:
        engine.dispose()


def bench_inclusion_proof_1m(leaves: int = LEAVES, proofs: int = PROOFS) -> dict[str, float]:
    """``{"inclusion_proof_ms_1m": mean ms, "tree_build_s_1m": s}`` for a SqlTree of ``leaves`` on SQLite."""
    with tempfile.TemporaryDirectory(prefix="audit-proofs-") as folder:
        url = f"sqlite+pysqlite:///{Path(folder) / 'ledger.db'}"
        build_s = build_tree(url, leaves)
        timings = time_inclusion_proofs(url, leaves, proofs)
    return {"inclusion_proof_ms_1m": statistics.fmean(timings) * 1000, "tree_build_s_1m": build_s}
