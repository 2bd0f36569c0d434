"""How long the call being served may still take: its client's deadline, for bounded waits in application code.

The edge's interceptor binds the call's clock around the handler; application code asks
``call_deadline_remaining()`` (``None`` outside a call or when the client set no deadline) or
``remaining_seconds(cap)`` (the smaller of the two, e.g. "wait for the worker up to the deadline or 3 s").
No gRPC import here: the application layer may use it without knowing about gRPC.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

# gRPC reports "no deadline" as an effectively infinite remaining time; anything beyond a year is none.
_NO_DEADLINE_BEYOND_S = 365 * 24 * 3600.0

TimeRemaining = Callable[[], float | None]

_REMAINING: contextvars.ContextVar[TimeRemaining] = contextvars.ContextVar("referralnet_call_deadline")


def call_deadline_remaining() -> float | None:
    """Seconds left before the current call's deadline (0 once passed); ``None`` without a call or deadline."""
    clock = _REMAINING.get(None)
    if clock is None:
        return None
    remaining = clock()
    if remaining is None or remaining > _NO_DEADLINE_BEYOND_S:
        return None
    return max(remaining, 0.0)


def remaining_seconds(cap: float | None = None) -> float | None:
    """``call_deadline_remaining()``, but at most ``cap`` seconds (``cap`` when the call has no deadline)."""
    remaining = call_deadline_remaining()
    if cap is None:
        return remaining
    return cap if remaining is None else min(cap, remaining)


def bind_deadline(clock: TimeRemaining) -> contextvars.Token[TimeRemaining]:
    """Make ``clock`` (e.g. ``context.time_remaining``) the current call's deadline clock (the interceptor does)."""
    return _REMAINING.set(clock)


def unbind_deadline(token: contextvars.Token[TimeRemaining]) -> None:
    """Undo ``bind_deadline``."""
    _REMAINING.reset(token)
