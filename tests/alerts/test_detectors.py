"""Detectors against pandas/scipy computations of the same statistics (math.isclose)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alerts.baseline import EwmaBaseline, SeasonalProfile, alpha_from_half_life
from alerts.detectors import Combined, CountSpike, Cusum, SeriesFrame, ShareSpike
from alerts.hysteresis import Hysteresis
from alerts.stats import binom_sf, negbin_sf, poisson_sf, tail_score
from alerts.surge import CountSurge

RNG = np.random.default_rng(7)


def _frames(total: np.ndarray, negative: np.ndarray, prior_row: int | None = None):
    for t in range(total.shape[0]):
        yield SeriesFrame.of(
            start_s=t * 60, total=total[t], negative=negative[t], prior_row=prior_row
        )


def test_ewma_matches_pandas_adjusted_mean_and_biased_var() -> None:
    x = RNG.poisson(3.0, size=(200, 4)).astype(float)
    alpha = alpha_from_half_life(20)
    base = EwmaBaseline(alpha)
    for row in x:
        base.update(row)
    mean, var = base.get()
    for j in range(4):
        ew = pd.Series(x[:, j]).ewm(alpha=alpha, adjust=True)
        assert math.isclose(mean[j], ew.mean().iloc[-1], rel_tol=1e-9)
        assert math.isclose(var[j], ew.var(bias=True).iloc[-1], rel_tol=1e-9)


def test_ewma_clipping_limits_an_outlier() -> None:
    base = EwmaBaseline(alpha_from_half_life(10), clip_sigma=3.0)
    for _ in range(50):
        base.update(np.array([2.0]))
    base.update(np.array([500.0]))
    assert base.get()[0][0] < 3.0


@pytest.mark.parametrize("k,mu", [(0, 1.0), (1, 0.5), (5, 0.5), (12, 3.2), (40, 10.0)])
def test_poisson_tail_matches_scipy(k: int, mu: float) -> None:
    got = float(poisson_sf(np.array([k], float), np.array([mu]))[0])
    assert math.isclose(got, stats.poisson.sf(k - 1, mu), rel_tol=1e-9, abs_tol=1e-300)


@pytest.mark.parametrize("k,n,p", [(0, 5, 0.2), (3, 10, 0.2), (9, 10, 0.3), (30, 40, 0.25)])
def test_binomial_tail_matches_scipy(k: int, n: int, p: float) -> None:
    got = float(binom_sf(np.array([k], float), np.array([n], float), np.array([p]))[0])
    assert math.isclose(got, stats.binom.sf(k - 1, n, p), rel_tol=1e-9, abs_tol=1e-300)


@pytest.mark.parametrize("k,mu,var", [(4, 1.0, 3.0), (10, 2.5, 9.0), (3, 2.0, 1.0)])
def test_negative_binomial_tail_matches_scipy(k: int, mu: float, var: float) -> None:
    got = float(negbin_sf(np.array([k], float), np.array([mu]), np.array([var]))[0])
    if var > mu:
        r = mu * mu / (var - mu)
        want = stats.nbinom.sf(k - 1, r, r / (r + mu))
    else:
        want = stats.poisson.sf(k - 1, mu)
    assert math.isclose(got, want, rel_tol=1e-9)


def test_count_spike_matches_pandas_lagged_window_computation() -> None:
    t, n, w, hl = 120, 3, 5, 30
    neg = RNG.poisson(1.5, size=(t, n)).astype(float)
    neg[100:106, 1] += 12  # a burst on series 1
    det = CountSpike(
        window_buckets=w,
        half_life_buckets=hl,
        min_history_buckets=20,
        overdispersed=False,
        clip_sigma=None,
        seasonal_min_days=None,
        exclude_score=None,
    )
    scores = []
    for frame in _frames(neg + 3, neg):
        scores.append(det.update(frame).score().copy())
    alpha = alpha_from_half_life(hl)
    for j in range(n):
        s = pd.Series(neg[:, j])
        observed = s.rolling(w, min_periods=1).sum()
        baseline = s.ewm(alpha=alpha, adjust=True).mean().shift(w)
        history = s.expanding().count().shift(w)
        for i in (40, 90, 103, 119):
            expected = max(baseline.iloc[i], det.min_rate_per_bucket) * w
            p = stats.poisson.sf(observed.iloc[i] - 1, expected)
            want = 0.0 if p >= 1 else min(1.0, -math.log10(p) / 8)
            assert history.iloc[i] >= 20
            assert math.isclose(scores[i][j], want, rel_tol=1e-7, abs_tol=1e-12)
    assert scores[103][1] == 1.0
    assert max(s[0] for s in scores[40:]) < 0.5


def test_count_spike_is_silent_until_enough_history() -> None:
    det = CountSpike(window_buckets=2, min_history_buckets=10, seasonal_min_days=None)
    for i in range(11):
        det.update(SeriesFrame.of(start_s=i * 60, total=[50], negative=[50]))
        assert np.isnan(det.score()[0])  # 9 baseline buckets after the 2-bucket lag
    det.update(SeriesFrame.of(start_s=660, total=[50], negative=[50]))
    assert not np.isnan(det.score()[0])


def _share_tail(k: float, n: float, a: float, b: float) -> float:
    """The share test's tail: binomial at the baseline share, beta-binomial where small."""
    p = stats.binom.sf(k - 1, n, a / (a + b))
    if p < 0.01:  # summed pmf: scipy's betabinom.sf is 1 - cdf, which cancels
        p = stats.betabinom.pmf(np.arange(k, n + 1), n, a, b).sum()
    return float(p)


