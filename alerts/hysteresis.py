"""Fire/resolve decisions with hysteresis, per series, in event time.

A condition (score >= threshold) must hold for ``hold_buckets`` consecutive
final buckets to fire and be absent for ``clear_buckets`` consecutive buckets
to resolve. Time is counted in buckets, never on a wall clock, so a replay
decides exactly as the live stream did.

>>> import numpy as np
>>> h = Hysteresis(threshold=0.5, hold_buckets=2, clear_buckets=2)
>>> [int(h.update(np.array([s])).active[0]) for s in (0.9, 0.9, 0.1, 0.9, 0.1, 0.1)]
[0, 1, 1, 1, 1, 0]
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from alerts.baseline import grow, pack, unpack

__all__ = ["Hysteresis"]


class Hysteresis:
    """Per-series firing state with hold and clear durations (in buckets)."""

    def __init__(self, *, threshold: float, hold_buckets: int, clear_buckets: int) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold {threshold} must be in (0, 1]")
        self.threshold = threshold
        self.hold_buckets = max(1, hold_buckets)
        self.clear_buckets = max(1, clear_buckets)
        self.active = np.zeros(0, dtype=bool)
        self.above = np.zeros(0, dtype=np.int64)  # consecutive buckets at/over threshold
        self.below = np.zeros(0, dtype=np.int64)  # consecutive buckets under it
        self.fired = np.zeros(0, dtype=bool)  # became active on the last update
        self.resolved = np.zeros(0, dtype=bool)  # became inactive on the last update

    def update(self, score: NDArray[np.float64], mask: NDArray[np.bool_] | None = None) -> Self:
        """Consume one bucket's scores; ``mask`` false forces the condition off there."""
        n = score.shape[0]
        self.active, self.above, self.below = (
            grow(self.active, n, False),
            grow(self.above, n),
            grow(self.below, n),
        )
        cond = score >= self.threshold
        if mask is not None:
            cond &= mask
        if not cond.any() and not self.active.any():
            # The common quiet bucket: nothing over the bar and nothing firing, so only
            # the quiet counters move (the general update below gives the same arrays).
            self.above = np.zeros(n, dtype=np.int64)
            self.below = self.below + 1
            self.fired, self.resolved = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
            self.active = np.zeros(n, dtype=bool)
            return self
        self.above = np.where(cond, self.above + 1, 0)
        self.below = np.where(cond, 0, self.below + 1)
        was = self.active
        now = np.where(was, self.below < self.clear_buckets, self.above >= self.hold_buckets)
        self.fired, self.resolved, self.active = now & ~was, was & ~now, now
        return self

    def get(self) -> NDArray[np.bool_]:
        """Whether each series is firing."""
        return self.active

    def state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints."""
        return {
            "active": pack(self.active),
            "above": pack(self.above),
            "below": pack(self.below),
        }

    def load(self, state: dict[str, Any]) -> Self:
        """Restore from :meth:`state`."""
        self.active = unpack(state["active"])
        self.above = unpack(state["above"])
        self.below = unpack(state["below"])
        self.fired = np.zeros_like(self.active)
        self.resolved = np.zeros_like(self.active)
        return self
