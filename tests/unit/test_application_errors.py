"""Application errors: both languages always, the field named, the caller's language chosen."""

from __future__ import annotations

import pytest

from services.core.application import (
    ApplicationError,
    ErrorCode,
    FailedPrecondition,
    InvalidArgument,
    language_of,
)


def test_field_errors_name_the_field_in_both_languages() -> None:
    error = InvalidArgument("needs[1].service_type", es="falta el tipo de servicio", en="service type is missing")
    assert error.code is ErrorCode.INVALID_ARGUMENT
    assert error.message("es") == "needs[1].service_type: falta el tipo de servicio"
    assert error.message("en") == "needs[1].service_type: service type is missing"
    assert error.message("fr") == error.message("es")


def test_a_message_in_one_language_only_is_refused() -> None:
    with pytest.raises(ValueError, match="Spanish and an English"):
        FailedPrecondition(es="la oferta expiró", en=" ")


def test_every_code_has_a_class() -> None:
    codes = {cls.code for cls in ApplicationError.__subclasses__()}
    assert codes == set(ErrorCode)


@pytest.mark.parametrize(("header", "language"), [
    (None, "es"), ("", "es"), ("en", "en"), ("en-GB,en;q=0.8", "en"), ("es-PE", "es"),
    ("fr, en;q=0.5", "en"), ("qu, es;q=0.9, en;q=0.1", "es"), ("en;q=0", "es"), ("en;q=bad", "es"),
    ("es;q=0.2, en;q=0.9", "en"),
])
def test_language_of_accept_language(header: str | None, language: str) -> None:
    assert language_of(header) == language
