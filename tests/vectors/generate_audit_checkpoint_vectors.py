"""Generate tests/vectors/audit_checkpoint_v1.json: known-answer vectors of the audit ledger's checkpoints.

Run from the repository root (it rewrites the committed file; ``--output PATH`` writes elsewhere)::

    .venv/bin/python -m tests.vectors.generate_audit_checkpoint_vectors

Reproducible byte for byte: the Ed25519 seed and every field are fixed here, Ed25519 signatures are
deterministic, and the protobuf encoding is the deterministic one. Each vector spells its signed bytes out
field by field (``signed_bytes_parts``, the layout of docs/adr/0012-audit-ledger.md) as well as whole.
tests/unit/test_audit_checkpoint.py rebuilds the parts from the layout with ``struct``, checks that the code
produces exactly them, and that the committed file equals a fresh generation.

The key signs nothing real; the roots are the published RFC 9162 test tree's (tests/vectors/merkle_rfc9162_v1.json).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.audit.domain.checkpoint import (
    Checkpoint,
    LeafRun,
    checkpoint_hash,
    encode_checkpoint,
    sign_checkpoint,
    signed_bytes,
)

OUTPUT = Path(__file__).with_name("audit_checkpoint_v1.json")
SEED = hashlib.sha256(b"referralnet synthetic audit checkpoint vector key").digest()
KEY_ID = "svc:audit#sig-1"
ORIGIN = "referralnet-test/audit/v1"
ROOT_3 = bytes.fromhex("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77")
ROOT_8 = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")


def _text(value: str) -> list[list[str]]:
    encoded = value.encode()
    return [["length u16", struct.pack(">H", len(encoded)).hex()], ["utf-8", encoded.hex()]]


def signed_bytes_parts(checkpoint: Checkpoint) -> list[list[str]]:
    """The signed bytes as ``[field, hex]`` pairs, in ADR 12's order."""
    parts = [["domain", b"referralnet/checkpoint/v1\x00".hex()]]
    parts += [["origin " + name, value] for name, value in _text(checkpoint.origin)]
    parts += [
        ["tree_size u64", struct.pack(">Q", checkpoint.tree_size).hex()],
        ["root_hash", checkpoint.root_hash.hex()],
        ["issued_at_us i64", struct.pack(">q", checkpoint.issued_at_us).hex()],
        ["previous_tree_size u64", struct.pack(">Q", checkpoint.previous_tree_size).hex()],
        ["previous_checkpoint_hash", checkpoint.previous_checkpoint_hash.hex()],
        ["number of runs u32", struct.pack(">I", len(checkpoint.runs)).hex()],
    ]
    for number, run in enumerate(checkpoint.runs):
        parts += [[f"runs[{number}].topic {name}", value] for name, value in _text(run.topic)]
        parts += [
            [f"runs[{number}].partition u32", struct.pack(">I", run.partition).hex()],
            [f"runs[{number}].first_offset u64", struct.pack(">Q", run.first_offset).hex()],
            [f"runs[{number}].last_offset u64", struct.pack(">Q", run.last_offset).hex()],
        ]
    parts += [["signing_key_id " + name, value] for name, value in _text(checkpoint.signing_key_id)]
    return parts


def _vector(name: str, description: str, checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "checkpoint": {
            "origin": checkpoint.origin,
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash.hex(),
            "issued_at_us": checkpoint.issued_at_us,
            "previous_tree_size": checkpoint.previous_tree_size,
            "previous_checkpoint_hash": checkpoint.previous_checkpoint_hash.hex(),
            "runs": [
                {"topic": run.topic, "partition": run.partition, "first_offset": run.first_offset,
                 "last_offset": run.last_offset}
                for run in checkpoint.runs
            ],
            "signing_key_id": checkpoint.signing_key_id,
        },
        "signed_bytes_parts": signed_bytes_parts(checkpoint),
        "signed_bytes": signed_bytes(checkpoint).hex(),
        "signature": checkpoint.signature.hex(),
        "checkpoint_hash": checkpoint_hash(checkpoint).hex(),
        "proto": encode_checkpoint(checkpoint).hex(),
    }


def generate() -> dict[str, Any]:
    """The whole vector file, as a JSON-ready dict."""
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    first = sign_checkpoint(ORIGIN, 3, ROOT_3, 1_768_469_400_000_000, None,
                            [LeafRun("referralnet.intake.events.v1", 0, 0, 2)], KEY_ID, key)
    second = sign_checkpoint(ORIGIN, 8, ROOT_8, 1_768_469_405_000_000, first,
                             [LeafRun("referralnet.intake.events.v1", 1, 10, 14),
                              LeafRun("referralnet.referral.events.v1", 0, 7, 7)], KEY_ID, key)
    return {
        "description": (
            "Known-answer vectors of the audit ledger's signed checkpoints (docs/adr/0012-audit-ledger.md), "
            "synthetic. Inputs: the Ed25519 seed and the checkpoint fields. Expected: the signed bytes (field by "
            "field and whole), the Ed25519 signature, the checkpoint hash SHA-256(signed bytes || signature) and "
            "the deterministic protobuf encoding. Generated by tests/vectors/generate_audit_checkpoint_vectors.py; "
            "do not edit by hand."
        ),
        "signer": {
            "signing_key_id": KEY_ID,
            "ed25519_seed_hex": SEED.hex(),
            "ed25519_public_key_hex": key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex(),
        },
        "vectors": [
            _vector("first", "The first checkpoint: no predecessor (size 0, zero hash), one run.", first),
            _vector("second", "Links to 'first' by its size and hash; two runs on two topics.", second),
        ],
    }


def render() -> str:
    """The file's exact text."""
    return json.dumps(generate(), indent=2) + "\n"


def main() -> None:
    """Write the vectors to OUTPUT (or ``--output``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    arguments = parser.parse_args()
    arguments.output.write_text(render())


if __name__ == "__main__":
    main()
