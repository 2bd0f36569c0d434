"""Sealing an event into an envelope, and parsing one back into its parts (format version 1)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import DecodeError

from services.core.envelope import format as fmt
from services.core.envelope.benchmark import NULL_FORMAT_VERSION, NULL_SIGNATURE, null_crypto_enabled
from services.core.envelope.ciphers import CipherCache
from services.core.envelope.errors import MalformedEnvelopeError, UnsupportedVersionError
from services.core.envelope.format import SectionKind
from services.core.envelope.header import EventHeader
from services.core.generated.referralnet.envelope.v1 import envelope_pb2
from services.core.keyvault.keys import DataKey

_KNOWN_KINDS = frozenset(int(kind) for kind in SectionKind)


@dataclass(frozen=True, slots=True)
class EnvelopeSigner:
    """The Ed25519 identity that signs what an organisation (or a network service) produces."""

    org_id: str
    key_id: str
    private_key: Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class SealedSection:
    """One sealed section as it travels: kind, data key id, nonce, ciphertext+tag, signed digest."""

    kind: int
    key_id: str
    nonce: bytes
    ciphertext: bytes
    digest: bytes


@dataclass(frozen=True, slots=True)
class SealedEvent:
    """A freshly sealed envelope: its wire bytes and its canonical hash."""

    wire: bytes
    canonical_hash: bytes


@dataclass(frozen=True, slots=True)
class ParsedEnvelope:
    """An envelope split into its parts, structurally checked but NOT yet verified: open nothing from it."""

    header_bytes: bytes
    header_digest: bytes
    sections: tuple[SealedSection, ...]
    signature: bytes
    format_version: int = fmt.FORMAT_VERSION


class Sealer:
    """Seals events for one signer: AES-256-GCM per section, then one Ed25519 signature."""

    def __init__(self, signer: EnvelopeSigner, ciphers: CipherCache | None = None,
                 nonces: Callable[[int], bytes] = os.urandom, *, network_id: str | None = None) -> None:
        """``nonces(n)`` gives n random bytes; only known-answer vectors replace ``os.urandom``.

        ``network_id`` is the network the signer belongs to: only a benchmark network may have crypto
        switched off (:mod:`services.core.envelope.benchmark`); without it, crypto is always on.
        """
        self._signer = signer
        self._ciphers = ciphers or CipherCache()
        self._nonces = nonces
        self._null_crypto = null_crypto_enabled(network_id) if network_id else False

    @property
    def ciphers(self) -> CipherCache:
        """The cipher cache (to be told when keys are shredded)."""
        return self._ciphers

    def seal(self, header: EventHeader, sections: Mapping[SectionKind, tuple[DataKey, bytes]]) -> bytes:
        """The envelope's wire bytes for ``header`` and each section's (data key, plaintext)."""
        return self.seal_event(header, sections).wire

    def seal_event(self, header: EventHeader, sections: Mapping[SectionKind, tuple[DataKey, bytes]],
                   ) -> SealedEvent:
        """Like :meth:`seal`, also giving the envelope's canonical hash (what the event store records)."""
        if header.producer_org != self._signer.org_id or header.signing_key_id != self._signer.key_id:
            msg = (f"header.signing_key_id: {header.signing_key_id!r} of {header.producer_org!r} is not this "
                   f"signer's key {self._signer.key_id!r} of {self._signer.org_id!r}")
            raise MalformedEnvelopeError(msg)
        if not sections:
            msg = "sections: an envelope carries at least one sealed section"
            raise MalformedEnvelopeError(msg)
        header_bytes = header.encode()
        header_digest = fmt.header_digest(header_bytes)
        if self._null_crypto:
            return _seal_null(header_bytes, header_digest, sections)
        nonces = self._nonces(fmt.NONCE_BYTES * len(sections))
        sealed, digests = [], []
        for index, kind in enumerate(sorted(sections)):
            key, plaintext = sections[kind]
            nonce = nonces[index * fmt.NONCE_BYTES:(index + 1) * fmt.NONCE_BYTES]
            associated = fmt.section_associated_data(header_bytes, kind, key.key_id)
            ciphertext = self._ciphers.cipher(key.key_id, key.key).encrypt(nonce, plaintext, associated)
            digest = fmt.section_digest(kind, key.key_id, nonce, ciphertext)
            wire_kind = cast("envelope_pb2.SectionKind", kind)
            sealed.append(envelope_pb2.SealedSection(kind=wire_kind, key_id=key.key_id, nonce=nonce,
                                                     ciphertext=ciphertext, digest=digest))
            digests.append(digest)
        signing_input = fmt.signing_input(header_digest, digests)
        signature = self._signer.private_key.sign(signing_input)
        envelope = envelope_pb2.Envelope(format_version=fmt.FORMAT_VERSION, header=header_bytes,
                                         header_digest=header_digest, sections=sealed, signature=signature)
        return SealedEvent(wire=envelope.SerializeToString(deterministic=True),
                           canonical_hash=fmt.canonical_hash(signing_input, signature))


