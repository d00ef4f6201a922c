"""Streaming detectors over per-bucket series counts, vectorised across series.

Every detector follows one tiny API (river style): ``update(frame)`` consumes one
*final* bucket for all series at once and returns ``self``; ``score()`` reads a
score in [0, 1] per series (NaN where the detector has no opinion yet, e.g. a
series too young for a baseline); ``get()`` reads the detector's statistic.
Detectors never read a clock: time comes from the frames, so a replay at any
speed, a backtest and the live service make the same decisions.

Baselines are *lagged*: a windowed test at bucket ``t`` compares the window
``(t-w, t]`` with a baseline built from buckets up to ``t-w`` only, so a burst
never raises its own baseline.

>>> import numpy as np
>>> det = CountSpike(window_buckets=1, half_life_buckets=10, min_history_buckets=3)
>>> for x in [1, 0, 2, 1, 1]:
...     _ = det.update(SeriesFrame.of(start_s=0, total=[x + 5], negative=[x]))
>>> float(det.score()[0]) < 0.2
True
>>> _ = det.update(SeriesFrame.of(start_s=0, total=[20], negative=[15]))
>>> float(det.score()[0])
1.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import NDArray

from alerts.baseline import (
    EwmaBaseline,
    SeasonalProfile,
    SeriesFrame,
    WindowRing,
    alpha_from_half_life,
    grow,
    nan0,
    pack,
    unpack,
)
from alerts.robust import RobustLevel
from alerts.stats import betabinom_sf, binom_sf, negbin_sf, poisson_sf, tail_score
from alerts.surge import CountSurge

__all__ = [
    "Combined",
    "CountSpike",
    "CountSurge",
    "Cusum",
    "Detector",
    "RobustLevel",
    "SeriesFrame",
    "ShareSpike",
]

FloatArray = NDArray[np.float64]


def _flag(ring: WindowRing, score: FloatArray, exclude_score: float | None) -> None:
    if exclude_score is not None:
        ring.flag(nan0(score) >= exclude_score)


@dataclass
class CountSpike:
    """Upper-tail test of the windowed negative count against its baseline.

    Expected count = lagged EWMA mean per bucket x window length (x seasonal
    factors once enough history exists); p = P(X >= observed) under a Poisson,
    or a negative binomial when ``overdispersed`` and the baseline variance
    exceeds its mean. Score = :func:`~alerts.stats.tail_score` of p. NaN until
    the series has ``min_history_buckets`` of baseline.
    """

    window_buckets: int = 5
    half_life_buckets: float = 60.0
    min_history_buckets: int = 30
    min_rate_per_bucket: float = 0.02
    overdispersed: bool = True
    full_at_p: float = 1e-8
    clip_sigma: float | None = 4.0
    seasonal_min_days: float | None = 2.0
    bucket_s: int = 60
    #: Windows scoring at least this are kept out of the baseline (None: learn everything).
    exclude_score: float | None = 0.3
    #: ... but never more than this many buckets in a row, so a lasting new level is learnt.
    max_excluded_buckets: int = 360
    _ring: WindowRing = field(init=False, repr=False)
    _base: EwmaBaseline = field(init=False, repr=False)
    _seasons: list[SeasonalProfile] = field(init=False, repr=False)
    _p: FloatArray = field(init=False, repr=False)
    _expected: FloatArray = field(init=False, repr=False)
    _observed: FloatArray = field(init=False, repr=False)
    _score: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ring = WindowRing(self.window_buckets)
        self._base = EwmaBaseline(
            alpha_from_half_life(self.half_life_buckets), clip_sigma=self.clip_sigma
        )
        self._seasons = []
        if self.seasonal_min_days is not None:
            per_day = 86400 // self.bucket_s
            slow = alpha_from_half_life(per_day * 7 / 24)  # about a week of each hour
            self._seasons = [
                SeasonalProfile(
                    "hour",
                    alpha=slow,
                    min_obs_per_slot=int(self.seasonal_min_days * per_day / 24),
                    bucket_s=self.bucket_s,
                ),
                SeasonalProfile(
                    "dow",
                    alpha=alpha_from_half_life(per_day * 2),
                    min_obs_per_slot=int(2 * per_day),
                    bucket_s=self.bucket_s,
                ),
            ]
        self._p = self._expected = self._observed = self._score = np.zeros(0)
        self._factor_cache: tuple[tuple[Any, ...] | None, FloatArray] = (None, np.zeros(0))
        self._skipped = np.zeros(0, dtype=np.int64)

    def _factor(self, start_s: int, n: int) -> FloatArray:
        # The window's oldest bucket usually shares its hour with the previous bucket,
        # whose factors were computed against the same profile versions: reuse them.
        key = (n, *((s.version, s.slot(start_s)) for s in self._seasons))
        if self._factor_cache[0] == key:
            return self._factor_cache[1]
        f = np.ones(n)
        for s in self._seasons:
            f = f * s.factor(start_s, n)
        self._factor_cache = (key, f)
        return f

    def update(self, frame: SeriesFrame) -> Self:
        """Consume one final bucket."""
        left = self._ring.push(frame)
        self._base.resize(frame.n)
        self._skipped = grow(self._skipped, frame.n)
        if left is not None:
            start, _, neg, suspect = left
            self._skipped = np.where(suspect, self._skipped + 1, 0)
            learn = ~suspect | (self._skipped > self.max_excluded_buckets)
            self._base.update(neg / self._factor(start, frame.n), learn)
            for s in self._seasons:
                s.update(start, neg)
        _, self._observed = self._ring.sums()
        mean, var = self._base.get0()
        f = self._factor(frame.start_s, frame.n)
        rate = np.maximum(mean, self.min_rate_per_bucket) * f
        self._expected = rate * self.window_buckets
        window_var = np.maximum(var * f * f, rate) * self.window_buckets
        if self.overdispersed:
            p = negbin_sf(self._observed, self._expected, window_var)
        else:
            p = poisson_sf(self._observed, self._expected)
        young = self._base.n < self.min_history_buckets
        self._p = np.where(young, np.nan, p)
        self._score = tail_score(self._p, full_at_p=self.full_at_p)
        _flag(self._ring, self._score, self.exclude_score)
        return self

    def flag(self, rows: NDArray[np.bool_]) -> None:
        """Keep the buckets now in the window out of the baseline for ``rows``."""
        self._ring.flag(rows)

    def score(self) -> FloatArray:
        """Score in [0, 1] per series; NaN for series without enough history."""
        return self._score

    def sustained(self) -> FloatArray:
        """The score the hysteresis follows: the score itself."""
        return self._score

    def get(self) -> dict[str, FloatArray]:
        """The statistic: observed window count, expected count and p-value."""
        return {"observed": self._observed, "expected": self._expected, "p": self._p}

    def state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints."""
        return {
            "ring": self._ring.state(),
            "base": self._base.state(),
            "seasons": [s.state() for s in self._seasons],
            "skipped": pack(self._skipped),
        }

    def load(self, state: dict[str, Any]) -> Self:
        """Restore from :meth:`state`."""
        self._ring.load(state["ring"])
        self._base.load(state["base"])
        for s, st in zip(self._seasons, state["seasons"], strict=True):
            s.load(st)
        self._skipped = unpack(state["skipped"])
        return self


