"""From a tail probability to a score: anomaly-likelihood normalisation and onset.

Shared by :class:`~alerts.surge.CountSurge` and :class:`~alerts.robust.RobustLevel`,
vectorised over series. Per bucket a detector hands in ``u = -log10 p`` (its
raw surprise) and gets back two scores in [0, 1]:

* **likelihood**: ``u`` is divided by how much bigger this series' typical
  *daily maximum* surprise is than a well-calibrated model's (``log10`` of the
  buckets per day + 0.25), measured over its own history (EWMA over days,
  ``half_life_days``; each day's maximum winsorised at 3x the typical one so
  one anomaly does not mask the next). A series whose model is too optimistic
  (frequent ordinary bursts, a heavy tail) is deflated, so one threshold means
  the same on busy and quiet series. A series is never inflated.
* **onset**: the adjusted surprise minus a decaying memory of its recent peak
  (``onset_half_life_buckets``): highest at the start of an anomaly, near 0
  while it lasts, so a long burst scores once. The last ``gathering`` rows
  (tests whose evidence builds up over hours, like a level shift's) keep their
  own memory: what they last scored in full, fading only while they are below
  it, so evidence that keeps growing scores again at each ``ONSET_GAIN`` step
  and a shift is found when the evidence is there, not only at its first hint.

Both map an adjusted surprise ``v`` to ``v / (v + half)``: with ``half = 4``,
score 0.5 means ``p = 1e-4`` and bigger surprises keep ranking higher (no
saturation at 1), which is what a threshold sweep needs.

>>> import numpy as np
>>> s = Surprise(half=4.0, buckets_per_day=288, half_life_days=7, onset_half_life_buckets=10)
>>> [round(float(s.update(np.array([u]), day=0)[0][0]), 2) for u in (0.1, 8.0, 8.0, 0.2)]
[0.02, 0.67, 0.0, 0.0]
>>> _ = s.update(np.array([8.0]), day=1)  # a new day: yesterday's maximum (8) is learnt
>>> round(float(s.sustained[0]), 2)  # the adjusted surprise, as a score
0.55
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from alerts.baseline import alpha_from_half_life, grow, pack, unpack

__all__ = ["OnsetScores", "Surprise"]

FloatArray = NDArray[np.float64]

PRIOR_DAYS = 2.0
#: A surprise this many times the recent peak scores in full (a new, bigger event).
ONSET_GAIN = 1.5
WINSOR_X = 3.0


class Surprise:
    """Per-series likelihood normalisation and onset memory (see the module docstring)."""

    def __init__(
        self,
        *,
        half: float,
        buckets_per_day: float | Sequence[float],
        half_life_days: float,
        onset_half_life_buckets: float,
        gathering: int = 0,
    ) -> None:
        self.half = half
        self.gathering = gathering
        per_day = np.atleast_1d(np.asarray(buckets_per_day, dtype=np.float64))
        self.nominal = (np.log10(np.maximum(per_day, 1.0)) + 0.25)[:, None]
        self.decay = 1.0 - alpha_from_half_life(max(half_life_days, 0.1))
        self.onset_decay = 1.0 - alpha_from_half_life(onset_half_life_buckets)
        self.day = -1
        scales = per_day.shape[0]
        self.w = np.zeros((scales, 0))  # EWMA weight (days), per scale
        self.dsum = np.zeros((scales, 0))  # EWMA sum of daily maxima
        self.today = np.zeros((scales, 0))  # running maximum of the current day
        self.peak = np.zeros(0)  # decaying memory of the adjusted surprise
        self.gpeak = np.zeros(0)  # ... of the gathering rows: the last one scored in full
        self.sustained = np.zeros(0)

    def _resize(self, n: int) -> None:
        self.w, self.dsum, self.today = grow(self.w, n), grow(self.dsum, n), grow(self.today, n)
        self.peak, self.sustained = grow(self.peak, n), grow(self.sustained, n)
        self.gpeak = grow(self.gpeak, n)

    def typical(self) -> FloatArray:
        """Typical daily maximum surprise per series (the nominal one while young)."""
        return (self.dsum + self.nominal * PRIOR_DAYS) / (self.w + PRIOR_DAYS)

    def _roll(self, day: int) -> None:
        if self.day >= 0 and day != self.day:
            seen = self.today.max(axis=0) > 0
            daily = np.minimum(self.today, WINSOR_X * self.typical())
            self.w = np.where(seen, self.decay * self.w + 1.0, self.w)
            self.dsum = np.where(seen, self.decay * self.dsum + daily, self.dsum)
            self.today = np.zeros_like(self.today)
        self.day = day

    def update(
        self, u: FloatArray, *, day: int, ready: NDArray[np.bool_] | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """Score ``u`` (raw surprise per series; or per scale and series, shape
        ``(scales, n)``, each scale normalised by its own history and the largest
        adjusted one counting) in a bucket of day ``day``: ``(onset, sustained)``.

        Rows not ``ready`` (a model too young to trust) score 0 and leave the peak
        and the history alone; the history learns ``u`` after scoring.
        """
        u = np.atleast_2d(u)
        self._resize(u.shape[1])
        self._roll(day)
        if ready is not None:
            u = np.where(ready, u, 0.0)
        scaled = u / np.maximum(self.typical() / self.nominal, 1.0)
        split = scaled.shape[0] - self.gathering
        fast = scaled[:split].max(axis=0) if split else np.zeros(scaled.shape[1])
        onset = np.where(fast >= ONSET_GAIN * self.peak, fast, np.maximum(fast - self.peak, 0.0))
        self.peak = np.maximum(fast, self.peak * self.onset_decay)
        adjusted = fast
        if self.gathering:
            # A gathering test's memory is what it last scored in full, fading only while
            # it is below it: evidence that keeps growing scores at each ONSET_GAIN step
            # (a shift found after hours is still found), a plateau does not.
            slow = scaled[split:].max(axis=0)
            new = slow >= ONSET_GAIN * self.gpeak
            onset = np.maximum(onset, np.where(new, slow, np.maximum(slow - self.gpeak, 0.0)))
            fading = np.maximum(slow, self.gpeak * self.onset_decay)
            self.gpeak = np.where(new, slow, np.where(slow < self.gpeak, fading, self.gpeak))
            adjusted = np.maximum(adjusted, slow)
        self.today = np.maximum(self.today, u)
        self.sustained = adjusted / (adjusted + self.half)
        return onset / (onset + self.half), self.sustained

    def state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints."""
        arrays = {
            k: pack(getattr(self, k)) for k in ("w", "dsum", "today", "peak", "gpeak", "sustained")
        }
        return {"day": self.day, **arrays}

    def load(self, state: dict[str, Any]) -> Self:
        """Restore from :meth:`state`."""
        self.day = int(state["day"])
        for k in ("w", "dsum", "today", "peak", "gpeak", "sustained"):
            setattr(self, k, unpack(state[k]))
        return self


class OnsetScores:
    """The reading side shared by the detectors that normalise with :class:`Surprise`.

    A detector sets ``_score`` (onset score per series) in ``update`` and keeps
    ``_n`` (buckets learned per series) and ``_surprise``; these three methods
    read them the same way for every such detector.
    """

    min_history_buckets: int
    _n: NDArray[Any]
    _score: FloatArray
    _surprise: Surprise

    def flag(self, rows: NDArray[np.bool_]) -> None:
        """No-op: updates are winsorised instead of excluded."""

    def score(self) -> FloatArray:
        """Onset score in [0, 1] per series; NaN for series without enough history."""
        return self._score

    def sustained(self) -> FloatArray:
        """The current (normalised) surprise as a score in [0, 1], for hysteresis."""
        ready = self._n >= self.min_history_buckets
        return np.where(ready, self._surprise.sustained, np.nan)