def _seal_null(header_bytes: bytes, header_digest: bytes, sections: Mapping[SectionKind, tuple[DataKey, bytes]],
               ) -> SealedEvent:
    """A benchmark network's envelope with crypto off: plaintext sections, zero tags, nonces and signature."""
    nonce, tag = bytes(fmt.NONCE_BYTES), bytes(fmt.TAG_BYTES)
    sealed, digests = [], []
    for kind in sorted(sections):
        key, plaintext = sections[kind]
        body = plaintext + tag
        digest = fmt.section_digest(kind, key.key_id, nonce, body)
        sealed.append(envelope_pb2.SealedSection(kind=cast("envelope_pb2.SectionKind", kind), key_id=key.key_id,
                                                 nonce=nonce, ciphertext=body, digest=digest))
        digests.append(digest)
    signing_input = fmt.signing_input(header_digest, digests, version=NULL_FORMAT_VERSION)
    envelope = envelope_pb2.Envelope(format_version=NULL_FORMAT_VERSION, header=header_bytes,
                                     header_digest=header_digest, sections=sealed, signature=NULL_SIGNATURE)
    return SealedEvent(wire=envelope.SerializeToString(deterministic=True),
                       canonical_hash=fmt.canonical_hash(signing_input, NULL_SIGNATURE))


def parse_envelope(wire: bytes, *, allow_null_crypto: bool = False) -> ParsedEnvelope:
    """Split wire bytes into an envelope's parts; every structural problem names its field.

    A benchmark network's null-crypto envelope is refused (UnsupportedVersionError) unless
    ``allow_null_crypto``, which only a Verifier with the benchmark switch honoured passes.
    """
    envelope = envelope_pb2.Envelope()
    try:
        envelope.ParseFromString(wire)
    except DecodeError:
        msg = "envelope: not a valid Envelope encoding"
        raise MalformedEnvelopeError(msg) from None
    _require(envelope.format_version != 0, "format_version", "missing")  # absent, or bytes that are no envelope
    null_crypto = allow_null_crypto and envelope.format_version == NULL_FORMAT_VERSION
    if envelope.format_version != fmt.FORMAT_VERSION and not null_crypto:
        msg = f"envelope.format_version: {envelope.format_version} is not supported (only {fmt.FORMAT_VERSION})"
        raise UnsupportedVersionError(msg)
    _require(len(envelope.header_digest) == fmt.DIGEST_BYTES, "header_digest", "must be 32 bytes")
    _require(len(envelope.signature) == fmt.SIGNATURE_BYTES, "signature", "must be 64 bytes")
    _require(0 < len(envelope.sections) <= len(_KNOWN_KINDS), "sections", "must hold 1 or 2 sections")
    sections = tuple(_parse_section(index, section) for index, section in enumerate(envelope.sections))
    kinds = [section.kind for section in sections]
    _require(kinds == sorted(set(kinds)), "sections", "must be in ascending kind order, one per kind")
    return ParsedEnvelope(header_bytes=envelope.header, header_digest=envelope.header_digest,
                          sections=sections, signature=envelope.signature, format_version=envelope.format_version)


def _parse_section(index: int, section: envelope_pb2.SealedSection) -> SealedSection:
    where = f"sections[{index}]"
    _require(section.kind != envelope_pb2.SECTION_KIND_UNSPECIFIED, f"{where}.kind", "missing")
    if section.kind not in _KNOWN_KINDS:
        msg = f"envelope.{where}.kind: section kind {section.kind} is not supported"
        raise UnsupportedVersionError(msg)
    _require(0 < len(section.key_id.encode()) <= fmt.MAX_KEY_ID_BYTES, f"{where}.key_id", "must be 1-255 bytes")
    _require(len(section.nonce) == fmt.NONCE_BYTES, f"{where}.nonce", "must be 12 bytes")
    _require(len(section.ciphertext) >= fmt.TAG_BYTES, f"{where}.ciphertext", "is shorter than its tag")
    _require(len(section.digest) == fmt.DIGEST_BYTES, f"{where}.digest", "must be 32 bytes")
    return SealedSection(kind=section.kind, key_id=section.key_id, nonce=section.nonce,
                         ciphertext=section.ciphertext, digest=section.digest)


def _require(condition: bool, field: str, why: str) -> None:
    if not condition:
        msg = f"envelope.{field}: {why}"
        raise MalformedEnvelopeError(msg)