@dataclass
class ShareSpike:
    """Binomial upper-tail test of the windowed negative share against its baseline.

    Baseline share = lagged EWMA of negatives over lagged EWMA of totals (a
    volume-weighted share), plus ``min_baseline_docs`` pseudo-documents at the
    global prior share (the frame's ``prior_row``, the "all" series, itself
    under a Jeffreys prior) so a burst on a brand-new topic can still fire. The
    tail is beta-binomial: the baseline share is only known from its documents,
    so a young series (or a young "all" series: the first minutes of a new
    deployment) whose baseline rests on a few documents needs a much bigger
    window share to be surprised; a mature one tests as a binomial. No opinion
    (NaN) until the series, or the prior, has ``min_history_buckets`` of
    baseline and ``min_baseline_docs`` documents. Below ``min_volume`` documents
    in the window the score is 0: a 2-of-2 negative window proves nothing.
    """

    window_buckets: int = 5
    half_life_buckets: float = 60.0
    min_history_buckets: int = 30
    min_baseline_docs: float = 20.0
    min_volume: int = 8
    full_at_p: float = 1e-8
    exclude_score: float | None = 0.3
    max_excluded_buckets: int = 360
    _ring: WindowRing = field(init=False, repr=False)
    _neg: EwmaBaseline = field(init=False, repr=False)
    _tot: EwmaBaseline = field(init=False, repr=False)
    _p: FloatArray = field(init=False, repr=False)
    _share: FloatArray = field(init=False, repr=False)
    _baseline: FloatArray = field(init=False, repr=False)
    _volume: FloatArray = field(init=False, repr=False)
    _score: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        alpha = alpha_from_half_life(self.half_life_buckets)
        self._ring = WindowRing(self.window_buckets)
        self._neg, self._tot = EwmaBaseline(alpha), EwmaBaseline(alpha)
        self._p = self._share = self._baseline = self._volume = self._score = np.zeros(0)
        self._skipped = np.zeros(0, dtype=np.int64)

    def baseline_beta(self, prior_row: int | None) -> tuple[FloatArray, FloatArray]:
        """``Beta(a, b)`` of the baseline share per series (NaN where nothing is known).

        ``a``/``b``: the series' own baseline negative/other documents (s1 of the
        lagged EWMAs, the decayed document counts) plus ``min_baseline_docs``
        pseudo-documents at the prior share; the prior row gets a Jeffreys prior.
        """
        neg, tot = self._neg.s1, self._tot.s1
        other = np.maximum(tot - neg, 0.0)
        own_ok = (self._tot.n >= self.min_history_buckets) & (tot >= self.min_baseline_docs)
        pa = pb = np.full(tot.shape, 0.5)
        known = own_ok
        if prior_row is not None and prior_row < tot.shape[0] and own_ok[prior_row]:
            share = (neg[prior_row] + 0.5) / (tot[prior_row] + 1.0)
            weight = np.full(tot.shape, self.min_baseline_docs)
            weight[prior_row] = 1.0  # the prior row itself: Jeffreys only
            pa, pb = weight * share, weight * (1.0 - share)
            known = np.ones(tot.shape, dtype=bool)
        a = np.where(known, neg + pa, np.nan)
        return a, np.where(known, other + pb, np.nan)

    def baseline_share(self, prior_row: int | None) -> FloatArray:
        """Baseline share per series (the mean of :meth:`baseline_beta`)."""
        a, b = self.baseline_beta(prior_row)
        return a / (a + b)

    def update(self, frame: SeriesFrame) -> Self:
        """Consume one final bucket."""
        left = self._ring.push(frame)
        self._neg.resize(frame.n)
        self._tot.resize(frame.n)
        self._skipped = grow(self._skipped, frame.n)
        if left is not None:
            _, tot, neg, suspect = left
            self._skipped = np.where(suspect, self._skipped + 1, 0)
            learn = ~suspect | (self._skipped > self.max_excluded_buckets)
            self._tot.update(tot, learn)
            self._neg.update(neg, learn)
        self._volume, negative = self._ring.sums()
        vol = self._volume
        self._share = np.divide(negative, vol, out=np.full(vol.shape, np.nan), where=vol > 0)
        a, b = self.baseline_beta(frame.prior_row)
        self._baseline = a / (a + b)
        unknown = np.isnan(self._baseline)
        a, b = np.where(unknown, 1.0, a), np.where(unknown, 1.0, b)
        p = binom_sf(negative, self._volume, a / (a + b))
        p = np.where(self._volume < self.min_volume, 1.0, p)
        # The beta-binomial tail is heavier than the binomial one: it only matters (and
        # only runs) where the binomial is already small.
        tight = p < 0.01
        p = np.where(tight, betabinom_sf(np.where(tight, negative, 0.0), vol, a, b), p)
        self._p = np.where(unknown, np.nan, p)
        self._score = tail_score(self._p, full_at_p=self.full_at_p)
        _flag(self._ring, self._score, self.exclude_score)
        return self

    def flag(self, rows: NDArray[np.bool_]) -> None:
        """Keep the buckets now in the window out of the baseline for ``rows``."""
        self._ring.flag(rows)

    def score(self) -> FloatArray:
        """Score in [0, 1] per series; NaN where neither own nor prior baseline exists."""
        return self._score

    def sustained(self) -> FloatArray:
        """The score the hysteresis follows: the score itself."""
        return self._score

    def get(self) -> dict[str, FloatArray]:
        """The statistic: window share, baseline share, window volume and p-value."""
        return {
            "observed": self._share,
            "expected": self._baseline,
            "volume": self._volume,
            "p": self._p,
        }

    def state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints."""
        return {
            "ring": self._ring.state(),
            "neg": self._neg.state(),
            "tot": self._tot.state(),
            "skipped": pack(self._skipped),
        }

    def load(self, state: dict[str, Any]) -> Self:
        """Restore from :meth:`state`."""
        self._ring.load(state["ring"])
        self._neg.load(state["neg"])
        self._tot.load(state["tot"])
        self._skipped = unpack(state["skipped"])
        return self


@dataclass
class Cusum:
    """One-sided upper CUSUM of standardised negative counts, for sustained shifts.

    ``z_t = (x_t - mu) / sd`` with ``mu``, ``sd`` from a slow EWMA lagged one
    bucket (sd at least ``sqrt(mu)``, the Poisson floor, and ``min_sd``);
    ``S_t = max(0, S_{t-1} + z_t - drift)``; score ``min(1, S_t / threshold)``.
    NaN until ``min_history_buckets`` of baseline exist.
    """

    drift: float = 0.5
    threshold: float = 8.0
    half_life_buckets: float = 240.0
    min_history_buckets: int = 30
    min_sd: float = 0.5
    _base: EwmaBaseline = field(init=False, repr=False)
    _s: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._base = EwmaBaseline(alpha_from_half_life(self.half_life_buckets))
        self._s = np.zeros(0)

    def update(self, frame: SeriesFrame) -> Self:
        """Consume one final bucket."""
        self._base.resize(frame.n)
        x = frame.negative
        mean, var = self._base.get0()
        sd = np.maximum(np.sqrt(np.maximum(var, mean)), self.min_sd)
        z = (x - mean) / sd
        ready = self._base.n >= self.min_history_buckets
        self._s = np.where(ready, np.maximum(0.0, grow(self._s, frame.n) + z - self.drift), 0.0)
        # A shift under way stays out of the baseline, or the CUSUM would chase it.
        self._base.update(x, ~ready | (self._s < self.threshold))
        return self

    def flag(self, rows: NDArray[np.bool_]) -> None:
        """No-op: CUSUM keeps alarming buckets out of its baseline by itself."""

    def score(self) -> FloatArray:
        """Score in [0, 1] per series; NaN for series without enough history."""
        ready = self._base.n >= self.min_history_buckets
        return np.where(ready, np.minimum(self._s / self.threshold, 1.0), np.nan)

    def sustained(self) -> FloatArray:
        """The score the hysteresis follows: the score itself."""
        return self.score()

    def get(self) -> FloatArray:
        """The CUSUM statistic ``S_t`` per series."""
        return self._s

    def state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints."""
        return {"base": self._base.state(), "s": pack(self._s)}

    def load(self, state: dict[str, Any]) -> Self:
        """Restore from :meth:`state`."""
        self._base.load(state["base"])
        self._s = unpack(state["s"])
        return self


