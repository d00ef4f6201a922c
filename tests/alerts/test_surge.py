"""The detectors for real coverage data: surge (counts), robust (signed values), offline parity."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alerts.backtest.offline import detect_frame
from alerts.baseline import SeriesFrame
from alerts.detectors import Combined
from alerts.engine import AlertEngine, build_detector
from alerts.robust import RobustLevel
from alerts.rules import load_rules, parse_rules
from alerts.series import ALL_KEY
from alerts.settings import DEFAULT_RULES_PATH
from alerts.stats import nb2_sf
from alerts.surge import CountSurge
from alerts.testing import scored

DAY_S = 86_400
MONDAY = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    "k,mu,alpha", [(1, 0.4, 0.3), (3, 0.4, 0.3), (12, 3.2, 0.1), (150, 80.0, 0.05), (5, 2.0, 0.0)]
)
def test_negative_binomial_tail_matches_scipy(k: int, mu: float, alpha: float) -> None:
    got = float(nb2_sf(np.array([k], float), np.array([mu]), np.array([alpha]))[0])
    if alpha == 0:
        want = stats.poisson.sf(k - 1, mu)
    else:
        r = 1 / alpha
        want = stats.nbinom.sf(k - 1, r, r / (r + mu))
    assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-300)


def _daily(hours: np.ndarray) -> np.ndarray:
    """A daily cycle 8x between 16:00 and 04:00 UTC."""
    return np.exp(np.log(8.0) / 2 * np.cos(2 * np.pi * (hours - 16) / 24))


def test_seasonality_is_learnt_from_a_daily_cycle() -> None:
    bucket_s, days = 300, 14
    t = np.arange(days * DAY_S // bucket_s)
    hours = (t * bucket_s / 3600) % 24
    rng = np.random.default_rng(3)
    x = rng.poisson(20 * _daily(hours)).astype(float)
    det = CountSurge(window_buckets=1, bucket_s=bucket_s, level_half_life_buckets=72)
    for i in t:
        det.update(
            SeriesFrame.of(start_s=MONDAY + int(i) * bucket_s, total=[x[i]], negative=[x[i]])
        )
    h = det._hour.factors(None)[:, 0]
    assert 5.0 < h[16] / h[4] < 11.0  # the 8x cycle, learnt
    # The usual evening peak is not surprising; the same count at 04:00 is.
    p = det.get()["p"]
    assert p.shape == (1,)
    night, peak = MONDAY + days * DAY_S + 4 * 3600, MONDAY + days * DAY_S + 16 * 3600
    level = float(det._level()[0])
    assert det._factors(peak)[0][0] * level > 4 * det._factors(night)[0][0] * level


def _busy(n: int, seed: int) -> np.ndarray:
    """A busy over-dispersed series: mean 80, variance / mean about 5."""
    rng = np.random.default_rng(seed)
    shape = 80 / 4.0
    return rng.poisson(80 * rng.gamma(shape, 1 / shape, n)).astype(float)


def _run(det: CountSurge | Combined, xs: np.ndarray, start: int = 0) -> list[float]:
    out = []
    for i, x in enumerate(xs):
        det.update(SeriesFrame.of(start_s=MONDAY + (start + i) * 300, total=[x], negative=[x]))
        out.append(float(np.nan_to_num(det.score()[0])))
    return out


def test_a_burst_scores_high_at_onset_and_an_ordinary_fluctuation_does_not() -> None:
    det = CountSurge(window_buckets=1, bucket_s=300, seasonal=False, level_half_life_buckets=72)
    history = _busy(2000, seed=1)
    scores = _run(det, history)
    sd = float(np.std(history))
    assert max(scores[500:]) < 0.5  # ordinary fluctuations of an over-dispersed series
    # The same-size rise as an ordinary +2 sd fluctuation scores low...
    ordinary = _run(det, np.array([80 + 2 * sd]), start=2000)
    assert ordinary[0] < 0.3
    # ...a burst (6x for an hour) scores high at its onset, then low while it lasts.
    burst = _run(det, np.full(12, 480.0), start=2001)
    assert burst[0] > 0.55
    assert max(burst[1:]) < burst[0] and max(burst[6:]) < 0.1
    assert det.sustained()[0] > 0.5  # still surprising: one alert that lasts


def _seasonal_busy(days: int, seed: int, level: np.ndarray | None = None) -> np.ndarray:
    """A mid-volume series (mean 9 per 5 min) with a 3x daily cycle, variance / mean ~1.3."""
    n = days * DAY_S // 300
    hours = (np.arange(n) * 300 / 3600) % 24
    cycle = np.exp(np.log(3.0) / 2 * np.cos(2 * np.pi * (hours - 16) / 24))
    mu = 9 * cycle / cycle.mean() * (1.0 if level is None else level)
    rng = np.random.default_rng(seed)
    return rng.poisson(mu * rng.gamma(30.0, 1 / 30.0, n)).astype(float)


def test_a_level_shift_is_found_within_hours_and_an_ordinary_burst_is_not() -> None:
    days, onset = 16, 12 * DAY_S // 300 + 2 * 12  # a 3x shift from day 12, 02:00 (quiet)
    level = np.ones(days * DAY_S // 300)
    level[onset:] = 3.0
    shifted = _seasonal_busy(days, seed=4, level=level)
    # The shipped rule's configuration (threshold 0.5), surge alone.
    rule = load_rules(DEFAULT_RULES_PATH).rules[0].model_copy(update={"detectors": ["surge"]})
    scores = np.array(_run(build_detector(rule, bucket_s=300), shifted))
    assert scores[2 * DAY_S // 300 : onset].max() < 0.5  # ten ordinary days stay quiet
    found = np.flatnonzero(scores[onset:] >= 0.5)
    assert found.size and found[0] <= 12 * 12  # found within 12 hours of the onset
    # The same series with an ordinary burst (3x for 20 minutes, then gone) instead.
    burst = _seasonal_busy(days, seed=4)
    burst[onset : onset + 4] *= 3
    calm = np.array(_run(build_detector(rule, bucket_s=300), burst))
    assert calm[onset : onset + 12 * 12].max() < 0.5


def test_sparse_series_does_not_score_a_move_from_zero_to_two() -> None:
    rng = np.random.default_rng(5)
    xs = rng.poisson(0.4, 3000).astype(float)
    det = CountSurge(window_buckets=1, bucket_s=300, seasonal=False)
    scores = _run(det, xs)
    assert _run(det, np.array([2.0]), start=3000)[0] == 0.0
    assert max(scores[100:]) < 0.6
    assert _run(det, np.array([15.0]), start=3001)[0] > 0.6  # a real spike still does


def test_signed_series_is_accepted_and_scored() -> None:
    rng = np.random.default_rng(2)
    times = pd.date_range("2026-01-05", periods=600, freq="5min", tz="UTC")
    index = np.clip(rng.normal(0.05, 0.04, 600), -1, 1)
    index[500:520] = -0.5  # the index turns sharply negative
    rule = parse_rules("rules: [{name: r, series: {kind: all}}]").rules[0]
    df = pd.DataFrame({"t": times, "net": index})
    out = detect_frame(df, time_column="t", value_column="net", rule=rule, value_kind="auto")
    assert "score_robust" in out.columns and out["score"].between(0, 1).all()
    assert out["score"].iloc[500] > 0.6 and out["score"].iloc[:500].max() < 0.5
    assert out["decision"].iloc[501:505].all()
    det = RobustLevel(window_buckets=1, min_history_buckets=10)
    frame = SeriesFrame.of(start_s=0, total=[1], negative=[0]).with_value([-0.2])
    assert np.isnan(det.update(frame).score()[0])  # no opinion while young


def test_detect_writes_one_row_per_input_row_in_input_order() -> None:
    rule = parse_rules("rules: [{name: r, series: {kind: all}, detectors: [surge]}]").rules[0]
    t = ["2026-01-05T00:03Z", "2026-01-05T00:00Z", "2026-01-05T00:03:30Z", "2026-01-05T00:09Z"]
    df = pd.DataFrame({"t": t, "v": [1, 2, 3, 4], "note": ["a", "b", "c", "d"]})
    out = detect_frame(df, time_column="t", value_column="v", rule=rule, bucket_s=60)
    assert out["t"].tolist() == t and out["note"].tolist() == ["a", "b", "c", "d"]
    assert out["score"].between(0, 1).all()
    # Rows of one bucket share its result; gaps are zero-count buckets internally.
    assert out["score"].iloc[0] == out["score"].iloc[2]
    with pytest.raises(Exception, match="--value-kind real"):
        detect_frame(
            df.assign(v=[1, -2, 3, 4]),
            time_column="t",
            value_column="v",
            rule=rule,
            value_kind="count",
        )


def test_live_engine_and_detect_give_the_same_scores() -> None:
    rules = parse_rules(
        "rules: [{name: r, series: {kind: all}, detectors: [surge], min_history: 30m}]"
    )
    engine = AlertEngine(rules, bucket_s=60, allowed_lateness_s=0)
    rs = engine._rules[0]
    seen: list[float] = []
    step = rs.step

    def record(frame: SeriesFrame) -> list:
        seen.append(float(rs.detector.score()[engine.index.row(ALL_KEY)]))
        return step(frame)

    rs.step = record  # type: ignore[method-assign]
    rng = np.random.default_rng(4)
    counts = rng.poisson(3, 240)
    counts[200:210] += 40
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    times, k = [], 0
    for minute, c in enumerate(counts):
        for j in range(c):
            at = t0 + timedelta(minutes=minute, seconds=j * 59 / max(c, 1))
            engine.add(scored(f"d{k}", at, sentiment="negative"))
            times.append(at)
            k += 1
    engine.flush()
    df = pd.DataFrame({"t": [t0 + timedelta(minutes=m) for m in range(240)], "v": counts})
    out = detect_frame(df, time_column="t", value_column="v", rule=rules.rules[0], bucket_s=60)
    live = np.nan_to_num(np.array(seen[-240:]))
    assert len(seen) == 240
    np.testing.assert_allclose(live, out["score"].to_numpy(), rtol=1e-12, atol=1e-12)
    assert out["score"].iloc[200:206].max() > 0.5
