"""What every service's application layer shares: the errors people act on (and their languages)."""

from services.core.application.errors import (
    AlreadyExists,
    ApplicationError,
    ErrorCode,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
    language_of,
)

__all__ = [
    "AlreadyExists", "ApplicationError", "ErrorCode", "FailedPrecondition", "InvalidArgument", "NotFound",
    "PermissionDenied", "Unavailable", "language_of",
]