Detector = CountSurge | RobustLevel | CountSpike | ShareSpike | Cusum


@dataclass
class Combined:
    """Several detectors fed the same frames; one combined score in [0, 1].

    ``mode="all"`` takes the minimum over the detectors that have an opinion
    (every available test must be surprised), ``"any"`` the maximum. A series
    where no detector has an opinion scores 0.
    """

    detectors: dict[str, Detector]
    mode: Literal["all", "any"] = "all"

    #: A window that any detector's sustained score (what the hysteresis follows) puts
    #: this high stays out of every detector's baseline: an onset score fades while its
    #: burst lasts, and would let the rest of the burst into the other baselines.
    exclude_score: float | None = 0.3
    _score: FloatArray | None = field(default=None, init=False, repr=False, compare=False)

    def update(self, frame: SeriesFrame) -> Self:
        """Feed one final bucket to every detector."""
        for d in self.detectors.values():
            d.update(frame)
        self._score = None  # scores only change here: score() computes them once
        if self.exclude_score is not None:
            stack = nan0(np.stack([d.sustained() for d in self.detectors.values()]))
            rows = stack.max(axis=0) >= self.exclude_score
            for d in self.detectors.values():
                d.flag(rows)
        return self

    def scores(self) -> dict[str, FloatArray]:
        """Each detector's score."""
        return {name: d.score() for name, d in self.detectors.items()}

    def score(self) -> FloatArray:
        """The combined score per series."""
        if self._score is None:
            self._score = self._combine(self.scores())
        return self._score

    def sustained(self) -> FloatArray:
        """The combined sustained score (what the hysteresis follows)."""
        return self._combine({name: d.sustained() for name, d in self.detectors.items()})

    def _combine(self, scores: dict[str, FloatArray]) -> FloatArray:
        stack = np.stack(list(scores.values()))
        missing = np.isnan(stack)
        if missing.all():
            return np.zeros(stack.shape[1])
        filled = np.where(missing, np.inf if self.mode == "all" else -np.inf, stack)
        out = filled.min(axis=0) if self.mode == "all" else filled.max(axis=0)
        return np.where(np.isfinite(out), out, 0.0)

    def get(self) -> dict[str, Any]:
        """Each detector's statistic."""
        return {name: d.get() for name, d in self.detectors.items()}

    def state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints."""
        return {name: d.state() for name, d in self.detectors.items()}

    def load(self, state: dict[str, Any]) -> Self:
        """Restore from :meth:`state`."""
        for name, d in self.detectors.items():
            d.load(state[name])
        self._score = None
        return self
