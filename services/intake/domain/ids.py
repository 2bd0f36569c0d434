"""The ids intake assigns: subjects, referrals, consents and key releases (never chosen by a partner).

Each is a prefix and the 32 hex digits of a UUIDv7 (time-ordered, like event ids): ``sub-0190...``. A
partner-chosen id could be a document number; a network-assigned one says nothing about the person.
"""

from __future__ import annotations

import re

import uuid6

SUBJECT_PREFIX = "sub-"
REFERRAL_PREFIX = "ref-"
CONSENT_PREFIX = "con-"
RELEASE_PREFIX = "rel-"

_SUBJECT_ID = re.compile(r"sub-[0-9a-f]{32}")
_CONSENT_ID = re.compile(r"con-[0-9a-f]{32}")


def _new(prefix: str) -> str:
    return prefix + uuid6.uuid7().hex


def new_subject_id() -> str:
    """A fresh subject id: ``sub-`` and a UUIDv7's hex digits."""
    return _new(SUBJECT_PREFIX)


def new_referral_id() -> str:
    """A fresh referral id: ``ref-`` and a UUIDv7's hex digits."""
    return _new(REFERRAL_PREFIX)


def new_consent_id() -> str:
    """A fresh consent id: ``con-`` and a UUIDv7's hex digits."""
    return _new(CONSENT_PREFIX)


def new_release_id() -> str:
    """A fresh key release id: ``rel-`` and a UUIDv7's hex digits."""
    return _new(RELEASE_PREFIX)


def is_subject_id(value: str) -> bool:
    """Whether ``value`` has the shape of a subject id intake assigns."""
    return _SUBJECT_ID.fullmatch(value) is not None


def is_consent_id(value: str) -> bool:
    """Whether ``value`` has the shape of a consent id intake assigns."""
    return _CONSENT_ID.fullmatch(value) is not None


