"""Trend windows stay in range whatever the buckets: a property test of issue 18, finding 4.

The running sums subtract the bucket that left; floating-point residue used to
survive in the confidence columns of an emptied window, and the exported mean
(weighted score over confidence) read e.g. 2.5 for a window with no documents.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.aggregate import COLUMNS, CONF, TOTAL, WSCORE, FinalBucket
from alerts.windows import TrendWindows

BUCKET_S = 60
WINDOWS_S = (60, 180, 600)
N_SERIES = 3

# One document: (series row, confidence, sentiment score).
doc = st.tuples(
    st.integers(0, N_SERIES - 1),
    st.floats(0.0, 1.0, allow_nan=False),
    st.floats(-1.0, 1.0, allow_nan=False),
)
# A bucket is a list of documents; an empty list is a quiet bucket (expiries only).
buckets = st.lists(st.lists(doc, max_size=6), min_size=1, max_size=40)


def _bucket(i: int, docs: list[tuple[int, float, float]]) -> FinalBucket:
    stats = np.zeros((N_SERIES, len(COLUMNS)))
    for row, conf, score in docs:
        stats[row, TOTAL] += 1
        stats[row, CONF] += conf
        stats[row, WSCORE] += conf * score
    return FinalBucket(i * BUCKET_S, (i + 1) * BUCKET_S, stats, {}, 0)


@settings(max_examples=300, deadline=None)
@given(buckets)
def test_mean_score_stays_in_range_and_empty_windows_read_nan(
    seq: list[list[tuple[int, float, float]]],
) -> None:
    windows = TrendWindows(bucket_s=BUCKET_S, windows_s=WINDOWS_S)
    for i, docs in enumerate(seq):
        windows.push(_bucket(i, docs))
        for w in WINDOWS_S:
            trend = windows.trend(w)
            recent = [d for b in seq[max(0, i + 1 - w // BUCKET_S) : i + 1] for d in b]
            for row in range(N_SERIES):
                mine = [(c, s) for r, c, s in recent if r == row]
                mean = float(trend.mean_score[row])
                assert trend.total[row] == len(mine)
                conf = math.fsum(c for c, _ in mine)
                if not mine:
                    assert math.isnan(mean), (w, row, mean)
                    continue
                assert math.isnan(mean) or -1.0 <= mean <= 1.0, (w, row, mean)
                if conf > 1e-3:  # well conditioned: the running sum matches a fresh sum
                    expected = math.fsum(c * s for c, s in mine) / conf
                    assert math.isclose(mean, expected, abs_tol=1e-9), (mean, expected)


def test_the_reported_residue_case_reads_nan() -> None:
    """One hour of documents leaves; the 1 h window is empty and its mean is NaN (was 2.5)."""
    windows = TrendWindows(bucket_s=BUCKET_S, windows_s=(3600,))
    rng = np.random.default_rng(18)
    for i in range(60):
        conf = rng.uniform(0.3, 1.0, size=5)
        score = rng.uniform(-1.0, 1.0, size=5)
        windows.push(
            _bucket(i, [(0, float(c), float(s)) for c, s in zip(conf, score, strict=True)])
        )
    for i in range(60, 120):
        windows.push(_bucket(i, []))
    trend = windows.trend(3600)
    assert trend.total[0] == 0
    assert math.isnan(float(trend.mean_score[0]))
