"""Signed checkpoints of the audit ledger: their exact signed bytes, signing, verification, linking (pure).

A checkpoint states the ledger's size and root, when, which checkpoint it follows, and the runs of source
records (topic, partition, offsets) whose verified, not-yet-seen events became its new leaves, in order
(docs/adr/0012-audit-ledger.md). The signed bytes have a fixed layout, independent of protobuf::

    "referralnet/checkpoint/v1\\0"
    origin                    u16 BE length + UTF-8
    tree_size                 u64 BE
    root_hash                 32 bytes
    issued_at (unix micros)   i64 BE
    previous_tree_size        u64 BE
    previous_checkpoint_hash  32 bytes (zeros for the first checkpoint)
    number of runs            u32 BE
    each run: topic (u16 BE length + UTF-8), partition (u32 BE), first_offset (u64 BE), last_offset (u64 BE)
    signing_key_id            u16 BE length + UTF-8

signed by Ed25519 with ``svc:audit#sig-<n>``. The checkpoint hash, which the next checkpoint links to, is
SHA-256(signed bytes || signature).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf import unknown_fields
from google.protobuf.message import DecodeError

from services.core.envelope.errors import UnknownKeyError
from services.core.envelope.verification import SigningKeyResolver
from services.core.generated.referralnet.audit.v1 import audit_pb2
from services.core.identity.directory import Directory
from services.core.identity.records import service_owner

SIGNED_BYTES_DOMAIN = b"referralnet/checkpoint/v1\x00"
AUDIT_SERVICE = "audit"
AUDIT_PRODUCER = service_owner(AUDIT_SERVICE)  # "svc:audit": who must own a checkpoint's signing key
ZERO_HASH = bytes(32)
"""The previous checkpoint hash of the first checkpoint."""

HASH_BYTES = 32
SIGNATURE_BYTES = 64
_U16, _U32, _U64 = 0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF
_I32_MAX, _I64_MIN, _I64_MAX = 2**31 - 1, -(2**63), 2**63 - 1
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")  # Kafka's legal topic names


class CheckpointError(Exception):
    """A checkpoint is malformed, does not verify, or does not extend its predecessor. ``reason`` is one of:

    ``invalid_field`` (``field`` names it), ``malformed`` (bytes that are no Checkpoint message),
    ``unknown_field`` (a field outside the schema: it would travel unsigned), ``unknown_key``,
    ``wrong_signer`` (a key that is not the audit service's), ``bad_signature``, ``wrong_origin``,
    ``wrong_previous_size``, ``wrong_previous_hash``, ``wrong_size``.
    """

    def __init__(self, reason: str, detail: str = "", *, field: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.field = field


def _invalid(field: str, why: str) -> CheckpointError:
    return CheckpointError("invalid_field", f"{field} {why}", field=field)


def _check_text(value: str, field: str) -> None:
    if not isinstance(value, str) or not 0 < len(value.encode()) <= _U16:
        raise _invalid(field, "must be 1-65535 bytes of UTF-8 text")


def _check_int(value: int, low: int, high: int, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(field, f"must be an integer in [{low}, {high}]")


def _check_bytes(value: bytes, size: int, field: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise _invalid(field, f"must be {size} bytes")


@dataclass(frozen=True)
class LeafRun:
    """Source records ``first_offset..last_offset`` (inclusive) of one topic partition, appended in order."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int

    def __post_init__(self) -> None:
        if not isinstance(self.topic, str) or not _TOPIC.fullmatch(self.topic):
            raise _invalid("runs.topic", "must be a Kafka topic name (1-249 of A-Z a-z 0-9 . _ -)")
        _check_int(self.partition, 0, _I32_MAX, "runs.partition")
        _check_int(self.first_offset, 0, _I64_MAX, "runs.first_offset")
        _check_int(self.last_offset, self.first_offset, _I64_MAX, "runs.last_offset")


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of the ledger's first ``tree_size`` leaves; valid by construction (CheckpointError)."""

    origin: str
    tree_size: int
    root_hash: bytes
    issued_at_us: int
    previous_tree_size: int
    previous_checkpoint_hash: bytes
    runs: tuple[LeafRun, ...]
    signing_key_id: str
    signature: bytes

    def __post_init__(self) -> None:
        _check_text(self.origin, "origin")
        _check_int(self.tree_size, 0, _U64, "tree_size")
        _check_bytes(self.root_hash, HASH_BYTES, "root_hash")
        _check_int(self.issued_at_us, _I64_MIN, _I64_MAX, "issued_at_us")
        _check_int(self.previous_tree_size, 0, _U64, "previous_tree_size")
        _check_bytes(self.previous_checkpoint_hash, HASH_BYTES, "previous_checkpoint_hash")
        runs = tuple(self.runs)
        if len(runs) > _U32 or not all(isinstance(run, LeafRun) for run in runs):
            raise _invalid("runs", "must be at most 2**32 - 1 LeafRun values")
        object.__setattr__(self, "runs", runs)
        _check_text(self.signing_key_id, "signing_key_id")
        _check_bytes(self.signature, SIGNATURE_BYTES, "signature")


def _text(value: str) -> bytes:
    encoded = value.encode()
    return struct.pack(">H", len(encoded)) + encoded


def signed_bytes(checkpoint: Checkpoint) -> bytes:
    """The bytes the signature covers (the layout in this module's docstring and ADR 12)."""
    parts = [
        SIGNED_BYTES_DOMAIN,
        _text(checkpoint.origin),
        struct.pack(">Q", checkpoint.tree_size),
        checkpoint.root_hash,
        struct.pack(">qQ", checkpoint.issued_at_us, checkpoint.previous_tree_size),
        checkpoint.previous_checkpoint_hash,
        struct.pack(">I", len(checkpoint.runs)),
    ]
    for run in checkpoint.runs:
        parts += [_text(run.topic), struct.pack(">IQQ", run.partition, run.first_offset, run.last_offset)]
    parts.append(_text(checkpoint.signing_key_id))
    return b"".join(parts)


def checkpoint_hash(checkpoint: Checkpoint) -> bytes:
    """SHA-256(signed bytes || signature): what the next checkpoint's ``previous_checkpoint_hash`` must be."""
    return hashlib.sha256(signed_bytes(checkpoint) + checkpoint.signature).digest()


def checkpoint_origin(network_id: str) -> str:
    """The origin of a network's audit ledger: ``<network_id>/audit/v1``."""
    return f"{network_id}/audit/v1"


def sign_checkpoint(  # noqa: PLR0917 -- the shared contract (ADR 12's fields in their order)
    origin: str,
    tree_size: int,
    root_hash: bytes,
    issued_at_us: int,
    previous: Checkpoint | None,
    runs: Iterable[LeafRun],
    key_id: str,
    private_key: Ed25519PrivateKey,
) -> Checkpoint:
    """A checkpoint linked to ``previous`` (None for the first), signed with ``private_key`` (``key_id``)."""
    unsigned = Checkpoint(
        origin=origin,
        tree_size=tree_size,
        root_hash=root_hash,
        issued_at_us=issued_at_us,
        previous_tree_size=previous.tree_size if previous else 0,
        previous_checkpoint_hash=checkpoint_hash(previous) if previous else ZERO_HASH,
        runs=tuple(runs),
        signing_key_id=key_id,
        signature=bytes(SIGNATURE_BYTES),
    )
    return replace(unsigned, signature=private_key.sign(signed_bytes(unsigned)))


def verify_checkpoint(checkpoint: Checkpoint, resolver: SigningKeyResolver, *, origin: str | None = None) -> None:
    """Check the signature with the key the directory (``resolver``) gives ``signing_key_id``.

    The key must belong to the audit service (``svc:audit``); ``origin``, when given, must match.
    Raises CheckpointError.
    """
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError("wrong_origin", f"{checkpoint.origin!r} is not {origin!r}")
    try:
        owner, public_key = resolver.signing_key(checkpoint.signing_key_id)
    except (KeyError, UnknownKeyError):
        raise CheckpointError("unknown_key", f"no signing key {checkpoint.signing_key_id!r}") from None
    if owner != AUDIT_PRODUCER:
        raise CheckpointError("wrong_signer", f"{checkpoint.signing_key_id!r} belongs to {owner!r}, not audit")
    try:
        public_key.verify(checkpoint.signature, signed_bytes(checkpoint))
    except InvalidSignature:
        raise CheckpointError("bad_signature", f"checkpoint of size {checkpoint.tree_size}") from None


def check_extends(previous: Checkpoint | None, checkpoint: Checkpoint, leaves_in_runs: int) -> None:
    """Check that ``checkpoint`` follows ``previous`` (None: it is the first) and grew by ``leaves_in_runs``.

    Its link must name the predecessor's size and hash, its origin must be the same, and its size must be
    the predecessor's plus the leaves its runs gave. Whether the two trees are consistent is a Merkle
    question: a consistency proof between the two sizes answers it. Raises CheckpointError.
    """
    if leaves_in_runs < 0:
        raise ValueError("leaves_in_runs cannot be negative")
    expected_size, expected_hash = (previous.tree_size, checkpoint_hash(previous)) if previous else (0, ZERO_HASH)
    if previous is not None and checkpoint.origin != previous.origin:
        raise CheckpointError("wrong_origin", f"{checkpoint.origin!r} follows a checkpoint of {previous.origin!r}")
    if checkpoint.previous_tree_size != expected_size:
        raise CheckpointError(
            "wrong_previous_size", f"links to size {checkpoint.previous_tree_size}, the previous has {expected_size}"
        )
    if not hmac.compare_digest(checkpoint.previous_checkpoint_hash, expected_hash):
        raise CheckpointError("wrong_previous_hash", f"checkpoint of size {checkpoint.tree_size}")
    if checkpoint.tree_size != expected_size + leaves_in_runs:
        raise CheckpointError(
            "wrong_size", f"size {checkpoint.tree_size} is not {expected_size} + {leaves_in_runs} leaves in its runs"
        )


def to_proto(checkpoint: Checkpoint) -> audit_pb2.Checkpoint:
    """The ``referralnet.audit.v1.Checkpoint`` message."""
    return audit_pb2.Checkpoint(
        origin=checkpoint.origin,
        tree_size=checkpoint.tree_size,
        root_hash=checkpoint.root_hash,
        issued_at_unix_micros=checkpoint.issued_at_us,
        previous_tree_size=checkpoint.previous_tree_size,
        previous_checkpoint_hash=checkpoint.previous_checkpoint_hash,
        runs=[
            audit_pb2.LeafRun(
                topic=run.topic, partition=run.partition, first_offset=run.first_offset, last_offset=run.last_offset
            )
            for run in checkpoint.runs
        ],
        signing_key_id=checkpoint.signing_key_id,
        signature=checkpoint.signature,
    )


def from_proto(message: audit_pb2.Checkpoint) -> Checkpoint:
    """The checkpoint a message carries; CheckpointError for a missing, ill-sized or unknown field."""
    if len(unknown_fields.UnknownFieldSet(message)) or any(
        len(unknown_fields.UnknownFieldSet(run)) for run in message.runs
    ):
        raise CheckpointError("unknown_field", "the checkpoint carries fields outside its schema")
    return Checkpoint(
        origin=message.origin,
        tree_size=message.tree_size,
        root_hash=message.root_hash,
        issued_at_us=message.issued_at_unix_micros,
        previous_tree_size=message.previous_tree_size,
        previous_checkpoint_hash=message.previous_checkpoint_hash,
        runs=tuple(
            LeafRun(topic=run.topic, partition=run.partition, first_offset=run.first_offset,
                    last_offset=run.last_offset)
            for run in message.runs
        ),
        signing_key_id=message.signing_key_id,
        signature=message.signature,
    )


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    """The checkpoint as protobuf bytes (deterministic): what is stored and published."""
    return to_proto(checkpoint).SerializeToString(deterministic=True)


def parse_checkpoint(data: bytes) -> Checkpoint:
    """A checkpoint from protobuf bytes (a record of the checkpoint topic); strict, CheckpointError."""
    message = audit_pb2.Checkpoint()
    try:
        message.ParseFromString(data)
    except DecodeError:
        raise CheckpointError("malformed", "not a Checkpoint message") from None
    return from_proto(message)


@dataclass(frozen=True)
class CheckpointSigner:
    """The audit service's checkpoint signing identity: origin, key id and private key, checked together."""

    origin: str
    key_id: str
    private_key: Ed25519PrivateKey

    @classmethod
    def for_directory(cls, directory: Directory, private_key: Ed25519PrivateKey) -> CheckpointSigner:
        """Audit's signer in ``directory``: its key id (``svc:audit#sig-<n>``) must resolve to this key.

        The private key comes from ``keystore.load_service_signing_key(network_dir, "audit")``.
        """
        key_id = directory.service(AUDIT_SERVICE).signing_key.key_id
        owner, public_key = directory.signing_key(key_id)
        raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        if owner != AUDIT_PRODUCER or raw != public_key.public_bytes(Encoding.Raw, PublicFormat.Raw):
            raise CheckpointError("wrong_signer", f"the private key is not the one the directory gives {key_id!r}")
        return cls(checkpoint_origin(directory.network_id), key_id, private_key)

    def sign(
        self, tree_size: int, root_hash: bytes, issued_at_us: int, previous: Checkpoint | None, runs: Iterable[LeafRun]
    ) -> Checkpoint:
        """A checkpoint of this origin signed with this key (see :func:`sign_checkpoint`)."""
        return sign_checkpoint(
            self.origin, tree_size, root_hash, issued_at_us, previous, runs, self.key_id, self.private_key
        )
