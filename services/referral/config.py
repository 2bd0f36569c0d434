"""The referral service's own settings, read by the edge (environment) and the worker (nameko config).

| key | what | default |
|---|---|---|
| ``OFFER_DEADLINES`` | per service type, how long an offer waits (``shelter=2h,psychosocial=30s``) | ADR 11 |
| ``OFFER_EXPIRY_INTERVAL_SECONDS`` | how often the worker's timer expires offers past their deadline | 5 |

Everything else is the runtime's (services/core/runtime/config.py) or the edge's
(services/core/grpcedge/settings.py).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from services.referral.domain.deadlines import OfferDeadlines, parse_offer_deadlines

OFFER_DEADLINES = "OFFER_DEADLINES"
OFFER_EXPIRY_INTERVAL_SECONDS = "OFFER_EXPIRY_INTERVAL_SECONDS"
DEFAULT_EXPIRY_INTERVAL_SECONDS = 5.0
SERVICE = "referral"
PORT = 50052


def _setting(key: str, config: Mapping[str, Any] | None, environ: Mapping[str, str]) -> object:
    """``key`` from the nameko config when it has it, else from the environment (None when neither has)."""
    if config is not None and config.get(key) is not None:
        return config[key]
    return environ.get(key)


def offer_deadlines(config: Mapping[str, Any] | None = None, environ: Mapping[str, str] = os.environ) -> OfferDeadlines:
    """``OFFER_DEADLINES`` from ``config`` (the nameko config), else the environment, over the defaults."""
    value = _setting(OFFER_DEADLINES, config, environ)
    return parse_offer_deadlines(None if value is None else str(value))


def expiry_interval_seconds(config: Mapping[str, Any] | None = None, environ: Mapping[str, str] = os.environ) -> float:
    """``OFFER_EXPIRY_INTERVAL_SECONDS`` from ``config``, else the environment; ValueError if not > 0."""
    value = _setting(OFFER_EXPIRY_INTERVAL_SECONDS, config, environ)
    if value is None or value == "":
        return DEFAULT_EXPIRY_INTERVAL_SECONDS
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        msg = f"{OFFER_EXPIRY_INTERVAL_SECONDS} must be a number of seconds > 0, not {value!r}"
        raise ValueError(msg)
    return seconds
