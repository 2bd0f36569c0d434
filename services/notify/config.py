"""The notify service's own settings, read by the worker (nameko config, else the environment).

| key | what | default |
|---|---|---|
| ``NOTIFY_MAX_ATTEMPTS`` | tries per delivery before it fails for good (>= 1) | 8 |
| ``NOTIFY_RETRY_BASE_SECONDS`` | backoff base: the n-th failure waits up to base * 2^(n-1) | 2 |
| ``NOTIFY_RETRY_CAP_SECONDS`` | longest wait between tries (>= base) | 300 |
| ``NOTIFY_SMTP_HOST`` | the SMTP relay; unset or empty: e-mail endpoints fail (``smtp_not_configured``) | none |
| ``NOTIFY_SMTP_PORT`` | its port | 25 |
| ``NOTIFY_SMTP_FROM`` | the notices' sender address | ``notificaciones@referralnet.invalid`` |
| ``NOTIFY_SMTP_STARTTLS`` | upgrade the session with STARTTLS (``true``/``false``) | false |
| ``NOTIFY_SMTP_USERNAME`` / ``NOTIFY_SMTP_PASSWORD`` | SMTP AUTH, when the relay wants it | none |
| ``NOTIFY_ACT_AT`` | where to act, in every notice | ``referralnet.referral.v1.ReferralService`` |
| ``NOTIFY_REMINDER_BEFORE_SECONDS`` | remind this long before an unanswered offer's deadline (>= 0) | 3600 |
| ``NOTIFY_DISPATCH_INTERVAL_SECONDS`` | how often the dispatcher looks for due deliveries (> 0) | 1 |
| ``NOTIFY_DISPATCH_BATCH`` | deliveries claimed per dispatch (>= 1) | 50 |
| ``NOTIFY_SEND_TIMEOUT_SECONDS`` | bound on connecting and on each wait for an answer, webhook and SMTP (> 0) | 5 |

Everything else is the runtime's (services/core/runtime/config.py) or the edge's
(services/core/grpcedge/settings.py).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.notify.adapters.transports import SmtpSettings
from services.notify.domain.retry import RetryPolicy

SERVICE = "notify"
PORT = 50054

NOTIFY_MAX_ATTEMPTS = "NOTIFY_MAX_ATTEMPTS"
NOTIFY_RETRY_BASE_SECONDS = "NOTIFY_RETRY_BASE_SECONDS"
NOTIFY_RETRY_CAP_SECONDS = "NOTIFY_RETRY_CAP_SECONDS"
NOTIFY_SMTP_HOST = "NOTIFY_SMTP_HOST"
NOTIFY_SMTP_PORT = "NOTIFY_SMTP_PORT"
NOTIFY_SMTP_FROM = "NOTIFY_SMTP_FROM"
NOTIFY_SMTP_STARTTLS = "NOTIFY_SMTP_STARTTLS"
NOTIFY_SMTP_USERNAME = "NOTIFY_SMTP_USERNAME"
NOTIFY_SMTP_PASSWORD = "NOTIFY_SMTP_PASSWORD"  # noqa: S105  # the key's name, not a password
NOTIFY_ACT_AT = "NOTIFY_ACT_AT"
NOTIFY_REMINDER_BEFORE_SECONDS = "NOTIFY_REMINDER_BEFORE_SECONDS"
NOTIFY_DISPATCH_INTERVAL_SECONDS = "NOTIFY_DISPATCH_INTERVAL_SECONDS"
NOTIFY_DISPATCH_BATCH = "NOTIFY_DISPATCH_BATCH"
NOTIFY_SEND_TIMEOUT_SECONDS = "NOTIFY_SEND_TIMEOUT_SECONDS"

DEFAULT_ACT_AT = "referralnet.referral.v1.ReferralService"
DEFAULT_SMTP_FROM = "notificaciones@referralnet.invalid"
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0", ""})
_MAX_PORT = 65_535


@dataclass(frozen=True)
class NotifySettings:
    """Everything the notify worker reads from its configuration, checked."""

    retry: RetryPolicy
    smtp: SmtpSettings | None  # None: no relay, e-mail endpoints fail permanently ("smtp_not_configured")
    act_at: str
    reminder_before_seconds: float
    dispatch_interval_seconds: float
    dispatch_batch: int
    send_timeout_seconds: float


class _Reader:
    """Reads keys from the nameko config when it has them, else from the environment."""

    def __init__(self, config: Mapping[str, Any] | None, environ: Mapping[str, str]) -> None:
        self._config = config
        self._environ = environ

    def raw(self, key: str) -> object:
        if self._config is not None and self._config.get(key) is not None:
            return self._config[key]
        return self._environ.get(key)

    def text(self, key: str, default: str) -> str:
        value = self.raw(key)
        if value is None or str(value).strip() == "":
            return default
        text = str(value).strip()
        if not text.isprintable():
            msg = f"{key} must be one printable line, not {text!r}"
            raise ValueError(msg)
        return text

    def number(self, key: str, default: float, *, minimum: float, inclusive: bool = True) -> float:
        value = self.raw(key)
        if value is None or value == "":
            return default
        try:
            number = math.nan if isinstance(value, bool) else float(str(value))
        except ValueError:
            number = math.nan
        bound_ok = number >= minimum if inclusive else number > minimum
        if not math.isfinite(number) or not bound_ok:
            msg = f"{key} must be a number {'>=' if inclusive else '>'} {minimum:g}, not {value!r}"
            raise ValueError(msg)
        return number

    def integer(self, key: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        value = self.raw(key)
        if value is None or value == "":
            return default
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit() or int(text) < minimum or (maximum and int(text) > maximum):
            upper = f" and <= {maximum}" if maximum else ""
            msg = f"{key} must be a whole number >= {minimum}{upper}, not {value!r}"
            raise ValueError(msg)
        return int(text)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in _TRUE | _FALSE:
            msg = f"{key} must be true or false, not {value!r}"
            raise ValueError(msg)
        return text in _TRUE


def notify_settings(config: Mapping[str, Any] | None = None, environ: Mapping[str, str] = os.environ) -> NotifySettings:
    """The notify settings from ``config`` (the nameko config), else ``environ``; ValueError naming a bad key."""
    read = _Reader(config, environ)
    send_timeout = read.number(NOTIFY_SEND_TIMEOUT_SECONDS, 5.0, minimum=0, inclusive=False)
    return NotifySettings(
        retry=_retry_policy(read),
        smtp=_smtp_settings(read, send_timeout),
        act_at=read.text(NOTIFY_ACT_AT, DEFAULT_ACT_AT),
        reminder_before_seconds=read.number(NOTIFY_REMINDER_BEFORE_SECONDS, 3600.0, minimum=0),
        dispatch_interval_seconds=read.number(NOTIFY_DISPATCH_INTERVAL_SECONDS, 1.0, minimum=0, inclusive=False),
        dispatch_batch=read.integer(NOTIFY_DISPATCH_BATCH, 50, minimum=1),
        send_timeout_seconds=send_timeout,
    )


def _retry_policy(read: _Reader) -> RetryPolicy:
    base = read.number(NOTIFY_RETRY_BASE_SECONDS, 2.0, minimum=0, inclusive=False)
    cap = read.number(NOTIFY_RETRY_CAP_SECONDS, max(300.0, base), minimum=base)
    return RetryPolicy(max_attempts=read.integer(NOTIFY_MAX_ATTEMPTS, 8, minimum=1), base_seconds=base, cap_seconds=cap)


def _smtp_settings(read: _Reader, timeout_seconds: float) -> SmtpSettings | None:
    host = read.text(NOTIFY_SMTP_HOST, "")
    if not host:
        return None
    sender = read.text(NOTIFY_SMTP_FROM, DEFAULT_SMTP_FROM)
    if "@" not in sender or any(char.isspace() for char in sender):
        msg = f"{NOTIFY_SMTP_FROM} must be one address local@domain, not {sender!r}"
        raise ValueError(msg)
    return SmtpSettings(
        host=host,
        port=read.integer(NOTIFY_SMTP_PORT, 25, minimum=1, maximum=_MAX_PORT),
        sender=sender,
        starttls=read.flag(NOTIFY_SMTP_STARTTLS, default=False),
        username=read.text(NOTIFY_SMTP_USERNAME, ""),
        password=_password(read),
        timeout_seconds=timeout_seconds,
    )


def _password(read: _Reader) -> str:
    value = read.raw(NOTIFY_SMTP_PASSWORD)
    return "" if value is None else str(value)