def test_share_spike_matches_pandas_ewmas_and_beta_binomial_tail() -> None:
    t, w, hl = 100, 5, 20
    total = RNG.poisson(6, size=(t, 2)).astype(float)
    neg = RNG.binomial(total.astype(int), 0.25).astype(float)
    neg[60:65, 1] = total[60:65, 1]  # a burst: the beta-binomial tail decides there
    det = ShareSpike(
        window_buckets=w,
        half_life_buckets=hl,
        min_history_buckets=10,
        min_volume=1,
        exclude_score=None,
    )
    scores = [det.update(f).score().copy() for f in _frames(total, neg)]
    alpha = alpha_from_half_life(hl)
    for j in range(2):
        tot, ng = pd.Series(total[:, j]), pd.Series(neg[:, j])
        # EWMA sums (decayed document counts), lagged by the window; Jeffreys prior.
        a = ng.ewm(alpha=alpha).mean() * _ewm_weight(alpha, t)
        n = tot.ewm(alpha=alpha).mean() * _ewm_weight(alpha, t)
        a, b = a.shift(w) + 0.5, (n - a).shift(w) + 0.5
        vol, k = tot.rolling(w, min_periods=1).sum(), ng.rolling(w, min_periods=1).sum()
        for i in (30, 64, 99):
            p = _share_tail(k.iloc[i], vol.iloc[i], a.iloc[i], b.iloc[i])
            want = min(1.0, -math.log10(p) / 8) if p < 1 else 0.0
            assert math.isclose(scores[i][j], want, rel_tol=1e-7, abs_tol=1e-12)
    assert scores[64][1] > 0.5


def _ewm_weight(alpha: float, t: int) -> pd.Series:
    """The sum of pandas' adjusted EWMA weights after 1..t observations."""
    return pd.Series((1 - (1 - alpha) ** np.arange(1, t + 1)) / alpha)


def test_share_spike_young_series_uses_global_prior_and_volume_guard() -> None:
    det = ShareSpike(window_buckets=5, min_history_buckets=10, min_volume=8)
    # Row 0 is "all": 30 buckets of 10 documents, 2 negative (prior share 0.2).
    for i in range(30):
        det.update(SeriesFrame.of(start_s=i * 60, total=[10], negative=[2], prior_row=0))
    # Row 1 is a brand-new topic: 3 documents, all negative -> below the volume guard.
    det.update(SeriesFrame.of(start_s=1800, total=[10, 3], negative=[2, 3], prior_row=0))
    assert det.score()[1] == 0.0
    assert math.isclose(det.get()["expected"][1], 0.2, rel_tol=1e-2)
    for i in range(31, 34):
        det.update(SeriesFrame.of(start_s=i * 60, total=[10, 5], negative=[2, 5], prior_row=0))
    share = det.get()["expected"][1]
    # The prior weighs as min_baseline_docs (20) documents at the "all" share.
    p = _share_tail(18, 18, 20 * share, 20 * (1 - share))
    assert math.isclose(det.score()[1], min(1.0, -math.log10(p) / 8), rel_tol=1e-7)
    assert det.score()[1] > 0.5


