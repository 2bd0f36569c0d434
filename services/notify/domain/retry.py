"""When to try a failed delivery again: exponential backoff with full jitter, at most ``max_attempts`` tries.

The n-th failure waits ``U(0, min(cap, base * 2^(n-1)))`` seconds (AWS's "full jitter"): many deliveries that
failed together (a receiver was down) spread out instead of hitting it again at the same moment.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass

# 2 ** 64 times any sane base is far beyond any cap: past it the ceiling is the cap, without float overflow.
_MAX_EXPONENT = 64


@dataclass(frozen=True)
class RetryPolicy:
    """How many times a delivery is tried and how long it waits between tries."""

    max_attempts: int = 8
    base_seconds: float = 2.0
    cap_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            msg = f"max_attempts must be >= 1, not {self.max_attempts}"
            raise ValueError(msg)
        if not self.base_seconds > 0:
            msg = f"base_seconds must be > 0, not {self.base_seconds}"
            raise ValueError(msg)
        if not self.cap_seconds >= self.base_seconds:
            msg = f"cap_seconds must be >= base_seconds ({self.base_seconds}), not {self.cap_seconds}"
            raise ValueError(msg)

    def ceiling_seconds(self, failed_attempts: int) -> float:
        """The longest wait after ``failed_attempts`` failures: ``min(cap, base * 2^(failed_attempts - 1))``."""
        if failed_attempts < 1:
            msg = f"failed_attempts must be >= 1, not {failed_attempts}"
            raise ValueError(msg)
        exponent = failed_attempts - 1
        if exponent >= _MAX_EXPONENT:
            return self.cap_seconds
        return min(self.cap_seconds, self.base_seconds * 2.0**exponent)

    def delay_seconds(self, failed_attempts: int, random: Callable[[], float] = _random.random) -> float:
        """Seconds to wait after ``failed_attempts`` (>= 1) failures: ``random() * ceiling`` (full jitter).

        ``random`` returns a float in [0, 1); tests pass their own.
        """
        return random() * self.ceiling_seconds(failed_attempts)

    def exhausted(self, failed_attempts: int) -> bool:
        """True when ``failed_attempts`` failures used every try: the delivery fails for good."""
        return failed_attempts >= self.max_attempts
