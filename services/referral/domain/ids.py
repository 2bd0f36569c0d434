"""The ids the referral service assigns: handoffs (``hof-`` and a UUIDv7's hex digits)."""

from __future__ import annotations

import re

import uuid6

HANDOFF_PREFIX = "hof-"
_HANDOFF_ID = re.compile(r"hof-[0-9a-f]{32}")


def new_handoff_id() -> str:
    """A fresh handoff id: ``hof-`` and a UUIDv7's hex digits (time-ordered, says nothing about anyone)."""
    return HANDOFF_PREFIX + uuid6.uuid7().hex


def is_handoff_id(value: str) -> bool:
    """Whether ``value`` has the shape of a handoff id this service assigns."""
    return _HANDOFF_ID.fullmatch(value) is not None
