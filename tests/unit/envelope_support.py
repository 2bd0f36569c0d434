"""Helpers shared by the envelope unit tests: synthetic organisations, a dict-backed directory, keys, headers.

Everything here is synthetic: the org ids follow the seed's shape but the keys are fresh random ones, and
the payloads are made-up bytes that describe no one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.core.envelope import format as fmt
from services.core.envelope.envelope import EnvelopeSigner, Sealer, parse_envelope
from services.core.envelope.format import SectionKind
from services.core.envelope.header import EventHeader, new_event_id, now_micros
from services.core.envelope.verification import Opener, Verifier
from services.core.generated.referralnet.envelope.v1 import envelope_pb2
from services.core.keyvault.keys import DataKey

ORG_IDS = ("pol-mdd-01", "ngo-cus-01", "shl-lim-01")
POLICE, NGO, SHELTER = ORG_IDS
ROUTING, CASE_FILE = SectionKind.ROUTING, SectionKind.CASE_FILE
SECTION_COMBINATIONS: tuple[tuple[SectionKind, ...], ...] = ((ROUTING,), (CASE_FILE,), (ROUTING, CASE_FILE))

# Synthetic payloads: routing facts and a case file of a person who does not exist.
ROUTING_PLAINTEXT = b'{"services":["shelter","legal"],"region":"CUS","urgency":"high","minor":false}'
CASE_FILE_PLAINTEXT = (
    '{"nombre":"Persona Sint\u00e9tica 001","documento":"SINTETICO-0001","relato":"Texto sint\u00e9tico."}'
).encode()
PLAINTEXTS = {ROUTING: ROUTING_PLAINTEXT, CASE_FILE: CASE_FILE_PLAINTEXT}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACESTATE = "rn=synthetic,vendor=t61rcWkgMzE"


def new_data_key() -> DataKey:
    """A random data key under a random opaque id, as the vault makes them (no vault involved)."""
    return DataKey("dk-" + uuid.uuid4().hex, os.urandom(32))


@dataclass(frozen=True)
class SyntheticOrg:
    """An organisation's two key pairs: Ed25519 to sign what it produces, X25519 to receive released keys."""

    org_id: str
    signing_key_id: str
    private_key: Ed25519PrivateKey
    kem_key_id: str
    kem_private_key: X25519PrivateKey

    @classmethod
    def create(cls, org_id: str) -> SyntheticOrg:
        return cls(org_id, f"sig-{org_id}-2026", Ed25519PrivateKey.generate(), f"kem-{org_id}-2026",
                   X25519PrivateKey.generate())

    @property
    def signer(self) -> EnvelopeSigner:
        return EnvelopeSigner(self.org_id, self.signing_key_id, self.private_key)


class DictResolver:
    """A SigningKeyResolver backed by a dict: signing key id -> (org id, public key). KeyError when unknown."""

    def __init__(self, orgs: Iterable[SyntheticOrg] = ()) -> None:
        self.keys: dict[str, tuple[str, Ed25519PublicKey]] = {}
        self.lookups: list[str] = []
        for org in orgs:
            self.add(org.signing_key_id, org.org_id, org.private_key.public_key())

    def add(self, key_id: str, org_id: str, public_key: Ed25519PublicKey) -> None:
        self.keys[key_id] = (org_id, public_key)

    def signing_key(self, key_id: str) -> tuple[str, Ed25519PublicKey]:
        self.lookups.append(key_id)
        return self.keys[key_id]


@dataclass
class Network:
    """Three synthetic orgs, a directory of their signing keys, a verifier and an opener."""

    orgs: dict[str, SyntheticOrg]
    resolver: DictResolver
    verifier: Verifier
    opener: Opener = field(default_factory=Opener)

    @classmethod
    def create(cls, workers: int | None = 1) -> Network:
        orgs = {org_id: SyntheticOrg.create(org_id) for org_id in ORG_IDS}
        resolver = DictResolver(orgs.values())
        return cls(orgs, resolver, Verifier(resolver, workers=workers))

    def sealer(self, org_id: str = POLICE, **kwargs: Any) -> Sealer:
        return Sealer(self.orgs[org_id].signer, **kwargs)

    def seal(self, header: EventHeader, keys: Mapping[SectionKind, DataKey],
             plaintexts: Mapping[SectionKind, bytes] = PLAINTEXTS) -> bytes:
        """Seal ``plaintexts[kind]`` under ``keys[kind]`` for every kind in ``keys``, as the header's producer."""
        sections = {kind: (key, plaintexts[kind]) for kind, key in keys.items()}
        return self.sealer(header.producer_org).seal(header, sections)

    def close(self) -> None:
        self.verifier.close()


def make_header(org: SyntheticOrg, **overrides: Any) -> EventHeader:
    """A valid header produced and signed by ``org``; any field can be overridden."""
    fields: dict[str, Any] = {
        "event_id": new_event_id(),
        "event_type": "ReferralSubmitted",
        "schema_version": 1,
        "stream_id": "ref-" + uuid.uuid4().hex[:12],
        "stream_sequence": 1,
        "occurred_at_unix_micros": now_micros(),
        "producer_org": org.org_id,
        "producer_service": "intake",
        "signing_key_id": org.signing_key_id,
    }
    fields.update(overrides)
    return EventHeader(**fields)


def section_keys(kinds: Iterable[SectionKind]) -> dict[SectionKind, DataKey]:
    """A fresh data key for each kind."""
    return {kind: new_data_key() for kind in kinds}


def flip(wire: bytes, index: int, mask: int = 0xFF) -> bytes:
    """``wire`` with the byte at ``index`` XORed with ``mask``."""
    altered = bytearray(wire)
    altered[index] ^= mask
    return bytes(altered)


def sections_of(wire: bytes) -> list[envelope_pb2.SealedSection]:
    """The sealed sections of ``wire`` as proto messages (copies, free to change)."""
    envelope = envelope_pb2.Envelope()
    envelope.ParseFromString(wire)
    return [envelope_pb2.SealedSection(kind=s.kind, key_id=s.key_id, nonce=s.nonce, ciphertext=s.ciphertext,
                                       digest=s.digest) for s in envelope.sections]


def rebuild(header_bytes: bytes, sections: Sequence[envelope_pb2.SealedSection], signer: Ed25519PrivateKey | None,
            *, signature: bytes | None = None, recompute_digests: bool = True, format_version: int = 1) -> bytes:
    """What an insider holding a signing key can build: any header and sections, digests recomputed, re-signed.

    With ``signer`` None the ``signature`` given is used as is (an attacker without the key). With
    ``recompute_digests`` False the section digests are kept as given and the header digest is the one of
    the header bytes.
    """
    sections = [envelope_pb2.SealedSection(kind=s.kind, key_id=s.key_id, nonce=s.nonce, ciphertext=s.ciphertext,
                                           digest=s.digest) for s in sections]
    if recompute_digests:
        for section in sections:
            section.digest = fmt.section_digest(section.kind, section.key_id, section.nonce, section.ciphertext)
    header_digest = fmt.header_digest(header_bytes)
    if signer is not None:
        signature = signer.sign(fmt.signing_input(header_digest, [s.digest for s in sections]))
    assert signature is not None
    envelope = envelope_pb2.Envelope(format_version=format_version, header=header_bytes, header_digest=header_digest,
                                     sections=sections, signature=signature)
    return envelope.SerializeToString(deterministic=True)


def header_bytes_of(wire: bytes) -> bytes:
    """The header bytes carried by ``wire`` (structurally parsed, not verified)."""
    return parse_envelope(wire).header_bytes
