"""A new deployment's first hours: every series (the "all" one included) is young.

The share test's prior (the "all" series' share) rests on a few documents then:
it must not be taken as exact (a young "all" series that happened to see no
negative document made every young series alert on its first ordinary window).
Pure over-dispersed noise raises no alert with the shipped default rules, while
a clear negative burst after ``min_history`` still fires. Also the beta-binomial
tail the share test uses, against scipy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from alerts.aggregate import COLUMNS, NEG, NEU, TOTAL, FinalBucket
from alerts.baseline import SeriesFrame
from alerts.detectors import ShareSpike
from alerts.engine import AlertEngine
from alerts.rules import load_rules
from alerts.series import ALL_KEY
from alerts.settings import DEFAULT_RULES_PATH
from alerts.stats import betabinom_sf

MONDAY_9H = 1_767_603_600  # 2026-01-05 09:00 UTC
N_TOPICS, N_TICKERS = 2, 6


@pytest.mark.parametrize(
    "k,n,a,b", [(5, 8, 5.0, 15.0), (12, 12, 0.5, 22.5), (1, 3, 2.0, 2.0), (40, 50, 250.0, 750.0)]
)
def test_beta_binomial_tail_matches_scipy(k: int, n: int, a: float, b: float) -> None:
    got = float(betabinom_sf(np.array([k], float), np.array([n], float), [a], [b])[0])
    # scipy's sf is 1 - cdf, which cancels in the far tail: sum its pmf instead.
    want = float(stats.betabinom.pmf(np.arange(k, n + 1), n, a, b).sum())
    assert math.isclose(got, want, rel_tol=1e-9)


def test_a_young_prior_share_is_not_taken_as_exact() -> None:
    det = ShareSpike(window_buckets=5, min_history_buckets=30)  # the default rule's
    all_row, ticker = 0, 1
    # The "all" series' first 30 minutes: 24 documents, none negative (an unlucky start,
    # or a quiet feed); the ticker is brand new (no history of its own).
    for k in range(35):
        total = [1.0 if k % 5 else 0.0, 0.0]
        det.update(SeriesFrame.of(start_s=60 * k, total=total, negative=[0.0, 0.0], prior_row=0))
    for _ in range(5):  # an ordinary window for the ticker: 5 of 12 negative
        det.update(SeriesFrame.of(start_s=0, total=[0, 2.4], negative=[0, 1.0], prior_row=0))
    assert det.get()["volume"][ticker] == 12
    assert det.score()[ticker] < 0.5  # was 1.0: p = 0 against a share of exactly 0
    assert 0 < det.get()["expected"][ticker] < 0.05
    det.update(SeriesFrame.of(start_s=0, total=[0, 30.0], negative=[0, 30.0], prior_row=0))
    assert det.score()[ticker] > 0.5  # a burst of 30 negative documents still fires
    assert np.isnan(det.score()[all_row]) or det.score()[all_row] < 0.5


def _engine() -> AlertEngine:
    engine = AlertEngine(load_rules(DEFAULT_RULES_PATH))
    engine.index.row(ALL_KEY)
    for i in range(N_TOPICS):
        engine.index.row(("topic", f"topic{i}"))
    for i in range(N_TICKERS):
        engine.index.row(("ticker", f"T{i:02d}"))
    return engine


def _noise(minutes: int, seed: int) -> np.ndarray:
    """Negative and other document counts ``(minutes, series, 2)``: over-dispersed
    volumes (variance 3x the mean, so a sparse series is far from Poisson) from 0.3 to
    20 a minute, and a negative share per series from 10 % to 50 %."""
    rng = np.random.default_rng(seed)
    rate = np.geomspace(0.3, 20.0, N_TOPICS + N_TICKERS)
    share = rng.uniform(0.1, 0.5, rate.shape)
    r = rate / 2.0  # negative binomial: variance = rate + rate^2 / r = 3 x rate
    total = rng.negative_binomial(r, r / (r + rate), (minutes, rate.shape[0]))
    neg = rng.binomial(total, share)
    return np.stack([neg, total - neg], axis=-1).astype(float)


def _run(engine: AlertEngine, counts: np.ndarray) -> list[tuple[int, str]]:
    fired = []
    for k, minute in enumerate(counts):
        stats_ = np.zeros((len(engine.index), len(COLUMNS)))
        stats_[1:, NEG], stats_[1:, NEU] = minute[:, 0], minute[:, 1]
        stats_[1:, TOTAL] = minute.sum(axis=1)
        stats_[0] = stats_[1 : 1 + N_TOPICS].sum(axis=0)  # the "all" series
        start = MONDAY_9H + 60 * k
        bucket = FinalBucket(start, start + 60, stats_, {}, 0)
        fired += [(k, a.series) for a in engine.evaluate([bucket]) if a.state == "firing"]
    return fired


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_young_series_on_pure_noise_raise_no_alert(seed: int) -> None:
    assert _run(_engine(), _noise(6 * 60, seed)) == []


def test_a_clear_burst_after_min_history_still_fires() -> None:
    counts = _noise(3 * 60, 0)
    row = N_TOPICS + 3  # ticker T03, about 2 documents a minute
    counts[90:100, row, 0] += 12  # ten minutes of 12 extra negative documents a minute
    fired = _run(_engine(), counts)
    assert [s for _, s in fired] == ["T03"]
    assert 90 <= fired[0][0] < 100
