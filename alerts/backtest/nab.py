"""Scoring of anomaly scores with the Numenta Anomaly Benchmark's published rules.

Implemented from the public description of NAB's scoring (no code or data of
the benchmark is used):

* each labeled anomaly gets a window of ``10 % of the series length / number
  of anomalies`` rows, centred on the label;
* a detection is a row whose score reaches the threshold; inside a window only
  the first detection counts, weighted by the scaled sigmoid of its relative
  position (``2 * sigmoid(-5 x) - 1``, x = -1 at the window's start, 0 at its
  end), times ``A_TP``; a window without a detection costs ``A_FN``;
* every detection outside a window is a false positive weighted by the scaled
  sigmoid of its distance past the preceding window (in window lengths; -1
  when more than 3 windows away or when no window precedes it), times
  ``A_FP``;
* the first 15 % of each series (at most 750 rows) is probationary: its
  detections are ignored;
* raw scores are summed over the corpus and normalised
  ``100 * (raw - null) / (perfect - null)`` (null: never fires; perfect: a
  detection at the start of every window); the threshold is the one that
  maximises the corpus score, per detector and profile.

>>> import numpy as np
>>> s = np.zeros(2000); s[1500] = 0.9
>>> series = [ScoredSeries(scores=s, labels=[1500])]
>>> best = best_threshold(series, PROFILES["standard"])
>>> round(best.score, 1), best.threshold
(93.1, 0.9)
>>> s[1200] = 0.95  # one false positive far before the window
>>> round(best_threshold([ScoredSeries(s, [1500])], PROFILES["standard"]).score, 1)
87.6
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PROFILES",
    "NabResult",
    "Profile",
    "ScoredSeries",
    "best_threshold",
    "scaled_sigmoid",
    "windows_of",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Profile:
    """Weights of one NAB application profile."""

    name: str
    a_tp: float
    a_fp: float
    a_fn: float
    a_tn: float = 1.0


#: The three published profiles.
PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", a_tp=1.0, a_fp=0.11, a_fn=1.0),
    "reward_low_fp": Profile("reward_low_fp", a_tp=1.0, a_fp=0.22, a_fn=1.0),
    "reward_low_fn": Profile("reward_low_fn", a_tp=1.0, a_fp=0.11, a_fn=2.0),
}

PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750
WINDOW_FRACTION = 0.10


def scaled_sigmoid(x: FloatArray | float) -> FloatArray:
    """``2 * sigmoid(-5 x) - 1``, and -1 beyond ``x > 3``.

    >>> [round(float(v), 4) for v in scaled_sigmoid(np.array([-1.0, 0.0, 3.5]))]
    [0.9866, 0.0, -1.0]
    """
    x = np.asarray(x, dtype=np.float64)
    val = 2.0 / (1.0 + np.exp(5.0 * x)) - 1.0
    return np.where(x > 3.0, -1.0, val)


def windows_of(n_rows: int, labels: Sequence[int]) -> list[tuple[int, int]]:
    """Inclusive ``(left, right)`` row windows centred on each label.

    >>> windows_of(1000, [500])
    [(450, 550)]
    """
    if not labels:
        return []
    width = int(WINDOW_FRACTION * n_rows / len(labels))
    half = width // 2
    return [(max(0, c - half), min(n_rows - 1, c + half)) for c in sorted(labels)]


@dataclass
class ScoredSeries:
    """One series' anomaly scores (one per row, in time order) and its label rows."""

    scores: FloatArray
    labels: Sequence[int]
    windows: list[tuple[int, int]] = field(init=False)
    #: Per window: (prefix max of scores from the window's start, position weights).
    _tp: list[tuple[FloatArray, FloatArray]] = field(init=False, repr=False)
    #: Outside windows and past probation: (scores, FP weights) of every row.
    _fp: tuple[FloatArray, FloatArray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s = np.nan_to_num(np.asarray(self.scores, dtype=np.float64), nan=0.0)
        n = s.shape[0]
        self.windows = windows_of(n, self.labels)
        probation = min(math.floor(PROBATION_FRACTION * n), PROBATION_MAX_ROWS)
        position = np.full(n, np.nan)  # relative position past the preceding window
        inside = np.zeros(n, dtype=bool)
        self._tp = []
        for k, (left, right) in enumerate(self.windows):
            width = right - left + 1
            rows = np.arange(left, right + 1)
            weights = scaled_sigmoid(-(right - rows + 1) / width)
            usable = rows >= probation
            self._tp.append((np.maximum.accumulate(np.where(usable, s[rows], -np.inf)), weights))
            inside[left : right + 1] = True
            end = self.windows[k + 1][0] if k + 1 < len(self.windows) else n
            after = np.arange(right + 1, end)
            position[after] = np.abs(right - after) / max(width - 1, 1)
        fp_w = np.where(np.isnan(position), -1.0, scaled_sigmoid(np.nan_to_num(position)))
        keep = ~inside & (np.arange(n) >= probation)
        self._fp = (s[keep], fp_w[keep])

    def raw(self, thresholds: FloatArray, profile: Profile) -> FloatArray:
        """Raw NAB score of this series at each threshold."""
        total = np.zeros(thresholds.shape[0])
        for prefix_max, weights in self._tp:
            first = np.searchsorted(prefix_max, thresholds, side="left")
            hit = first < prefix_max.shape[0]
            tp = np.where(hit, weights[np.minimum(first, prefix_max.shape[0] - 1)], 0.0)
            total += np.where(hit, tp * profile.a_tp, -profile.a_fn)
        scores, weights = self._fp
        order = np.argsort(-scores, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(weights[order])])
        count = np.searchsorted(-scores[order], -thresholds, side="right")
        total += cum[count] * profile.a_fp
        return total

    def null_and_perfect(self, profile: Profile) -> tuple[float, float]:
        """Raw scores of the detector that never fires and of the perfect one."""
        k = len(self.windows)
        return -profile.a_fn * k, profile.a_tp * k * float(scaled_sigmoid(-1.0))


@dataclass(frozen=True)
class NabResult:
    """The best normalised score of a detector on a corpus, and its threshold."""

    profile: str
    score: float
    threshold: float


def best_threshold(
    series: Sequence[ScoredSeries], profile: Profile, *, candidates: FloatArray | None = None
) -> NabResult:
    """The threshold maximising the corpus score; its normalised score (0 = null, 100 = perfect).

    Candidate thresholds default to every distinct score (floored to 1e-4), so
    the sweep is exact up to that rounding.
    """
    if candidates is None:
        pooled = np.concatenate([np.nan_to_num(s.scores, nan=0.0) for s in series])
        candidates = np.unique(np.floor(pooled[pooled > 0] * 1e4) / 1e4)
        candidates = np.concatenate([candidates, [np.inf]])  # inf: never fires
    raw = np.zeros(candidates.shape[0])
    null = perfect = 0.0
    for s in series:
        raw += s.raw(candidates, profile)
        n0, p0 = s.null_and_perfect(profile)
        null, perfect = null + n0, perfect + p0
    best = int(np.argmax(raw))
    norm = 100.0 * (raw[best] - null) / (perfect - null) if perfect != null else 0.0
    return NabResult(profile.name, float(norm), float(candidates[best]))
