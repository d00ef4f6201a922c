"""``surge``: a count detector for real coverage data, vectorised across series.

What it assumes and does, per series:

* **Seasonal expected level.** expected count per bucket = level x hour-of-day
  factor x weekday factor. The level is an EWMA (``level_half_life_buckets``)
  of de-seasonalised counts; each factor is an EWMA per slot (``season_half_life_buckets``
  of that slot's own updates) of count / (level x the other factor), shrunk
  towards a prior while the slot is young: the all-series profile (the
  frame's ``prior_row``) where it has one, else flat. So a young series uses
  its own recent level, then the all-series profile, then its own cycle.
* **Over-dispersion.** The window count is negative binomial with variance
  ``M + alpha M^2``; ``alpha`` is estimated online per series from window
  residuals (method of moments, EWMA over ``dispersion_half_life_buckets``,
  shrunk towards ``alpha_prior``). Tails are exact for small counts.
* **Robustness.** Updates are lagged by the window and winsorised at about
  4 standard deviations, so a burst cannot raise the bar it is scored against
  (a lasting new level is still learnt, at a bounded pace).
* **Level shifts.** A rise that lasts hours drags the fast level along, so it
  is also tested against a *slow* reference level (``shift_half_life_buckets``,
  winsorised the same way): over the last ``shift_windows`` windows, are
  significantly more buckets above their slow expectation than the model
  predicts (a sign test with exact per-bucket probabilities), and is the span's
  total well above it (``shift_half_effect``)? A burst, however large, fills
  few buckets of the span; a shift fills most.
* **Sparse series.** Below ``min_count`` documents in the window the surprise
  is 0 (no alert from 0 to 2).
* **Normalisation and onset** (:class:`~alerts.surprise.Surprise`): the
  surprise ``-log10 p`` is deflated by the series' own excess of past
  exceedances, and :meth:`score` is the onset score (highest at the start of
  an anomaly); :meth:`sustained` is the current surprise, which the
  hysteresis uses so a long burst is one alert.

>>> det = CountSurge(window_buckets=1, min_history_buckets=20, seasonal=False)
>>> rng = np.random.default_rng(0)
>>> for x in rng.poisson(20, 200):
...     _ = det.update(SeriesFrame.of(start_s=0, total=[x], negative=[x]))
>>> float(det.score()[0]) < 0.3
True
>>> _ = det.update(SeriesFrame.of(start_s=0, total=[90], negative=[90]))
>>> float(det.score()[0]) > 0.5
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from scipy import special

from alerts.baseline import SeriesFrame, alpha_from_half_life, grow, pack, unpack
from alerts.stats import nb2_sf, surprise
from alerts.surprise import OnsetScores, Surprise

__all__ = ["CountSurge", "SlotFactors"]

FloatArray = NDArray[np.float64]
CLIP_SD = 3.0  # winsorisation of the dispersion residuals, in standard deviations
LEVEL_CLIP_SD = 3.0  # ... and of the counts the level learns
SEASON_CLIP_SD = 8.0  # ... and of those the daily and weekly profile learns


class SlotFactors:
    """Multiplicative seasonal factors per series, one per slot (hour of day or weekday).

    Factor of a slot = its shrunk EWMA ratio over the mean of all slots'.
    """

    def __init__(self, kind: str, *, alpha: float, prior_obs: float) -> None:
        self.slots = 24 if kind == "hour" else 7
        self.kind = kind
        self.alpha = alpha
        self.prior_obs = prior_obs
        self.w = np.zeros((self.slots, 0))
        self.s1 = np.zeros((self.slots, 0))
        self._cache: FloatArray | None = None

    def slot(self, start_s: int) -> int:
        """Slot of the bucket starting at ``start_s`` (UTC; Monday = 0)."""
        if self.kind == "hour":
            return (start_s // 3600) % 24
        return (start_s // 86400 + 3) % 7

    def resize(self, n: int) -> None:
        """Make room for ``n`` series."""
        if self.w.shape[1] < n:
            self.w, self.s1 = grow(self.w, n), grow(self.s1, n)
            self._cache = None

    def factors(self, prior_row: int | None) -> FloatArray:
        """All factors ``(slots, series)``, normalised to mean 1 per series.

        Young slots lean on a prior: the ``prior_row`` series' profile (the
        all-series one), or flat where there is none and for that row itself.
        """
        if self._cache is None:
            raw = (self.s1 + self.prior_obs) / (self.w + self.prior_obs)
            if prior_row is not None and prior_row < self.w.shape[1]:
                own = raw[:, prior_row] / raw[:, prior_row].mean()
                shrunk = (self.s1 + self.prior_obs * own[:, None]) / (self.w + self.prior_obs)
                shrunk[:, prior_row] = raw[:, prior_row]
                raw = shrunk
            self._cache = np.clip(raw / raw.mean(axis=0), 0.1, 10.0)
        return self._cache

    def update(self, start_s: int, ratio: FloatArray, mask: NDArray[np.bool_]) -> None:
        """Learn ``ratio`` (count over the rest of the model) in the slot of ``start_s``."""
        k, decay = self.slot(start_s), 1.0 - self.alpha
        self.w[k] = np.where(mask, decay * self.w[k] + 1.0, self.w[k])
        self.s1[k] = np.where(mask, decay * self.s1[k] + ratio, self.s1[k])
        self._cache = None

    def state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints."""
        return {"w": pack(self.w), "s1": pack(self.s1)}

    def load(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state`."""
        self.w, self.s1, self._cache = unpack(state["w"]), unpack(state["s1"]), None


@dataclass
class CountSurge(OnsetScores):
    """Seasonal negative-binomial surge detector for counts (see the module docstring)."""

    window_buckets: int = 5
    level_half_life_buckets: float = 120.0
    min_history_buckets: int = 30
    bucket_s: int = 60
    seasonal: bool = True
    season_half_life_days: float = 14.0
    #: Days of data a seasonal slot needs before its own estimate weighs as much as the prior.
    season_prior_days: float = 0.5
    dispersion_half_life_buckets: float = 4320.0
    alpha_prior: float = 0.1
    min_count: int = 5
    min_rate_per_bucket: float = 0.01
    #: The expected count never drops below this fraction of the series' daily-average level.
    floor_of_level: float = 0.0
    #: Time scales tested, in windows: the window itself and longer sums (slow bursts).
    scales: tuple[int, ...] = (1, 6, 24)
    #: Level shifts: over the last ``shift_windows`` windows, are *most* buckets above a
    #: slow reference level (``shift_half_life_buckets``, which a shift lasting hours cannot
    #: drag along the way it drags the fast level)? A sign test, so a short burst inside
    #: the span (however large) does not count as a shift. 0 turns it off.
    shift_windows: int = 72
    shift_half_life_buckets: float = 864.0
    #: Excess of the span's total over the slow reference, in multiples of it, that scores
    #: 0.5 on its own: a rise of 70 % sustained for hours (a small bias of the reference
    #: never alerts, however consistent).
    shift_half_effect: float = 0.7
    #: Surprise (-log10 p) that scores 0.5.
    half_surprise: float = 4.0
    #: Excess over the expected count, in multiples of the series' daily-average level
    #: per bucket, that scores 0.5 on its own: a rise must be large, not just improbable.
    half_effect: float | None = 3.0
    onset_half_life_buckets: float = 60.0
    likelihood_half_life_buckets: float = 10080.0

    def __post_init__(self) -> None:
        self._k = [self.window_buckets * m for m in self.scales]
        self._kmax = max(self._k)
        self._kshift = self.window_buckets * self.shift_windows
        self._alpha_level = alpha_from_half_life(self.level_half_life_buckets)
        self._alpha_slow = alpha_from_half_life(self.shift_half_life_buckets)
        self._alpha_disp = alpha_from_half_life(self.dispersion_half_life_buckets)
        per_day = 86_400 / self.bucket_s
        hour_updates = max(1.0, per_day / 24)  # updates of one hour slot per day
        self._hour = SlotFactors(
            "hour",
            alpha=alpha_from_half_life(self.season_half_life_days * hour_updates),
            prior_obs=self.season_prior_days * hour_updates,
        )
        self._dow = SlotFactors(
            "dow",
            alpha=alpha_from_half_life(self.season_half_life_days / 7 * per_day),
            prior_obs=self.season_prior_days * per_day,
        )
        shift = [per_day / self._kshift] if self._kshift else []
        self._surprise = Surprise(
            half=self.half_surprise,
            buckets_per_day=[per_day / k for k in self._k] + shift,
            half_life_days=self.likelihood_half_life_buckets / per_day,
            onset_half_life_buckets=self.onset_half_life_buckets,
            gathering=len(shift),
        )
        z = np.zeros(0)
        self._lw, self._ls = z, z
        self._sw, self._ss = z, z  # the slow reference level (EWMA weight and sum)
        self._n = np.zeros(0, dtype=np.int64)
        s = len(self._k)
        # Per scale: window sums of counts and expectations, and dispersion sums.
        self._sx, self._sm = np.zeros((s, 0)), np.zeros((s, 0))
        self._dw, self._dnum, self._dden = np.zeros((s, 0)), np.zeros((s, 0)), np.zeros((s, 0))
        self._rx, self._rm = np.zeros((self._kmax, 0)), np.zeros((self._kmax, 0))
        # The shift test's ring and sums: bucket count, slow expectation, "above" indicator
        # and its null probability (sums: above, expected above, its variance, counts, mu).
        ring = max(self._kshift, 1)
        self._qx, self._qm = np.zeros((ring, 0)), np.zeros((ring, 0))
        self._qi, self._qp = np.zeros((ring, 0)), np.zeros((ring, 0))
        self._q = np.zeros((5, 0))
        self._qcount = 0
        self._count = 0
        self._observed = self._expected = self._p = self._score = z
        self._prior_row: int | None = None

    def _resize(self, n: int) -> None:
        self._lw, self._ls, self._n = grow(self._lw, n), grow(self._ls, n), grow(self._n, n)
        self._sw, self._ss = grow(self._sw, n), grow(self._ss, n)
        self._sx, self._sm = grow(self._sx, n), grow(self._sm, n)
        self._dw, self._dnum, self._dden = (
            grow(self._dw, n),
            grow(self._dnum, n),
            grow(self._dden, n),
        )
        self._rx, self._rm = grow(self._rx, n), grow(self._rm, n)
        self._qx, self._qm = grow(self._qx, n), grow(self._qm, n)
        self._qi, self._qp, self._q = grow(self._qi, n), grow(self._qp, n), grow(self._q, n)
        self._hour.resize(n)
        self._dow.resize(n)

    def _factors(self, start_s: int) -> tuple[FloatArray, FloatArray]:
        if not self.seasonal:
            one = np.ones(self._n.shape[0])
            return one, one
        h = self._hour.factors(self._prior_row)[self._hour.slot(start_s)]
        d = self._dow.factors(self._prior_row)[self._dow.slot(start_s)]
        return h, d

    def _level(self) -> FloatArray:
        return np.divide(self._ls, self._lw, out=np.zeros(self._lw.shape), where=self._lw > 0)

    def _slow_level(self) -> FloatArray:
        return np.divide(self._ss, self._sw, out=np.zeros(self._sw.shape), where=self._sw > 0)

    def dispersion(self) -> FloatArray:
        """``alpha`` per scale and series (variance = M + alpha M^2 for a window mean M)."""
        per = np.divide(self._dden, self._dw, out=np.zeros(self._dw.shape), where=self._dw > 0)
        # The prior weighs as 50 windows of expected count at least 1: on a sparse
        # series one document more than expected says little about dispersion.
        prior = 50.0 * np.maximum(per, 1.0)
        alpha = np.divide(
            self._dnum + self.alpha_prior * prior,
            self._dden + prior,
            out=np.full(per.shape, self.alpha_prior),
            where=(self._dden + prior) > 0,
        )
        return np.clip(alpha, 0.0, 2.0)

    def _push(self, x: FloatArray, mu: FloatArray) -> None:
        """Add one bucket to the rings and every scale's running sums."""
        pos = self._count % self._kmax
        for i, k in enumerate(self._k):
            if self._count >= k:
                old = (self._count - k) % self._kmax
                self._sx[i] -= self._rx[old]
                self._sm[i] -= self._rm[old]
        self._rx[pos], self._rm[pos] = x, mu
        self._sx += x
        self._sm += mu
        self._count += 1

    def _shift(self, x: FloatArray, mu_slow: FloatArray, alpha: FloatArray) -> FloatArray:
        """Raw surprise of the level-shift sign test over the last ``shift`` buckets.

        Each bucket is "above" when its count exceeds the slow expectation; under the
        model that happens with probability ``P(X > mu)`` (exact negative binomial, so
        small counts are handled), and the number of buckets above is compared with the
        sum of those probabilities (normal approximation of a Poisson-binomial).
        """
        k = self._kshift
        above = (x > mu_slow).astype(np.float64)
        p0 = nb2_sf(np.floor(mu_slow) + 1.0, mu_slow, alpha)
        pos = self._qcount % k
        new = np.stack([above, p0, p0 * (1.0 - p0), x, mu_slow])
        if self._qcount >= k:
            old = np.stack(
                [
                    self._qi[pos],
                    self._qp[pos],
                    self._qp[pos] * (1.0 - self._qp[pos]),
                    self._qx[pos],
                    self._qm[pos],
                ]
            )
            self._q = self._q - old
        self._qi[pos], self._qp[pos], self._qx[pos], self._qm[pos] = above, p0, x, mu_slow
        self._q = self._q + new
        self._qcount += 1
        if self._qcount < k:
            return np.zeros(x.shape[0])
        hits, expected, var, total, mean = self._q
        z = (hits - expected - 0.5) / np.sqrt(np.maximum(var, 1e-9))
        u = np.where(z > 0, -special.log_ndtr(-z) / np.log(10.0), 0.0)
        effect = total / np.maximum(mean, self.min_rate_per_bucket) - 1.0
        return np.minimum(u, np.maximum(effect, 0.0) * self.half_surprise / self.shift_half_effect)

    def _learn(
        self, start_s: int, x: FloatArray, mu: FloatArray, mu_slow: FloatArray, alpha: FloatArray
    ) -> None:
        """Learn the bucket just scored, winsorised so it cannot drag the level."""
        cap = mu + LEVEL_CLIP_SD * np.sqrt(mu + alpha * mu * mu) + 2.0
        xc = np.where(self._n >= 10, np.minimum(x, cap), x)
        cap_slow = mu_slow + LEVEL_CLIP_SD * np.sqrt(mu_slow + alpha * mu_slow * mu_slow) + 2.0
        xs = np.where(self._n >= 10, np.minimum(x, cap_slow), x)
        # The profile is learnt against the slow level: the fast one follows the daily
        # cycle partly, and a profile measured against it would lose that part.
        level = self._slow_level()
        h, d = self._factors(start_s)
        if self.seasonal:
            # Winsorised far more loosely: a cap at the model's own expectation would stop
            # the profile from ever learning a peak it underestimates (a damped cycle).
            wide = mu_slow + SEASON_CLIP_SD * np.sqrt(mu_slow + alpha * mu_slow * mu_slow) + 2.0
            xw = np.where(self._n >= 10, np.minimum(x, wide), x)
            seen = level > 0
            base = np.where(seen, level, 1.0)
            self._hour.update(start_s, xw / (base * d), seen)
            self._dow.update(start_s, xw / (base * h), seen)
        decay = 1.0 - self._alpha_level
        self._lw = decay * self._lw + 1.0
        self._ls = decay * self._ls + xc / (h * d)
        decay = 1.0 - self._alpha_slow
        self._sw = decay * self._sw + 1.0
        self._ss = decay * self._ss + xs / (h * d)
        self._n = self._n + 1

    def update(self, frame: SeriesFrame) -> Self:
        """Consume one final bucket: score it against the model so far, then learn it."""
        self._prior_row = frame.prior_row
        self._resize(frame.n)
        h, d = self._factors(frame.start_s)
        level, slow_level = self._level(), self._slow_level()
        season = np.maximum(h * d, self.floor_of_level)
        mu = np.maximum(level * season, self.min_rate_per_bucket)
        mu_slow = np.maximum(slow_level * season, self.min_rate_per_bucket)
        x = frame.negative
        self._push(x, mu)
        alpha = self.dispersion()
        full = np.array([self._count >= k for k in self._k])[:, None]
        s, m = self._sx, self._sm
        # Only windows above their expectation can be surprising: the exact tail runs on
        # those rows only (k = 0 elsewhere gives p = 1), which keeps many series cheap.
        rows = full & (s >= self.min_count) & (s > m)
        p = nb2_sf(np.where(rows, s, 0.0), m, alpha)
        u = np.where(rows, surprise(p), 0.0)
        if self.half_effect is not None:
            # Longer sums need a smaller effect: a lasting rise is rarer than a brief one.
            k = np.array(self._k, dtype=np.float64)[:, None]
            half = self.half_effect / np.sqrt(np.array(self.scales, dtype=np.float64))[:, None]
            effect = (s - m) / (k * np.maximum(level, self.min_rate_per_bucket))
            u = np.minimum(u, np.maximum(effect, 0.0) * self.half_surprise / half)
        if self._kshift:
            u = np.vstack([u, self._shift(x, mu_slow, alpha[0])])
        ready = self._n >= self.min_history_buckets
        onset, _ = self._surprise.update(u, day=frame.start_s // 86_400, ready=ready)
        # Dispersion from each scale's residual, winsorised like the level.
        sc = np.minimum(s, m + CLIP_SD * np.sqrt(m + alpha * m * m))
        learn = full & (self._n > 0)
        decay = 1.0 - self._alpha_disp
        self._dw = np.where(learn, decay * self._dw + 1.0, self._dw)
        self._dnum = np.where(learn, decay * self._dnum + (sc - m) ** 2 - sc, self._dnum)
        self._dden = np.where(learn, decay * self._dden + m * m, self._dden)
        self._learn(frame.start_s, x, mu, mu_slow, alpha[0])
        self._observed, self._expected = s[0], m[0]
        self._p = np.where(ready, p.min(axis=0), np.nan)
        self._score = np.where(ready, onset, np.nan)
        return self

    def get(self) -> dict[str, FloatArray]:
        """The statistic: observed window count, expected count, p-value and dispersion."""
        return {
            "observed": self._observed,
            "expected": self._expected,
            "p": self._p,
            "alpha": self.dispersion()[0],
        }

    _ARRAYS = (
        "_lw",
        "_ls",
        "_sw",
        "_ss",
        "_n",
        "_sx",
        "_sm",
        "_dw",
        "_dnum",
        "_dden",
        "_rx",
        "_rm",
        "_qx",
        "_qm",
        "_qi",
        "_qp",
        "_q",
    )

    def state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints."""
        return {
            "count": self._count,
            "qcount": self._qcount,
            "arrays": {k: pack(getattr(self, k)) for k in self._ARRAYS},
            "hour": self._hour.state(),
            "dow": self._dow.state(),
            "surprise": self._surprise.state(),
        }

    def load(self, state: dict[str, Any]) -> Self:
        """Restore from :meth:`state`."""
        self._count = int(state["count"])
        self._qcount = int(state["qcount"])
        for k in self._ARRAYS:
            setattr(self, k, unpack(state["arrays"][k]))
        self._hour.load(state["hour"])
        self._dow.load(state["dow"])
        self._surprise.load(state["surprise"])
        return self