def test_cusum_matches_a_reference_loop() -> None:
    x = RNG.poisson(2.0, size=150).astype(float)
    x[100:] += 2.0  # a sustained shift of about 1.4 sd
    det = Cusum(drift=0.5, threshold=8.0, half_life_buckets=200, min_history_buckets=20)
    got = [
        det.update(SeriesFrame.of(start_s=i, total=[v], negative=[v])).get()[0]
        for i, v in enumerate(x)
    ]
    decay = 1 - alpha_from_half_life(200)
    w = s1 = s2 = 0.0
    s, n = 0.0, 0
    for i in range(len(x)):
        if n >= 20:
            mean, var = s1 / w, s2 / w - (s1 / w) ** 2
            sd = max(math.sqrt(max(var, mean)), 0.5)
            s = max(0.0, s + (x[i] - mean) / sd - 0.5)
        if n < 20 or s < 8.0:  # an alarming shift stays out of the baseline
            w, s1, s2, n = decay * w + 1, decay * s1 + x[i], decay * s2 + x[i] ** 2, n + 1
        assert math.isclose(got[i], s, rel_tol=1e-9, abs_tol=1e-12)
    assert det.score()[0] == 1.0


def test_cusum_baseline_matches_pandas_before_any_alarm() -> None:
    x = RNG.poisson(2.0, size=80).astype(float)
    det = Cusum(min_history_buckets=10, half_life_buckets=30)
    for i, v in enumerate(x):
        det.update(SeriesFrame.of(start_s=i, total=[v], negative=[v]))
    assert det.score()[0] < 1.0
    ew = pd.Series(x).ewm(alpha=alpha_from_half_life(30), adjust=True)
    mean, _ = det._base.get()
    assert math.isclose(mean[0], ew.mean().iloc[-1], rel_tol=1e-9)


def test_seasonal_factors_match_groupby_means_once_ready() -> None:
    prof = SeasonalProfile("hour", alpha=1e-9, min_obs_per_slot=2, bucket_s=3600)
    hours = np.arange(24 * 3)
    x = np.where(hours % 24 >= 12, 6.0, 2.0) + RNG.random(len(hours))
    for h, v in zip(hours, x, strict=True):
        prof.update(int(h) * 3600, np.array([v]))
    means = pd.Series(x).groupby(hours % 24).mean()
    for slot in (3, 15):
        want = means.iloc[slot] / means.mean()
        assert math.isclose(prof.factor(slot * 3600, 1)[0], want, rel_tol=1e-6)


def test_seasonal_factor_is_one_before_every_slot_has_history() -> None:
    prof = SeasonalProfile("hour", alpha=0.1, min_obs_per_slot=2, bucket_s=3600)
    for h in range(30):
        prof.update(h * 3600, np.array([float(h % 24)]))
    assert prof.factor(5 * 3600, 1)[0] == 1.0


def test_combined_all_takes_min_of_available_and_any_takes_max() -> None:
    a = ShareSpike(window_buckets=1, min_history_buckets=1000)  # never has an opinion
    c = CountSpike(window_buckets=1, min_history_buckets=1, seasonal_min_days=None)
    comb = Combined({"share": a, "count": c}, mode="all")
    for i in range(5):
        comb.update(SeriesFrame.of(start_s=i, total=[1], negative=[0]))
    comb.update(SeriesFrame.of(start_s=9, total=[30], negative=[30]))
    assert comb.score()[0] == c.score()[0] == 1.0
    assert Combined({"share": a}, mode="any").score()[0] == 0.0


