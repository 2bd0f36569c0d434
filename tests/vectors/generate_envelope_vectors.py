"""Generate tests/vectors/envelope_v1.json: known-answer vectors for the envelope, format version 1.

Run from the repository root (it rewrites the committed file; ``--output PATH`` writes elsewhere)::

    .venv/bin/python -m tests.vectors.generate_envelope_vectors

The output is reproducible byte for byte: every input is fixed here (Ed25519 seeds, data keys and their ids,
header fields, nonces), Ed25519 signatures and AES-GCM are deterministic given them, and the header and the
envelope use protobuf's deterministic serialisation. tests/unit/test_envelope_vectors.py checks that the
committed file equals a fresh generation, so a change to the format cannot go unnoticed.

Every value is synthetic: the plaintexts describe no one, the keys protect nothing real.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.core.envelope import format as fmt
from services.core.envelope.envelope import EnvelopeSigner, Sealer, parse_envelope
from services.core.envelope.format import SectionKind
from services.core.envelope.header import EventHeader
from services.core.generated.referralnet.envelope.v1 import envelope_pb2
from services.core.keyvault.keys import DataKey

OUTPUT = Path(__file__).with_name("envelope_v1.json")


@dataclass(frozen=True)
class Signer:
    org_id: str
    signing_key_id: str
    seed_hex: str


@dataclass(frozen=True)
class Section:
    kind: SectionKind
    key_id: str
    key_hex: str
    nonce_hex: str
    plaintext: str


@dataclass(frozen=True)
class Vector:
    name: str
    description: str
    signer: Signer
    header: dict[str, Any]
    sections: tuple[Section, ...]


POLICE = Signer("pol-mdd-01", "sig-pol-mdd-01-2026", "ec856742d3894b6598014ea723ce04baeb7c1601f465826367424ac9689fc58c")
NGO = Signer("ngo-cus-01", "sig-ngo-cus-01-2026", "01a657d5ae1fb320bc8298c23f0eefa1fc797ef9f250968751b2a86bf6aca552")
ROUTING_KEY = ("dk-f85d7033fcc947aa9a4071829f762ede",
               "cb96f3b848aa05cfced1b76e55565d7fcb03f5d4bf0dbfa06f5010939799d34c")
CASE_FILE_KEY = ("dk-056dadbb3ece4380978f6ac6aa99a9fc",
                 "b7fe7e190cec874ef9da08d40848d681158b7e1f8284fd01c8ddb92f9c9ea957")
OTHER_ROUTING_KEY = ("dk-5780ae6e634846efbc9dfa0da804c334",
                     "fb730995da1779ba2b012f15776d5c26065fbe7cba6cdd65e551fcf7727d4fcd")
OTHER_CASE_FILE_KEY = ("dk-034844b6f2f14df6b71e25e0ebf29458",
                       "2f2d0b42ef4b50e3c1443b7767a89c47e48093dd62699bc629ab62cbd7087d49")


_HEADER_FIELDS = ("event_id", "event_type", "schema_version", "stream_id", "stream_sequence", "occurred_at_unix_micros",
                  "producer_org", "producer_service", "signing_key_id", "traceparent", "tracestate")


def _header(signer: Signer, **fields: Any) -> dict[str, Any]:
    """The header's fields in proto field order, the producer and its key taken from ``signer``."""
    fields = {"producer_org": signer.org_id, "signing_key_id": signer.signing_key_id, "traceparent": "",
              "tracestate": "", **fields}
    return {name: fields[name] for name in _HEADER_FIELDS}


