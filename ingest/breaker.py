"""Per-source circuit breaker: back off a source that keeps failing.

After ``threshold`` consecutive failed passes the source is *open* for a
cool-down that doubles on every further failure (capped); when it ends one
trial pass is allowed (*half-open*); a success closes it.

>>> t = [0.0]
>>> b = CircuitBreaker(threshold=2, cooldown_s=10.0, max_cooldown_s=60.0, clock=lambda: t[0])
>>> b.record_failure(); b.allow()
True
>>> b.record_failure(); b.allow(), b.state
(False, 'open')
>>> t[0] = 11; b.allow(), b.state
(True, 'half_open')
>>> b.record_failure(); b.retry_in_s()
20.0
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """Consecutive-failure breaker with exponential cool-down."""

    def __init__(
        self,
        *,
        threshold: int,
        cooldown_s: float,
        max_cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._max_cooldown_s = max_cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self.failures = 0
        self._open_until: float | None = None
        self._opened = 0

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open``."""
        with self._lock:
            if self._open_until is None:
                return "closed"
            return "open" if self._clock() < self._open_until else "half_open"

    def allow(self) -> bool:
        """True when a pass may run now."""
        return self.state != "open"

    def retry_in_s(self) -> float:
        """Seconds until the next trial pass (0 when not open)."""
        with self._lock:
            if self._open_until is None:
                return 0.0
            return max(0.0, self._open_until - self._clock())

    def record_success(self) -> None:
        """A pass succeeded: close."""
        with self._lock:
            self.failures = 0
            self._opened = 0
            self._open_until = None

    def record_failure(self) -> None:
        """A pass failed: open once the threshold is reached, longer each time."""
        with self._lock:
            self.failures += 1
            if self.failures >= self._threshold:
                delay = min(self._max_cooldown_s, self._cooldown_s * 2**self._opened)
                self._opened += 1
                self._open_until = self._clock() + delay
