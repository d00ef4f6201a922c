"""Realistic per-bucket count series with labeled anomalies, for detector evaluation.

Built from measured properties of real mention-volume series (5-minute
buckets, about two months): means from 0.4 to 86 per bucket, many zeros on
sparse series, negative-binomial over-dispersion (variance / mean up to about
5.5 on busy series), a daily cycle up to ~8x between the busiest and quietest
hour, quieter weekends, slow level drift and shifts between weeks, and
*ordinary* bursts (rise within minutes, decay over minutes to hours) that a
good detector should tolerate.

Each series also gets 1-3 *labeled* anomalies, well apart, of one of the kinds
in :data:`KINDS`: a sudden spike, a burst with slow decay, a level shift
lasting days, or a spike in a sparse series. The label is the onset row.
Deterministic for a seed; vectorised with numpy.

>>> corpus = generate_corpus(n_series=3, days=20, seed=1)
>>> corpus.counts.shape, corpus.bucket_s
((5760, 3), 300)
>>> all(1 <= len(ls) <= 3 for ls in corpus.labels)
True
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

__all__ = ["KINDS", "Anomaly", "CountCorpus", "generate_corpus"]

FloatArray = NDArray[np.float64]

KINDS = ("spike", "slow_burst", "level_shift", "sparse_spike")
#: Monday 2026-01-05 00:00 UTC: the corpus starts at a week boundary.
START = datetime(2026, 1, 5, tzinfo=UTC)
SPARSE_MEAN = 1.5


@dataclass(frozen=True)
class Anomaly:
    """One labeled anomaly: series column, onset row, kind and size (x the series mean)."""

    series: int
    row: int
    kind: str
    size: float


@dataclass(frozen=True)
class CountCorpus:
    """Counts ``(rows, series)``, bucket start times and labeled anomalies."""

    counts: FloatArray
    starts_s: NDArray[np.int64]
    bucket_s: int
    means: FloatArray
    anomalies: tuple[Anomaly, ...]

    @property
    def labels(self) -> list[list[int]]:
        """Label rows per series."""
        out: list[list[int]] = [[] for _ in range(self.counts.shape[1])]
        for a in self.anomalies:
            out[a.series].append(a.row)
        return [sorted(rows) for rows in out]


def _decay(n: int, t0: int, amp: float, tau: float, rise: int) -> FloatArray:
    """``amp`` reached over ``rise`` buckets from ``t0``, then exponential decay (tau buckets)."""
    t = np.arange(n, dtype=np.float64) - t0
    up = np.clip((t + 1) / max(rise, 1), 0.0, 1.0)
    down = np.exp(-np.maximum(t - rise + 1, 0.0) / tau)
    return np.where(t >= 0, amp * up * down, 0.0)


def _baseline(rng: np.random.Generator, n: int, per_day: int, mean: float) -> FloatArray:
    """Seasonal, drifting expected count per bucket (before bursts and noise)."""
    hours = np.arange(n) * 24.0 / per_day
    ratio = rng.uniform(1.5, 7.8)  # busiest / quietest hour
    peak = rng.uniform(12.0, 20.0)
    phase = 2 * np.pi * (hours % 24 - peak) / 24
    log_day = 0.5 * np.log(ratio) * (0.8 * np.cos(phase) + 0.2 * np.cos(2 * phase))
    day = (np.arange(n) // per_day).astype(np.int64)
    weekend = np.where(day % 7 >= 5, np.log(rng.uniform(0.45, 0.9)), 0.0)
    days = int(day.max()) + 1
    walk = np.cumsum(rng.normal(0.0, 0.04, days))
    weekly = np.repeat(rng.normal(0.0, 0.15, days // 7 + 1), 7)[:days]
    level = walk + weekly
    # Interpolate the daily level so drifts and weekly shifts happen over a day.
    smooth = np.interp(np.arange(n) / per_day, np.arange(days) + 0.5, level)
    mu = np.exp(log_day + weekend + smooth)
    return mu * (mean / mu.mean())


def _ordinary_bursts(rng: np.random.Generator, n: int, per_day: int, mean: float) -> FloatArray:
    """Expected extra documents of unlabeled bursts (about 0.7 a day, 0.5-3x the mean)."""
    extra = np.zeros(n)
    for _ in range(rng.poisson(0.7 * n / per_day)):
        t0 = int(rng.integers(0, n))
        amp = mean * np.exp(rng.uniform(np.log(0.5), np.log(3.0)))
        tau = np.exp(rng.uniform(np.log(2.0), np.log(36.0)))
        extra += _decay(n, t0, amp, tau, int(rng.integers(1, 4)))
    return extra


def _plant(
    rng: np.random.Generator,
    kind: str,
    base: FloatArray,
    extra: FloatArray,
    t0: int,
    mean: float,
    per_day: int,
) -> tuple[FloatArray, FloatArray, float]:
    """Add one anomaly: returns the new (base, extra) expectations and its size."""
    n = base.shape[0]
    if kind == "spike":
        size = float(np.exp(rng.uniform(np.log(6.0), np.log(30.0))))
        return base, extra + _decay(n, t0, size * mean, rng.uniform(1.0, 4.0), 1), size
    if kind == "slow_burst":
        size = float(np.exp(rng.uniform(np.log(3.0), np.log(10.0))))
        tau = rng.uniform(2.0, 8.0) * per_day / 24
        return base, extra + _decay(n, t0, size * mean, tau, int(rng.integers(1, 4))), size
    if kind == "level_shift":
        size = float(rng.uniform(2.0, 4.0))
        end = min(n, t0 + int(rng.uniform(2.0, 5.0) * per_day))
        base = base.copy()
        base[t0:end] *= size
        return base, extra, size
    counts = float(rng.uniform(8.0, 30.0))  # sparse_spike: this many extra documents
    return base, extra + _decay(n, t0, counts, 1.0, 1), counts / mean


def _anomaly_rows(rng: np.random.Generator, n: int, k: int, per_day: int) -> list[int]:
    lo, hi = int(0.15 * n) + per_day, n - per_day
    gap = int(0.10 * n / k) + per_day  # NAB windows (10 % / k) never overlap
    for _ in range(1000):
        rows = sorted(int(r) for r in rng.integers(lo, hi, k))
        if all(b - a >= gap for a, b in itertools.pairwise(rows)):
            return rows
    return [lo + (hi - lo) // 2]


def generate_corpus(
    *, n_series: int = 60, days: float = 55, bucket_s: int = 300, seed: int = 15
) -> CountCorpus:
    """A corpus of count series with the properties in the module docstring."""
    rng = np.random.default_rng(seed)
    per_day = 86_400 // bucket_s
    n = int(days * per_day)
    counts = np.zeros((n, n_series))
    means = np.zeros(n_series)
    anomalies: list[Anomaly] = []
    for j in range(n_series):
        sparse = rng.random() < 0.3
        lo, hi = (0.4, SPARSE_MEAN) if sparse else (SPARSE_MEAN, 86.0)
        mean = means[j] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        base = _baseline(rng, n, per_day, mean)
        extra = _ordinary_bursts(rng, n, per_day, mean)
        k = int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
        for row in _anomaly_rows(rng, n, k, per_day):
            kinds = ["sparse_spike", "slow_burst"] if sparse else list(KINDS[:3])
            kind = str(rng.choice(kinds))
            base, extra, size = _plant(rng, kind, base, extra, row, mean, per_day)
            anomalies.append(Anomaly(j, row, kind, size))
        # The ordinary level is negative binomial (gamma-mixed Poisson): variance / mean of
        # 1.5-5.5 on the busiest series, near 1 on sparse ones. Bursts add Poisson counts.
        ratio = 1.0 + rng.uniform(0.5, 4.5) * np.sqrt(mean / 86.0)
        shape = mean / (ratio - 1.0)
        counts[:, j] = rng.poisson(base * rng.gamma(shape, 1.0 / shape, n) + extra)
    starts = int(START.timestamp()) + np.arange(n, dtype=np.int64) * bucket_s
    return CountCorpus(counts, starts, bucket_s, means, tuple(anomalies))
