"""Benchmark: one evaluation (a final bucket through every rule) over 10,000 series.

The series are pure noise (Poisson counts, a binomial negative share, every series
new at the start: a deployment's first hours); row 0 is the "all" series, the sum
of the topics, as in the service. Prints timings and the alerts raised (noise:
ideally none); no thresholds (this is not a test). Run:
    .venv/bin/python bench/alerts_eval.py [--series 10000] [--buckets 120] [--rules FILE]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from alerts.aggregate import COLUMNS, FinalBucket
from alerts.engine import AlertEngine
from alerts.rules import load_rules
from alerts.series import ALL_KEY
from alerts.settings import DEFAULT_RULES_PATH


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--buckets", type=int, default=120, help="warm-up buckets before timing")
    parser.add_argument("--timed", type=int, default=30)
    parser.add_argument(
        "--rules", default=str(DEFAULT_RULES_PATH), help="rules file (default: shipped)"
    )
    args = parser.parse_args()

    engine = AlertEngine(load_rules(Path(args.rules)))
    engine.index.row(ALL_KEY)
    n_topics, n_sources = 20, 200
    n_tickers = args.series - 1 - n_topics - n_sources
    for i in range(n_topics):
        engine.index.row(("topic", f"topic{i}"))
    for i in range(n_sources):
        engine.index.row(("source", f"source{i}"))
    for i in range(n_tickers):
        engine.index.row(("ticker", f"T{i:05d}"))
    n = len(engine.index)
    rng = np.random.default_rng(0)
    rates = rng.gamma(0.5, 2.0, n)

    def bucket(k: int) -> FinalBucket:
        stats = np.zeros((n, len(COLUMNS)))
        total = rng.poisson(rates)
        neg = rng.binomial(total, 0.25)
        stats[:, 0], stats[:, 1] = total, neg
        stats[:, 2] = total - neg
        stats[:, 4] = total * 0.8
        stats[:, 5] = -neg * 0.7
        stats[0] = stats[1 : 1 + n_topics].sum(axis=0)  # every document has one topic
        return FinalBucket(k * 60, k * 60 + 60, stats, {}, 0)

    buckets = [bucket(k) for k in range(args.buckets + args.timed)]
    t0 = time.perf_counter()
    engine.evaluate(buckets[: args.buckets])
    warm = time.perf_counter() - t0
    times = []
    for b in buckets[args.buckets :]:
        t = time.perf_counter()
        engine.evaluate([b])
        times.append(time.perf_counter() - t)
    print(f"series: {n}, rules: {len(engine.rules.rules)}")
    print(
        f"warm-up: {args.buckets} buckets in {warm:.2f}s ({warm / args.buckets * 1e3:.1f} ms each)"
    )
    print(
        f"evaluation of one bucket over all series: median {statistics.median(times) * 1e3:.1f} ms,"
        f" max {max(times) * 1e3:.1f} ms over {len(times)} buckets"
    )
    print(f"alerts raised: {sum(engine.stats.alerts.values())}")


if __name__ == "__main__":
    main()
