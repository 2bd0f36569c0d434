"""Unambiguous byte strings for associated data: every field length-prefixed, so no two inputs collide."""

from __future__ import annotations

_MAX_FIELD = 0xFFFF
WRAP_LABEL = b"referralnet/keyvault/wrap/v1"


def length_prefixed(*fields: bytes) -> bytes:
    """Concatenate ``fields``, each preceded by its length as 2 big-endian bytes."""
    out = bytearray()
    for item in fields:
        if len(item) > _MAX_FIELD:
            raise ValueError(f"a field of {len(item)} bytes is longer than {_MAX_FIELD}")
        out += len(item).to_bytes(2, "big") + item
    return bytes(out)


def wrap_context(key_id: str, subject_id: str, category: str, version: int, kek_id: str) -> bytes:
    """The associated data a data key is wrapped under: the row it belongs to and the KEK that wrapped it.

    A wrapped key copied to another row (another subject, category, version or key id) does not unwrap.
    """
    return length_prefixed(
        WRAP_LABEL,
        key_id.encode(),
        subject_id.encode(),
        category.encode(),
        version.to_bytes(4, "big"),
        kek_id.encode(),
    )
