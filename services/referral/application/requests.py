"""Checking the referral API's requests: every problem is an InvalidArgument naming the field, in es and en."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import cast

from services.core.application import InvalidArgument
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import ServiceType
from services.core.generated.referralnet.referral.v1 import referral_pb2 as api
from services.core.identity.vocabulary import SERVICE_TYPES
from services.referral.adapters.api import STATE_OF
from services.referral.domain.handoff import HandoffState
from services.referral.domain.ids import is_handoff_id

MAX_NOTE_CHARS = 500
MAX_PLACES = 10_000
_REFERRAL_ID = re.compile(r"ref-[0-9a-f]{32}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # C0 controls and DEL, but tab, LF and CR

DECLINE_REASONS = frozenset(value for name, value in api.DeclineReason.items() if value != 0)
OUTCOMES = frozenset(value for name, value in api.ServiceOutcome.items() if value != 0)
WITHDRAW_REASONS = frozenset(value for name, value in api.WithdrawReason.items()
                             if value not in (0, api.WITHDRAW_REASON_CONSENT_REVOKED,
                                              api.WITHDRAW_REASON_SUBJECT_ERASED))
"""Reasons a person may give; consent_revoked and subject_erased are the service's own, when intake reports a
revocation or an erasure."""


def handoff_id(value: str) -> str:
    """A handoff id as this service assigns them (``hof-`` and 32 hex digits)."""
    if not value:
        raise InvalidArgument("handoff_id", es="falta el identificador de la derivación",
                              en="the handoff id is missing")
    if not is_handoff_id(value):
        raise InvalidArgument("handoff_id", es="no es un identificador de derivación (hof-...)",
                              en="not a handoff id (hof-...)")
    return value


def referral_id(value: str) -> str:
    """A referral id as intake assigns them (``ref-`` and 32 hex digits)."""
    if not value:
        raise InvalidArgument("referral_id", es="falta el identificador de la derivación del caso",
                              en="the referral id is missing")
    if _REFERRAL_ID.fullmatch(value) is None:
        raise InvalidArgument("referral_id", es="no es un identificador de caso (ref-...)",
                              en="not a referral id (ref-...)")
    return value


def note(value: str) -> str:
    """An optional note of at most 500 characters, no control characters but line breaks and tabs (no
    personal data either, which cannot be checked here)."""
    if len(value) > MAX_NOTE_CHARS:
        raise InvalidArgument("note", es=f"la nota admite como máximo {MAX_NOTE_CHARS} caracteres",
                              en=f"the note takes at most {MAX_NOTE_CHARS} characters")
    if _CONTROL.search(value):
        raise InvalidArgument("note", es="la nota contiene caracteres de control",
                              en="the note contains control characters")
    return value


def decline_reason(value: int) -> api.DeclineReason:
    """One of the DeclineReason values (not UNSPECIFIED)."""
    if value not in DECLINE_REASONS:
        raise InvalidArgument("reason", es="indique un motivo de rechazo de la lista",
                              en="give a decline reason from the list")
    return cast("api.DeclineReason", value)


def outcome(value: int) -> api.ServiceOutcome:
    """One of the ServiceOutcome values (not UNSPECIFIED)."""
    if value not in OUTCOMES:
        raise InvalidArgument("outcome", es="indique un resultado del servicio de la lista",
                              en="give a service outcome from the list")
    return cast("api.ServiceOutcome", value)


def withdraw_reason(value: int) -> api.WithdrawReason:
    """A WithdrawReason a person may give (not UNSPECIFIED, CONSENT_REVOKED or SUBJECT_ERASED)."""
    if value == api.WITHDRAW_REASON_CONSENT_REVOKED:
        raise InvalidArgument("reason", es="el consentimiento se revoca con RevokeConsent del servicio de admisión",
                              en="consent is revoked with intake's RevokeConsent")
    if value not in WITHDRAW_REASONS:
        raise InvalidArgument("reason", es="indique un motivo de retiro de la lista",
                              en="give a withdrawal reason from the list")
    return cast("api.WithdrawReason", value)


def handoff_states(values: Iterable[int]) -> list[HandoffState]:
    """The states to list (none: all); each must be a HandoffState value other than UNSPECIFIED."""
    states = []
    for index, value in enumerate(values):
        if value not in STATE_OF:
            raise InvalidArgument(f"states[{index}]", es="no es un estado de derivación válido",
                                  en="not a valid handoff state")
        states.append(STATE_OF[value])
    return list(dict.fromkeys(states))


def service_type(value: int) -> ServiceType:
    """A ServiceType value other than UNSPECIFIED."""
    if value not in SERVICE_TYPES.values():
        raise InvalidArgument("service_type", es="indique un tipo de servicio de la lista",
                              en="give a service type from the list")
    return cast("ServiceType", value)


def available_places(value: int) -> int:
    """0-10000 places."""
    if not 0 <= value <= MAX_PLACES:
        raise InvalidArgument("available_places", es=f"debe estar entre 0 y {MAX_PLACES}",
                              en=f"must be 0 to {MAX_PLACES}")
    return value
