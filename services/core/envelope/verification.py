"""Verifying envelopes (one, or many at once) and opening the sections of a verified one."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.core.envelope import format as fmt
from services.core.envelope.batching import ChunkedPool
from services.core.envelope.benchmark import NULL_FORMAT_VERSION, null_crypto_enabled
from services.core.envelope.ciphers import CipherCache
from services.core.envelope.envelope import SealedSection, parse_envelope
from services.core.envelope.errors import (
    BadSignatureError,
    EnvelopeError,
    MalformedEnvelopeError,
    TamperedHeaderError,
    TamperedSectionError,
    UnknownKeyError,
)
from services.core.envelope.format import SectionKind
from services.core.envelope.header import EventHeader
from services.core.keyvault.keys import DataKey


class SigningKeyResolver(Protocol):
    """Maps a signing key id to the organisation that owns it and its public key (the directory)."""

    def signing_key(self, key_id: str) -> tuple[str, Ed25519PublicKey]:
        """``(org_id, public_key)``; raises KeyError (or UnknownKeyError) for an unknown id."""
        ...


@dataclass(frozen=True, slots=True)
class VerifiedSection:
    """A section of a verified envelope, with the AES-GCM associated data that opens it."""

    kind: int
    key_id: str
    nonce: bytes
    ciphertext: bytes
    associated_data: bytes


@dataclass(frozen=True, slots=True)
class VerifiedEnvelope:
    """An envelope whose digests and signature verified: its header can be trusted and its sections opened."""

    header: EventHeader
    header_bytes: bytes
    sections: tuple[VerifiedSection, ...]
    signing_input: bytes
    signature: bytes
    null_crypto: bool = False

    def section(self, kind: SectionKind) -> VerifiedSection:
        """The section of this kind; MalformedEnvelopeError when the event carries none."""
        for section in self.sections:
            if section.kind == kind:
                return section
        msg = f"event {self.header.event_id} carries no {kind.name.lower()} section"
        raise MalformedEnvelopeError(msg)

    def canonical_bytes(self) -> bytes:
        """The bytes audit hashes (see :func:`services.core.envelope.format.canonical_bytes`)."""
        return fmt.canonical_bytes(self.signing_input, self.signature)

    def canonical_hash(self) -> bytes:
        """SHA-256 of :meth:`canonical_bytes`."""
        return fmt.canonical_hash(self.signing_input, self.signature)


class Verifier:
    """Checks envelopes against the directory's signing keys, caching parsed public keys."""

    def __init__(self, resolver: SigningKeyResolver, workers: int | None = None) -> None:
        """``resolver`` is the network's directory; its ``network_id``, if it has one, decides whether a
        benchmark network's null-crypto envelopes are accepted (:mod:`services.core.envelope.benchmark`)."""
        self._resolver = resolver
        self._keys: dict[str, tuple[str, Ed25519PublicKey]] = {}
        self._pool = ChunkedPool(workers, name="envelope-verify")
        network_id = getattr(resolver, "network_id", None)
        self._null_crypto = null_crypto_enabled(network_id if isinstance(network_id, str) else None)

    def verify(self, wire: bytes) -> VerifiedEnvelope:
        """Parse and verify one envelope, or raise the precise EnvelopeError."""
        parsed = parse_envelope(wire, allow_null_crypto=self._null_crypto)
        null_crypto = parsed.format_version == NULL_FORMAT_VERSION
        if not hmac.compare_digest(fmt.header_digest(parsed.header_bytes), parsed.header_digest):
            msg = "header: its bytes do not match the signed header digest"
            raise TamperedHeaderError(msg)
        for section in parsed.sections:
            actual = fmt.section_digest(section.kind, section.key_id, section.nonce, section.ciphertext)
            if not hmac.compare_digest(actual, section.digest):
                msg = f"section {SectionKind(section.kind).name.lower()}: its bytes do not match its signed digest"
                raise TamperedSectionError(msg)
        header = EventHeader.decode(parsed.header_bytes)
        org_id, public_key = self._signing_key(header.signing_key_id)
        if org_id != header.producer_org:
            msg = (f"event {header.event_id}: signing key {header.signing_key_id} belongs to {org_id}, "
                   f"not to the producer {header.producer_org}")
            raise BadSignatureError(msg)
        signing_input = fmt.signing_input(parsed.header_digest, [section.digest for section in parsed.sections],
                                          version=parsed.format_version)
        try:
            if not null_crypto:  # only ever true with the benchmark switch honoured (parse_envelope)
                public_key.verify(parsed.signature, signing_input)
        except InvalidSignature:
            msg = f"event {header.event_id}: the signature does not verify under {header.signing_key_id}"
            raise BadSignatureError(msg) from None
        sections = tuple(_verified_section(parsed.header_bytes, section) for section in parsed.sections)
        return VerifiedEnvelope(header=header, header_bytes=parsed.header_bytes, sections=sections,
                                signing_input=signing_input, signature=parsed.signature, null_crypto=null_crypto)

    def verify_many(self, wires: Sequence[bytes]) -> list[VerifiedEnvelope | EnvelopeError]:
        """Verify a batch; each result is the verified envelope or the error that envelope raised.

        Ed25519 verification releases the GIL, so large batches are split across a thread pool of one
        worker per core: per envelope, a batch is never slower than one call at a time.
        """
        return self._pool.map(self._verify_or_error, wires)

    def close(self) -> None:
        """Stop the batch thread pool, if one was started."""
        self._pool.close()

    def _verify_or_error(self, wire: bytes) -> VerifiedEnvelope | EnvelopeError:
        try:
            return self.verify(wire)
        except EnvelopeError as error:
            return error

    def _signing_key(self, key_id: str) -> tuple[str, Ed25519PublicKey]:
        cached = self._keys.get(key_id)
        if cached is not None:
            return cached
        try:
            resolved = self._resolver.signing_key(key_id)
        except KeyError:
            msg = f"signing key {key_id} is not in the directory"
            raise UnknownKeyError(msg) from None
        self._keys[key_id] = resolved
        return resolved


def _verified_section(header_bytes: bytes, section: SealedSection) -> VerifiedSection:
    associated = fmt.section_associated_data(header_bytes, section.kind, section.key_id)
    return VerifiedSection(kind=section.kind, key_id=section.key_id, nonce=section.nonce,
                           ciphertext=section.ciphertext, associated_data=associated)


class Opener:
    """Opens sections of verified envelopes; only a VerifiedEnvelope can be opened."""

    def __init__(self, ciphers: CipherCache | None = None) -> None:
        self._ciphers = ciphers or CipherCache()

    @property
    def ciphers(self) -> CipherCache:
        """The cipher cache (to be told when keys are shredded)."""
        return self._ciphers

    def open(self, envelope: VerifiedEnvelope, kind: SectionKind, key: DataKey) -> bytes:
        """The plaintext of one section, all of it or nothing."""
        section = envelope.section(kind)
        if key.key_id != section.key_id:
            msg = f"the {kind.name.lower()} section is sealed under key {section.key_id}, not {key.key_id}"
            raise UnknownKeyError(msg)
        if envelope.null_crypto:  # a benchmark network's envelope, accepted only with the switch honoured
            return section.ciphertext[:-fmt.TAG_BYTES]
        try:
            cipher = self._ciphers.cipher(key.key_id, key.key)
            return cipher.decrypt(section.nonce, section.ciphertext, section.associated_data)
        except InvalidTag:
            msg = f"event {envelope.header.event_id}: the {kind.name.lower()} section does not decrypt (tampered)"
            raise TamperedSectionError(msg) from None
