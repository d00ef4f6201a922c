"""``robust``: a detector for signed, real-valued series (e.g. a net-sentiment index).

Assumes a value per bucket that wanders slowly around a level with roughly
symmetric noise, and looks for sudden moves either way. Per series:

* the window mean (over the buckets that have a value; NaN buckets carry no
  information and are skipped) is compared with a robust location (EWMA of
  winsorised window means) and scale (EWMA of absolute deviations x 1.2533,
  the mean-absolute-deviation estimate of a normal standard deviation);
* the location and scale learn each window mean *after* scoring it, clipped
  at 4 scales, so a jump cannot drag its own baseline;
* ``p = 2 P(Z >= |z|)`` (two-sided), then the same likelihood normalisation
  and onset scoring as ``surge`` (:class:`~alerts.surprise.Surprise`).

No seasonality: a net-sentiment index is a ratio, so the daily volume cycle
mostly cancels out of it.

>>> det = RobustLevel(window_buckets=1, min_history_buckets=20)
>>> rng = np.random.default_rng(0)
>>> for x in rng.normal(-0.1, 0.05, 200):
...     _ = det.update(SeriesFrame.of(start_s=0, total=[1], negative=[0]).with_value([x]))
>>> float(det.score()[0]) < 0.3
True
>>> _ = det.update(SeriesFrame.of(start_s=0, total=[1], negative=[0]).with_value([-0.6]))
>>> float(det.score()[0]) > 0.6
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from scipy import special

from alerts.baseline import SeriesFrame, alpha_from_half_life, grow, pack, unpack
from alerts.stats import surprise
from alerts.surprise import OnsetScores, Surprise

__all__ = ["RobustLevel"]

FloatArray = NDArray[np.float64]
MAD_TO_SD = 1.2533  # sqrt(pi / 2): mean absolute deviation -> sd for a normal
CLIP_SCALES = 4.0


@dataclass
class RobustLevel(OnsetScores):
    """Robust two-sided level-change detector for real values (see the module docstring)."""

    window_buckets: int = 5
    half_life_buckets: float = 120.0
    min_history_buckets: int = 30
    bucket_s: int = 60
    min_scale: float = 1e-6
    half_surprise: float = 4.0
    onset_half_life_buckets: float = 60.0
    likelihood_half_life_buckets: float = 10080.0
    _surprise: Surprise = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._alpha = alpha_from_half_life(self.half_life_buckets)
        self._surprise = Surprise(
            half=self.half_surprise,
            buckets_per_day=86_400 / self.bucket_s / self.window_buckets,
            half_life_days=self.likelihood_half_life_buckets * self.bucket_s / 86_400,
            onset_half_life_buckets=self.onset_half_life_buckets,
        )
        z = np.zeros(0)
        self._ring = np.full((self.window_buckets, 0), np.nan)
        self._count = 0
        self._w, self._loc, self._dev = z, z, z
        self._n = np.zeros(0, dtype=np.int64)
        self._mean = self._z = self._score = z

    def _resize(self, n: int) -> None:
        self._ring = grow(self._ring, n, np.nan)
        self._w, self._loc, self._dev = grow(self._w, n), grow(self._loc, n), grow(self._dev, n)
        self._n = grow(self._n, n)

    def update(self, frame: SeriesFrame) -> Self:
        """Consume one final bucket (its ``values``)."""
        self._resize(frame.n)
        self._ring[self._count % self.window_buckets] = frame.values
        self._count += 1
        have = ~np.isnan(self._ring)
        k = have.sum(axis=0)
        total = np.where(have, self._ring, 0.0).sum(axis=0)
        mean = np.divide(total, k, out=np.full(k.shape, np.nan), where=k > 0)
        seen = self._w > 0
        loc = np.divide(self._loc, self._w, out=np.zeros(k.shape), where=seen)
        scale = np.divide(self._dev, self._w, out=np.zeros(k.shape), where=seen) * MAD_TO_SD
        scale = np.maximum(scale, self.min_scale)
        z = np.where(k > 0, (np.nan_to_num(mean) - loc) / scale, 0.0)
        u = surprise(2.0 * special.ndtr(-np.abs(z)))
        ready = self._n >= self.min_history_buckets
        onset, _ = self._surprise.update(u, day=frame.start_s // 86_400, ready=ready & (k > 0))
        # Learn after scoring, clipped at a few scales once the scale means something.
        learn = k > 0
        x = np.nan_to_num(mean)
        x = np.where(
            self._n >= 10, np.clip(x, loc - CLIP_SCALES * scale, loc + CLIP_SCALES * scale), x
        )
        decay = 1.0 - self._alpha
        dev = np.abs(x - np.where(seen, loc, x))
        self._w = np.where(learn, decay * self._w + 1.0, self._w)
        self._loc = np.where(learn, decay * self._loc + x, self._loc)
        self._dev = np.where(learn, decay * self._dev + dev, self._dev)
        self._n = self._n + learn
        self._mean, self._z = mean, np.where(ready, z, np.nan)
        self._score = np.where(ready, onset, np.nan)
        return self

    def get(self) -> dict[str, FloatArray]:
        """The statistic: window mean, baseline location and robust z."""
        seen = self._w > 0
        loc = np.divide(self._loc, self._w, out=np.full(self._w.shape, np.nan), where=seen)
        return {"observed": self._mean, "expected": loc, "z": self._z}

    def state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints."""
        arrays = {k: pack(getattr(self, k)) for k in ("_ring", "_w", "_loc", "_dev", "_n")}
        return {"count": self._count, "arrays": arrays, "surprise": self._surprise.state()}

    def load(self, state: dict[str, Any]) -> Self:
        """Restore from :meth:`state`."""
        self._count = int(state["count"])
        for k, v in state["arrays"].items():
            setattr(self, k, unpack(v))
        self._surprise.load(state["surprise"])
        return self