def test_hysteresis_hold_and_clear() -> None:
    h = Hysteresis(threshold=0.5, hold_buckets=3, clear_buckets=2)
    seq = [0.6, 0.6, 0.6, 0.4, 0.6, 0.4, 0.4, 0.9]
    active, fired, resolved = [], [], []
    for s in seq:
        h.update(np.array([s]))
        active.append(bool(h.active[0]))
        fired.append(bool(h.fired[0]))
        resolved.append(bool(h.resolved[0]))
    assert active == [False, False, True, True, True, True, False, False]
    assert fired.index(True) == 2 and fired.count(True) == 1
    assert resolved.index(True) == 6


def test_tail_score_bounds() -> None:
    p = np.array([1.0, 1e-8, 1e-20, np.nan])
    out = tail_score(p)
    assert out[0] == 0.0 and out[1] == 1.0 and out[2] == 1.0 and np.isnan(out[3])


def test_detector_state_roundtrip_continues_identically() -> None:
    neg = RNG.poisson(1.0, size=(80, 2)).astype(float)
    a = CountSpike(window_buckets=5, min_history_buckets=5)
    b = CountSpike(window_buckets=5, min_history_buckets=5)
    frames = list(_frames(neg + 1, neg))
    for f in frames[:50]:
        a.update(f)
        b.update(f)
    import json

    b2 = CountSpike(window_buckets=5, min_history_buckets=5).load(json.loads(json.dumps(b.state())))
    for f in frames[50:]:
        a.update(f)
        b2.update(f)
    assert np.allclose(a.score(), b2.score())


def test_anomalous_windows_stay_out_of_the_baseline() -> None:
    det = CountSpike(
        window_buckets=5, half_life_buckets=30, min_history_buckets=20, seasonal_min_days=None
    )
    for i in range(100):
        det.update(SeriesFrame.of(start_s=i * 60, total=[2], negative=[1]))
    for i in range(100, 130):  # a 30-bucket burst
        det.update(SeriesFrame.of(start_s=i * 60, total=[10], negative=[8]))
        assert i < 102 or det.score()[0] == 1.0
    assert math.isclose(det.get()["expected"][0], 5.0, rel_tol=1e-6)  # baseline untouched


def test_a_lasting_new_level_is_learnt_after_max_excluded_buckets() -> None:
    det = CountSpike(
        window_buckets=5,
        half_life_buckets=10,
        min_history_buckets=20,
        seasonal_min_days=None,
        max_excluded_buckets=30,
    )
    for i in range(60):
        det.update(SeriesFrame.of(start_s=i * 60, total=[2], negative=[1]))
    for i in range(60, 200):
        det.update(SeriesFrame.of(start_s=i * 60, total=[10], negative=[8]))
    assert det.score()[0] < 0.3


def test_a_burst_the_surge_still_sees_stays_out_of_the_share_baseline() -> None:
    """The exclusion follows the surge's sustained score, not its fading onset score.

    A thin series (one document a bucket, one in ten negative) turns all negative for
    40 buckets: 5 documents a window, under `share`'s 8, so `share` scores 0 and
    cannot keep the burst out of its own baseline; the surge's onset score fades
    within a few buckets while its sustained score stays high. Before, the burst
    entered the share baseline (0.105 -> 0.37).
    """
    surge = CountSurge(window_buckets=5, bucket_s=60, seasonal=False)
    share = ShareSpike(window_buckets=5)
    comb = Combined({"surge": surge, "share": share}, mode="any")
    for i in range(300):
        comb.update(SeriesFrame.of(start_s=i * 60, total=[1], negative=[int(i % 10 == 0)]))
    before = share.get()["expected"][0]
    onset, sustained = [], []
    for i in range(300, 340):
        comb.update(SeriesFrame.of(start_s=i * 60, total=[1], negative=[1]))
        onset.append(surge.score()[0])
        sustained.append(surge.sustained()[0])
        assert share.score()[0] == 0.0  # below min_volume: no say of its own
    assert max(onset[10:]) < 0.3 <= min(sustained[5:])  # the case this is about
    assert math.isclose(before, 0.105, abs_tol=0.01)
    assert share.get()["expected"][0] < before + 0.01  # the burst stayed out