VECTORS = (
    Vector(
        name="routing-only",
        description="One routing section, no trace context.",
        signer=POLICE,
        header=_header(POLICE, event_id="019bc0fd-89c0-7df7-aa1c-8819df2f9b5e", event_type="ReferralSubmitted",
                       schema_version=1, stream_id="ref-7d1e6f0a9b3c", stream_sequence=1,
                       occurred_at_unix_micros=1_768_469_400_000_000, producer_service="intake"),
        sections=(
            Section(SectionKind.ROUTING, *ROUTING_KEY, "2943f3a9ba2668679d01f237",
                    '{"services":["shelter","legal_aid"],"region":"CUS","urgency":"high","minor":false}'),
        ),
    ),
    Vector(
        name="routing-and-case-file",
        description="A routing section and a case-file section, each under its own data key; no trace context.",
        signer=POLICE,
        header=_header(POLICE, event_id="019bc0fd-8da9-73f8-81c2-d828074016f3", event_type="CaseFileRecorded",
                       schema_version=1, stream_id="ref-7d1e6f0a9b3c", stream_sequence=2,
                       occurred_at_unix_micros=1_768_469_401_001_000, producer_service="intake"),
        sections=(
            Section(SectionKind.ROUTING, *ROUTING_KEY, "baf0df6d06c0b41253e7e09e",
                    '{"services":["health","shelter"],"region":"LIM","urgency":"normal","minor":true}'),
            Section(SectionKind.CASE_FILE, *CASE_FILE_KEY, "82e6afd16146d99e49529d6c",
                    '{"nombre":"Persona Sint\u00e9tica 001","documento":"SINTETICO-0001",'
                    '"relato":"Relato sint\u00e9tico de prueba; no describe a nadie."}'),
        ),
    ),
    Vector(
        name="with-trace-context",
        description="Both sections, another signer, schema version 2 and a W3C trace context in the header.",
        signer=NGO,
        header=_header(NGO, event_id="019bc0fe-7420-7d17-aa8e-09d31e982ac7", event_type="ReferralAccepted",
                       schema_version=2, stream_id="ref-7d1e6f0a9b3c", stream_sequence=3,
                       occurred_at_unix_micros=1_768_469_460_000_000, producer_service="referral",
                       traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                       tracestate="rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        sections=(
            Section(SectionKind.ROUTING, *OTHER_ROUTING_KEY, "ce78c22bf0ac721fa8f5f0ad",
                    '{"services":["legal_aid"],"region":"MDD","urgency":"high","minor":false}'),
            Section(SectionKind.CASE_FILE, *OTHER_CASE_FILE_KEY, "6560c2948b09a98c8d22225d",
                    '{"nombre":"Persona Sint\u00e9tica 002","nota":"Aceptada por el albergue (dato sint\u00e9tico)."}'),
        ),
    ),
)


def _fixed_nonces(nonces: bytes) -> Any:
    def take(size: int) -> bytes:
        if size != len(nonces):
            raise ValueError(f"the sealer asked for {size} nonce bytes, the vector has {len(nonces)}")
        return nonces
    return take


def _vector(vector: Vector) -> dict[str, Any]:
    private_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector.signer.seed_hex))
    signer = EnvelopeSigner(vector.signer.org_id, vector.signer.signing_key_id, private_key)
    header = EventHeader(**vector.header)
    sections = sorted(vector.sections, key=lambda section: section.kind)
    nonces = b"".join(bytes.fromhex(section.nonce_hex) for section in sections)
    sealer = Sealer(signer, nonces=_fixed_nonces(nonces))
    wire = sealer.seal(header, {s.kind: (DataKey(s.key_id, bytes.fromhex(s.key_hex)), s.plaintext.encode())
                                for s in sections})

    parsed = parse_envelope(wire)
    digests = [section.digest for section in parsed.sections]
    signing_input = fmt.signing_input(parsed.header_digest, digests)
    public_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "name": vector.name,
        "description": vector.description,
        "signer": {"org_id": signer.org_id, "signing_key_id": signer.key_id, "ed25519_seed_hex": vector.signer.seed_hex,
                   "ed25519_public_key_hex": public_key.hex()},
        "header": vector.header,
        "sections": [
            {"kind": int(s.kind), "kind_name": envelope_pb2.SectionKind.Name(int(s.kind)),
             "key_id": s.key_id, "key_hex": s.key_hex, "nonce_hex": s.nonce_hex, "plaintext_text": s.plaintext,
             "plaintext_hex": s.plaintext.encode().hex()}
            for s in sections
        ],
        "expected": {
            "header_bytes_hex": parsed.header_bytes.hex(),
            "header_digest_hex": parsed.header_digest.hex(),
            "sections": [
                {"associated_data_hex": fmt.section_associated_data(parsed.header_bytes, s.kind, s.key_id).hex(),
                 "ciphertext_hex": s.ciphertext.hex(), "digest_hex": s.digest.hex()}
                for s in parsed.sections
            ],
            "section_digests_hex": [digest.hex() for digest in digests],
            "signing_input_hex": signing_input.hex(),
            "signature_hex": parsed.signature.hex(),
            "wire_hex": wire.hex(),
            "canonical_bytes_hex": fmt.canonical_bytes(signing_input, parsed.signature).hex(),
            "canonical_hash_hex": fmt.canonical_hash(signing_input, parsed.signature).hex(),
        },
    }


def render() -> str:
    """The JSON text of every vector (what the committed file must hold)."""
    document = {
        "description": ("Known-answer vectors of the referralnet envelope, format version 1 (synthetic data only). "
                        "Inputs: signer seed, header fields, per-section data key, nonce and plaintext. Expected: "
                        "every byte string that is hashed, signed, used as associated data or sent. "
                        "Generated by tests/vectors/generate_envelope_vectors.py; do not edit by hand."),
        "format_version": fmt.FORMAT_VERSION,
        "vectors": [_vector(vector) for vector in VECTORS],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where to write (default: the committed file)")
    args = parser.parse_args(argv)
    args.output.write_text(render(), encoding="utf-8")


if __name__ == "__main__":
    main()
