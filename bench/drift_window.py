"""Benchmark: the scorer's drift monitoring per document and per scrape.

Feeds synthetic predictions (the shipped labels: 3 sentiments, 20 topics) through
:class:`stream.scorer.drift.ScorerDrift` in micro-batches, as the scorer does, and
times a scrape of its metrics. Prints microseconds per document and per scrape;
no thresholds (this is not a test). For scale: the int8 model scores a headline
in a few milliseconds on one CPU thread (bench/score_throughput.py). Run:
    .venv/bin/python bench/drift_window.py [--documents 200000] [--window 1000] [--batch 256]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from models.drift import LENGTH_BIN_EDGES, HeadProfile, Reference
from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
from models.scoring import Prediction
from stream.scorer.drift import ScorerDrift


def _predictions(n: int, rng: np.random.Generator) -> list[Prediction]:
    out = []
    for _ in range(n):
        s = rng.dirichlet(np.ones(len(SENTIMENT_LABELS)))
        t = rng.dirichlet(np.ones(len(TOPIC_LABELS)) * 0.3)
        s_probs = dict(zip(SENTIMENT_LABELS, s.tolist(), strict=True))
        t_probs = dict(zip(TOPIC_LABELS, t.tolist(), strict=True))
        out.append(
            Prediction(
                sentiment=SENTIMENT_LABELS[int(s.argmax())],
                sentiment_probs=s_probs,
                topic=TOPIC_LABELS[int(t.argmax())],
                topic_probs=t_probs,
                sentiment_score=s_probs["positive"] - s_probs["negative"],
                n_tokens=int(rng.integers(5, 300)),
                n_chunks=1,
                n_unknown_tokens=int(rng.integers(0, 2)),
            )
        )
    return out


def _reference() -> Reference:
    def head(labels: tuple[str, ...]) -> HeadProfile:
        share = [1 / len(labels)] * len(labels)
        return HeadProfile(
            labels=list(labels), distribution=share, confidence_mean=0.8, low_confidence_ratio=0.1
        )

    bins = len(LENGTH_BIN_EDGES) + 1
    return Reference(
        created_at=datetime.now(UTC),
        n_documents=1000,
        confidence_floor=0.5,
        heads={"sentiment": head(SENTIMENT_LABELS), "topic": head(TOPIC_LABELS)},
        unknown_token_ratio=0.01,
        length_bin_edges=list(LENGTH_BIN_EDGES),
        length_distribution=[1 / bins] * bins,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--window", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()

    registry = CollectorRegistry()
    drift = ScorerDrift(registry, window_documents=args.window)
    drift.use(_reference())
    pool = _predictions(4096, np.random.default_rng(0))
    batches = [
        [pool[(i + j) % len(pool)] for j in range(args.batch)]
        for i in range(0, args.documents, args.batch)
    ]
    started = time.perf_counter()
    for batch in batches:
        drift.observe(batch)
    elapsed = time.perf_counter() - started
    n = len(batches) * args.batch
    print(f"observe: {n:,} documents in {elapsed:.3f} s = {1e6 * elapsed / n:.2f} µs/document")
    scrapes = 200
    started = time.perf_counter()
    for _ in range(scrapes):
        generate_latest(registry)
    per_scrape = (time.perf_counter() - started) / scrapes
    print(f"scrape:  {1e6 * per_scrape:.0f} µs per /metrics of the drift families")


if __name__ == "__main__":
    main()
