"""Per-series streaming baselines: EWMA mean/variance, seasonal factors, window rings.

The building blocks of :mod:`alerts.detectors`, vectorised across series (one
array entry per series; arrays grow as new series appear).

>>> import numpy as np
>>> b = EwmaBaseline(alpha_from_half_life(1.0))
>>> for x in (1.0, 3.0):
...     _ = b.update(np.array([x]))
>>> mean, var = b.get()
>>> round(float(mean[0]), 4), round(float(var[0]), 4)  # weights 0.5 and 1
(2.3333, 0.8889)
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, replace
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "EwmaBaseline",
    "SeasonalProfile",
    "SeriesFrame",
    "WindowRing",
    "alpha_from_half_life",
    "grow",
    "nan0",
    "pack",
    "unpack",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def alpha_from_half_life(half_life: float) -> float:
    """EWMA smoothing factor whose weights halve every ``half_life`` steps.

    >>> round(alpha_from_half_life(1.0), 3)
    0.5
    """
    return 1.0 - math.exp(-math.log(2.0) / half_life)


@dataclass(frozen=True)
class SeriesFrame:
    """One final bucket for ``n`` series: document and negative counts per series.

    ``prior_row`` names the row of the global ("all") series whose negative
    share serves as the baseline for series too young to have their own.
    ``value`` is a real-valued statistic per series (e.g. the mean sentiment
    score; NaN where the bucket has none), read by real-valued detectors; None
    means they read ``negative``.
    """

    start_s: int
    total: FloatArray
    negative: FloatArray
    prior_row: int | None = None
    value: FloatArray | None = None

    def with_value(self, value: Any) -> SeriesFrame:
        """This frame with ``value`` set (converted to a float array)."""
        return replace(self, value=np.asarray(value, dtype=np.float64))

    @property
    def values(self) -> FloatArray:
        """``value`` if given, else ``negative``."""
        return self.negative if self.value is None else self.value

    @classmethod
    def of(
        cls, *, start_s: int, total: Any, negative: Any, prior_row: int | None = None
    ) -> SeriesFrame:
        """Build a frame from sequences (converted to float arrays)."""
        return cls(
            start_s,
            np.asarray(total, dtype=np.float64),
            np.asarray(negative, dtype=np.float64),
            prior_row,
        )

    @property
    def n(self) -> int:
        """Number of series in the frame."""
        return int(self.total.shape[0])


def pack(a: NDArray[Any]) -> dict[str, Any]:
    """A numpy array as a compact JSON-able dict (raw bytes, base64) for checkpoints.

    >>> b = unpack(pack(np.array([[1.5, 2.0]])))
    >>> b.tolist(), b.dtype.name
    ([[1.5, 2.0]], 'float64')
    """
    a = np.ascontiguousarray(a)
    return {
        "dtype": a.dtype.str,
        "shape": list(a.shape),
        "b64": base64.b64encode(a.tobytes()).decode("ascii"),
    }


def unpack(state: dict[str, Any]) -> NDArray[Any]:
    """The array :func:`pack` stored (a writable copy)."""
    raw = base64.b64decode(state["b64"])
    return np.frombuffer(raw, dtype=np.dtype(state["dtype"])).reshape(state["shape"]).copy()


def nan0(x: FloatArray) -> FloatArray:
    """``np.nan_to_num(x)`` for arrays without infinities (NaN -> 0), at a fraction of the cost.

    >>> nan0(np.array([1.5, np.nan])).tolist()
    [1.5, 0.0]
    """
    return np.where(np.isnan(x), 0.0, x)


def grow(a: NDArray[Any], n: int, fill: float = 0.0) -> NDArray[Any]:
    """``a`` extended along its last axis to ``n`` entries with ``fill``."""
    have = a.shape[-1]
    if have >= n:
        return a
    pad = np.full((*a.shape[:-1], n - have), fill, dtype=a.dtype)
    return np.concatenate([a, pad], axis=-1)


class EwmaBaseline:
    """Exponentially weighted mean and variance per series (pandas ``adjust=True``).

    Matches ``Series.ewm(alpha=a, adjust=True).mean()`` and ``.var(bias=True)``.
    With ``clip_sigma`` an observation is winsorised at ``mean + clip_sigma * sd``
    (sd at least ``sqrt(mean)``, the Poisson floor) before it enters, so one
    outlier cannot drag the baseline up; the first ``min_clip_obs`` observations
    are never clipped.
    """

    def __init__(self, alpha: float, *, clip_sigma: float | None = None, min_clip_obs: int = 10):
        self.alpha = alpha
        self.clip_sigma = clip_sigma
        self.min_clip_obs = min_clip_obs
        self.w = np.zeros(0)  # sum of weights
        self.s1 = np.zeros(0)  # weighted sum of x
        self.s2 = np.zeros(0)  # weighted sum of x^2
        self.n = np.zeros(0, dtype=np.int64)

    def update(self, x: FloatArray, mask: NDArray[np.bool_] | None = None) -> Self:
        """Add one observation per series (only where ``mask`` is true, if given)."""
        self.resize(x.shape[0])
        if self.clip_sigma is not None:
            mean0, var0 = self.get0()
            sd = np.sqrt(np.maximum(var0, mean0))
            cap = mean0 + self.clip_sigma * sd + 1.0
            x = np.where(self.n >= self.min_clip_obs, np.minimum(x, cap), x)
        decay = 1.0 - self.alpha
        m = np.ones(x.shape[0], dtype=bool) if mask is None else mask
        self.w = np.where(m, decay * self.w + 1.0, self.w)
        self.s1 = np.where(m, decay * self.s1 + x, self.s1)
        self.s2 = np.where(m, decay * self.s2 + x * x, self.s2)
        self.n = self.n + m
        return self

    def get(self) -> tuple[FloatArray, FloatArray]:
        """(mean, variance) per series; NaN where nothing was observed."""
        # Divide only where observed (no errstate needed); NaN stays NaN elsewhere.
        seen = self.w > 0
        mean = np.divide(self.s1, self.w, out=np.full(self.w.shape, np.nan), where=seen)
        var = np.divide(self.s2, self.w, out=np.full(self.w.shape, np.nan), where=seen)
        var -= mean * mean
        return mean, np.maximum(var, 0.0, out=var)

    def get0(self) -> tuple[FloatArray, FloatArray]:
        """:meth:`get` with 0 instead of NaN where nothing was observed (``nan_to_num``).

        >>> b = EwmaBaseline(0.5).update(np.array([2.0, 4.0]), np.array([True, False]))
        >>> [a.tolist() for a in b.get0()]
        [[2.0, 0.0], [0.0, 0.0]]
        """
        seen = self.w > 0
        mean = np.divide(self.s1, self.w, out=np.zeros(self.w.shape), where=seen)
        var = np.divide(self.s2, self.w, out=np.zeros(self.w.shape), where=seen)
        var -= mean * mean
        return mean, np.maximum(var, 0.0, out=var)

    def resize(self, n: int) -> None:
        """Make room for ``n`` series (new series start empty)."""
        self.w, self.s1, self.s2 = (grow(a, n) for a in (self.w, self.s1, self.s2))
        self.n = grow(self.n, n)

    def state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints."""
        return {k: pack(getattr(self, k)) for k in ("w", "s1", "s2", "n")}

    def load(self, state: dict[str, Any]) -> Self:
        """Restore from :meth:`state`."""
        for k in ("w", "s1", "s2", "n"):
            setattr(self, k, unpack(state[k]))
        return self


