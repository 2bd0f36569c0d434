"""What a data key is: the key itself, its opaque id, and the metadata the vault keeps beside it.

A subject (a pseudonymous victim id) has one data key per :class:`DataCategory`, each with a version that
rotation increases. Key ids travel in cleartext on Kafka, so they are random (``"dk-" + uuid4().hex``) and say
nothing about the subject, the category or the version: only the vault can map an id back to its subject.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

DATA_KEY_BYTES = 32  # AES-256-GCM
MAX_SUBJECT_ID = 128
_KEY_ID = re.compile(r"dk-[0-9a-f]{32}")


class DataCategory(StrEnum):
    """Which part of a subject's data a key protects: a service gets a key only for what it needs."""

    ROUTING = "routing"  # service types, region, urgency, minor flag
    CASE_FILE = "case_file"  # personal data: names, documents, narrative


class KeyState(StrEnum):
    """Where a data key is in its life."""

    ACTIVE = "active"  # the current version: seals new events
    RETIRED = "retired"  # an older version: still opens the events it sealed
    SHREDDED = "shredded"  # destroyed: what it sealed is unreadable for good


@dataclass(frozen=True)
class DataKey:
    """An unwrapped AES-256-GCM data key and its opaque id. ``repr`` never shows the key bytes."""

    key_id: str
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        """Refuse an empty id or a key that is not 32 bytes (a programming error, never data-dependent)."""
        if not self.key_id:
            raise ValueError("a data key needs a key id")
        if len(self.key) != DATA_KEY_BYTES:
            raise ValueError(f"a data key is {DATA_KEY_BYTES} bytes, not {len(self.key)}")


@dataclass(frozen=True)
class KeyMetadata:
    """What the vault knows about a data key besides the key: never secret, never sent on Kafka."""

    key_id: str
    subject_id: str
    category: DataCategory
    version: int
    created_at: datetime
    state: KeyState


def new_key_id() -> str:
    """A fresh opaque data key id: 122 random bits, nothing derived from the subject."""
    return "dk-" + uuid.uuid4().hex


def new_data_key() -> DataKey:
    """A fresh random AES-256-GCM key under a fresh opaque id."""
    return DataKey(new_key_id(), AESGCM.generate_key(bit_length=DATA_KEY_BYTES * 8))


def is_data_key_id(value: str) -> bool:
    """Whether ``value`` has the shape of a data key id (``dk-`` and 32 lowercase hex digits)."""
    return _KEY_ID.fullmatch(value) is not None


def check_subject_id(subject_id: str) -> None:
    """ValueError unless ``subject_id`` is 1 to 128 printable characters (no NUL, no line breaks)."""
    if not 0 < len(subject_id) <= MAX_SUBJECT_ID or not subject_id.isprintable():
        raise ValueError(f"a subject id has 1 to {MAX_SUBJECT_ID} printable characters")
