"""Benchmark: detection quality on realistic count series, scored with NAB's rules.

Generates a fixed-seed corpus (alerts/backtest/counts.py: over-dispersed,
seasonal, drifting, bursty and sparse series with labeled anomalies), runs each
detector configuration over every series causally (the code `alerts detect`
runs), and prints per configuration: NAB standard / reward-low-FP /
reward-low-FN (best threshold per profile, 0 = never fires, 100 = perfect),
alerts per series per day on stretches without a labeled anomaly (outside the
NAB windows; the rule's own threshold and hysteresis), and the median delay
from onset to the rule's first firing. Prints numbers; not a test. Run:

    .venv/bin/python bench/alerts_quality.py [--series 60] [--days 55] [--seed 15]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import special

from alerts.backtest.counts import CountCorpus, generate_corpus
from alerts.backtest.nab import PROFILES, ScoredSeries, best_threshold
from alerts.backtest.offline import detect_matrix
from alerts.rules import Rule, load_rules, parse_rules
from alerts.settings import DEFAULT_RULES_PATH

#: The shipped rule before issue 15 (count + share; `detect` without totals runs count only).
OLD_RULE = """
rules:
  - {name: old-count, series: {kind: ticker}, detectors: [count], window: 5m, threshold: 0.5,
     min_negative: 5, min_history: 30m, baseline_half_life: 1h, hold: 2m, clear: 10m,
     cooldown: 30m}
"""

Result = tuple[np.ndarray, np.ndarray | None]  # scores, fired edges (None: no hysteresis)


def run_rule(rule: Rule, corpus: CountCorpus) -> Result:
    """Scores and fired edges of a rule over the whole corpus (all series at once)."""
    dets = [d for d in rule.detectors if d != "share"]
    rule = rule.model_copy(update={"detectors": dets})
    res = detect_matrix(corpus.counts, corpus.starts_s, rule=rule, bucket_s=corpus.bucket_s)
    return res["score"], res["fired"] > 0


def windowed_gaussian(corpus: CountCorpus, days: float = 6.0) -> Result:
    """Rolling z-score over the previous ``days`` (NAB's windowed-Gaussian idea)."""
    w = int(days * 86_400 / corpus.bucket_s)
    df = pd.DataFrame(corpus.counts)
    past = df.shift(1).rolling(w, min_periods=288)
    z = (df - past.mean()) / past.std().clip(lower=1e-9)
    return special.ndtr(z.to_numpy()), None


def _quiet_alerts(fired: np.ndarray, corpus: CountCorpus) -> tuple[float, float]:
    """Mean and max over series of firing edges per day outside every NAB window."""
    per_day = 86_400 / corpus.bucket_s
    rates = []
    for j, labels in enumerate(corpus.labels):
        s = ScoredSeries(np.zeros(fired.shape[0]), labels)
        quiet = np.ones(fired.shape[0], dtype=bool)
        for left, right in s.windows:
            quiet[left : right + 1] = False
        rates.append(fired[quiet, j].sum() / (quiet.sum() / per_day))
    return float(np.mean(rates)), float(np.max(rates))


def _delay_min(fired: np.ndarray, corpus: CountCorpus) -> tuple[float, int]:
    """Median minutes from onset to the first firing within the NAB window; detected count."""
    delays = []
    for j, labels in enumerate(corpus.labels):
        s = ScoredSeries(np.zeros(fired.shape[0]), labels)
        for row, (_left, right) in zip(labels, s.windows, strict=True):
            hits = np.flatnonzero(fired[row : right + 1, j])
            if hits.size:
                delays.append(hits[0] * corpus.bucket_s / 60)
    return (float(np.median(delays)) if delays else float("nan")), len(delays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=60)
    parser.add_argument("--days", type=float, default=55)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--only", default="", help="run the configurations whose name has this")
    args = parser.parse_args()
    t0 = time.perf_counter()
    corpus = generate_corpus(n_series=args.series, days=args.days, seed=args.seed)
    kinds = pd.Series([a.kind for a in corpus.anomalies]).value_counts().to_dict()
    zeros = (corpus.counts == 0).mean(axis=0)
    print(
        f"corpus: {corpus.counts.shape[1]} series x {corpus.counts.shape[0]} buckets of "
        f"{corpus.bucket_s}s, seed {args.seed}; means {corpus.means.min():.1f}..."
        f"{corpus.means.max():.1f}; zero buckets {zeros.min():.0%}..{zeros.max():.0%}; "
        f"{len(corpus.anomalies)} labeled anomalies {kinds} ({time.perf_counter() - t0:.1f}s)"
    )
    default = load_rules(DEFAULT_RULES_PATH).rules[0]
    configs: dict[str, Callable[[], Result]] = {
        f"default rule ({'+'.join(default.detectors)})": lambda: run_rule(default, corpus),
        "old rule (count)": lambda: run_rule(parse_rules(OLD_RULE).rules[0], corpus),
        "windowed Gaussian (6 d)": lambda: windowed_gaussian(corpus),
    }
    header = (
        f"{'detector':<34} {'standard':>8} {'low FP':>7} {'low FN':>7} {'thr':>6} "
        f"{'quiet alerts/series/day':>24} {'delay min':>9} {'found':>6} {'s':>5}"
    )
    print(header)
    for name, run in configs.items():
        if args.only not in name:
            continue
        t = time.perf_counter()
        scores, fired = run()
        elapsed = time.perf_counter() - t
        series = [ScoredSeries(scores[:, j], ls) for j, ls in enumerate(corpus.labels)]
        nab = {p: best_threshold(series, prof) for p, prof in PROFILES.items()}
        if fired is None:  # no hysteresis: rising edges at the best standard threshold
            above = np.nan_to_num(scores) >= nab["standard"].threshold
            fired = above & ~np.vstack([np.zeros((1, above.shape[1]), bool), above[:-1]])
        mean_q, max_q = _quiet_alerts(fired, corpus)
        delay, found = _delay_min(fired, corpus)
        print(
            f"{name:<34} {nab['standard'].score:8.1f} {nab['reward_low_fp'].score:7.1f} "
            f"{nab['reward_low_fn'].score:7.1f} {nab['standard'].threshold:6.3f} "
            f"{f'mean {mean_q:.2f}, max {max_q:.2f}':>24} {delay:9.0f} "
            f"{f'{found}/{len(corpus.anomalies)}':>6} {elapsed:5.0f}"
        )


if __name__ == "__main__":
    main()