class SeasonalProfile:
    """Multiplicative seasonal factors per series (hour of day or day of week).

    Each slot keeps an EWMA (pandas ``adjust=True``) of the per-bucket count;
    the factor of a slot is its mean over the mean of all slots. Factors are 1
    until every slot has seen ``min_obs_per_slot`` buckets, so a young series
    is never "seasonally adjusted" from noise. Factors are clipped to [0.2, 5].
    ``version`` changes whenever the factors may have changed.
    """

    def __init__(
        self,
        kind: Literal["hour", "dow"],
        *,
        alpha: float,
        min_obs_per_slot: int,
        bucket_s: int,
    ) -> None:
        self.kind = kind
        self.slots = 24 if kind == "hour" else 7
        self.bucket_s = bucket_s
        self.alpha = alpha
        self.min_obs_per_slot = min_obs_per_slot
        self.w = np.zeros((self.slots, 0))
        self.s1 = np.zeros((self.slots, 0))
        self.n = np.zeros((self.slots, 0), dtype=np.int64)
        self.version = 0
        self._derive()

    def _derive(self) -> None:
        # Caches kept in step with w/s1/n (factor() runs several times per update):
        # the per-slot means and, per series, how many slots still lack observations.
        with np.errstate(invalid="ignore", divide="ignore"):
            self._means = np.where(self.w > 0, self.s1 / self.w, 0.0)
        self._short = (self.n < self.min_obs_per_slot).sum(axis=0)
        self._overall: FloatArray | None = None
        self.version += 1

    def slot(self, start_s: int) -> int:
        """Slot of the bucket starting at ``start_s`` (UTC)."""
        if self.kind == "hour":
            return (start_s // 3600) % 24
        return (start_s // 86400 + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0

    def resize(self, n: int) -> None:
        """Make room for ``n`` series."""
        if self.w.shape[1] >= n:
            return
        self.w, self.s1, self.n = grow(self.w, n), grow(self.s1, n), grow(self.n, n)
        self._means = grow(self._means, n)
        self._short = grow(self._short, n, self.slots if self.min_obs_per_slot > 0 else 0)
        self._overall = None
        self.version += 1

    def update(self, start_s: int, x: FloatArray) -> Self:
        """Add the counts of the bucket starting at ``start_s``."""
        self.resize(x.shape[0])
        k, decay = self.slot(start_s), 1.0 - self.alpha
        self.w[k] = decay * self.w[k] + 1.0
        self.s1[k] = decay * self.s1[k] + x
        self.n[k] += 1
        self._short -= self.n[k] == self.min_obs_per_slot
        w = self.w[k]
        self._means[k] = np.divide(self.s1[k], w, out=np.zeros(w.shape), where=w > 0)
        self._overall = None
        self.version += 1
        return self

    def factor(self, start_s: int, n: int) -> FloatArray:
        """Seasonal factor per series for the bucket starting at ``start_s``."""
        self.resize(n)
        ready = self._short == 0
        if not ready.any():
            return np.ones(n)
        if self._overall is None:
            self._overall = self._means.mean(axis=0)
        overall = self._overall
        pos = overall > 0
        # A factor only where the overall mean is positive (1 elsewhere), clipped to [0.2, 5].
        f = np.divide(self._means[self.slot(start_s)], overall, out=np.ones(pos.shape), where=pos)
        f = np.minimum(np.maximum(f, 0.2), 5.0)
        return np.where(ready & pos, f, 1.0)

    def state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints."""
        return {"w": pack(self.w), "s1": pack(self.s1), "n": pack(self.n)}

    def load(self, state: dict[str, Any]) -> Self:
        """Restore from :meth:`state`."""
        self.w, self.s1, self.n = unpack(state["w"]), unpack(state["s1"]), unpack(state["n"])
        self._derive()
        return self


class WindowRing:
    """The last ``w`` buckets of per-series totals and negatives, for window sums.

    Each slot also carries a per-series *suspect* flag: a detector flags every
    bucket of a window it found anomalous, so those buckets never enter its
    baseline when they leave the window (a burst must not raise its own bar).
    """

    def __init__(self, w: int) -> None:
        self.w = w
        self.total = np.zeros((w, 0))
        self.negative = np.zeros((w, 0))
        self.suspect = np.zeros((w, 0), dtype=bool)
        self.starts: list[int] = []  # bucket starts in the window, oldest first
        self._count = 0  # buckets pushed so far

    def push(self, frame: SeriesFrame) -> tuple[int, FloatArray, FloatArray, BoolArray] | None:
        """Add ``frame``; return ``(start, total, negative, suspect)`` of the bucket that left."""
        n = frame.n
        self.total, self.negative = grow(self.total, n), grow(self.negative, n)
        self.suspect = grow(self.suspect, n, False)
        pos = self._count % self.w
        left = None
        if self._count >= self.w:
            left = (
                self.starts[0],
                self.total[pos].copy(),
                self.negative[pos].copy(),
                self.suspect[pos].copy(),
            )
        self.total[pos], self.negative[pos], self.suspect[pos] = frame.total, frame.negative, False
        self.starts = [*self.starts, frame.start_s][-self.w :]
        self._count += 1
        return left

    def flag(self, rows: BoolArray) -> None:
        """Mark every bucket now in the window as suspect for ``rows``."""
        if rows.any():
            self.suspect[:, rows] = True

    def sums(self) -> tuple[FloatArray, FloatArray]:
        """Window sums (total, negative) per series."""
        return self.total.sum(axis=0), self.negative.sum(axis=0)

    def state(self) -> dict[str, Any]:
        """JSON-able state; rows oldest first."""
        k = len(self.starts)
        order = [(self._count - k + i) % self.w for i in range(k)]
        return {
            "starts": self.starts,
            "total": pack(self.total[order]),
            "negative": pack(self.negative[order]),
            "suspect": pack(self.suspect[order]),
        }

    def load(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state`."""
        self.total, self.negative = np.zeros((self.w, 0)), np.zeros((self.w, 0))
        self.suspect = np.zeros((self.w, 0), dtype=bool)
        self.starts, self._count = [], 0
        for start, total, neg in zip(
            state["starts"], unpack(state["total"]), unpack(state["negative"]), strict=True
        ):
            self.push(SeriesFrame.of(start_s=start, total=total, negative=neg))
        k = len(self.starts)
        for i, flags in enumerate(unpack(state["suspect"])):
            self.suspect[(self._count - k + i) % self.w] = flags
