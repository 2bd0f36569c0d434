"""Errors the application layer raises for people to act on: a code, the field, a message in es and en.

Every error is written at the raise site in both languages (Spanish first: the network's default), so no
message can exist in one language only. The gRPC edge maps the code to a status code and picks the
language from the call's ``accept-language`` metadata; nothing else ever reaches a caller (no stack
traces, no internal ids, never personal data).
"""

from __future__ import annotations

from enum import StrEnum

LANGUAGES = ("es", "en")
DEFAULT_LANGUAGE = "es"


class ErrorCode(StrEnum):
    """What kind of error: maps one to one onto a gRPC status code."""

    INVALID_ARGUMENT = "invalid_argument"  # the request itself is wrong: ``field`` names what
    PERMISSION_DENIED = "permission_denied"  # the caller's role or relationship does not allow it
    FAILED_PRECONDITION = "failed_precondition"  # the state does not allow it (e.g. an expired offer)
    ALREADY_EXISTS = "already_exists"  # an idempotency key reused with a different request
    NOT_FOUND = "not_found"  # an unknown id that the caller may know about
    UNAVAILABLE = "unavailable"  # a transient condition: retrying the same call later may succeed


class ApplicationError(Exception):
    """An error with a code, an optional field path (``needs[1].service_type``) and es/en messages."""

    code: ErrorCode = ErrorCode.FAILED_PRECONDITION

    def __init__(self, *, es: str, en: str, field: str | None = None) -> None:
        if not es.strip() or not en.strip():
            raise ValueError("an application error needs both a Spanish and an English message")
        self.field = field
        self.messages = {"es": es, "en": en}
        super().__init__(self.message("en"))

    def message(self, language: str = DEFAULT_LANGUAGE) -> str:
        """The message in ``language`` (Spanish for any language not offered), prefixed by the field."""
        text = self.messages.get(language, self.messages[DEFAULT_LANGUAGE])
        return f"{self.field}: {text}" if self.field else text


class InvalidArgument(ApplicationError):
    """The request is malformed; ``field`` names the offending field."""

    code = ErrorCode.INVALID_ARGUMENT

    def __init__(self, field: str, *, es: str, en: str) -> None:
        super().__init__(es=es, en=en, field=field)


class PermissionDenied(ApplicationError):
    """The caller may not do this (its role, or it is not party to this referral or handoff)."""

    code = ErrorCode.PERMISSION_DENIED


class FailedPrecondition(ApplicationError):
    """The current state does not allow this (an illegal transition, missing consent...)."""

    code = ErrorCode.FAILED_PRECONDITION


class AlreadyExists(ApplicationError):
    """Something with this identity exists and differs (an idempotency key reused for another request)."""

    code = ErrorCode.ALREADY_EXISTS


class NotFound(ApplicationError):
    """No such thing, as far as the caller may know."""

    code = ErrorCode.NOT_FOUND


class Unavailable(ApplicationError):
    """A transient condition (e.g. a write race lost too many times): retrying later may succeed."""

    code = ErrorCode.UNAVAILABLE


def language_of(accept_language: str | None) -> str:
    """``es`` or ``en`` from an Accept-Language value (``en-GB,en;q=0.8`` -> ``en``); Spanish by default."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE
