"""Model directories side by side: validation quality from each card, then speed measured here.

Not a test: run it and read the numbers (a Markdown table, then one JSON line)::

    .venv/bin/python bench/model_variants.py --model models/default --model models/accurate

For each model directory, in one run on the same corpus and threads:

* accuracy and macro-F1 of both heads on the validation split, as recorded in
  the card by ``finsentinel export`` (the variant that is loaded: int8 on CPU);
* docs/s of the scoring core (``Classifier.predict``, batches of 64) over the
  benchmark corpus (``bench/_corpus.py``: headlines, comments, 10 % article
  snippets), best of ``--repeats``;
* single-document latency (one headline per call): p50 and p95 in milliseconds.

Ratios are against the first model. Run it on a quiet machine: another job on
the cores changes every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpus import make_corpus

from models.scoring import Classifier


def _quality(classifier: Classifier) -> dict[str, Any]:
    """The card's validation figures of the loaded variant (head -> variant -> metrics)."""
    validation = classifier.card.metrics.get("validation", {})
    variant = classifier.variant.removeprefix("model.").removesuffix(".onnx")
    variant = "fp32" if variant == "model" else variant
    out = {}
    for head in ("sentiment", "topic"):
        by_variant = validation.get(head, {})
        found = by_variant.get(variant) or by_variant.get("fp32") or {}
        out[head] = {k: found.get(k) for k in ("accuracy", "macro_f1")}
    return out


def _throughput(classifier: Classifier, texts: list[str], repeats: int) -> float:
    classifier.predict(texts[:64])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        classifier.predict(texts, batch_size=64)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def single_doc_latency(classifier: Classifier, texts: list[str]) -> tuple[float, float]:
    """p50 and p95 milliseconds of one-text calls, after one untimed call per text (on CUDA
    the first call of each new input shape is slower: kernel and algorithm selection)."""
    for text in texts:
        classifier.predict([text])
    times = []
    for text in texts:
        start = time.perf_counter()
        classifier.predict([text])
        times.append((time.perf_counter() - start) * 1000)
    cuts = statistics.quantiles(times, n=20)
    return statistics.median(times), cuts[18]


def measure(model: Path, texts: list[str], short: list[str], args: argparse.Namespace) -> dict:
    classifier = Classifier.load(
        model, provider=args.provider, intra_op_threads=args.threads or None
    )
    quality = _quality(classifier)
    docs_s = _throughput(classifier, texts, args.repeats)
    p50, p95 = single_doc_latency(classifier, short)
    return {
        "model": str(model),
        "name": f"{classifier.card.name} {classifier.card.version}",
        "variant": classifier.variant,
        "provider": classifier.provider,
        "quality": quality,
        "docs_per_s": round(docs_s, 1),
        "latency_ms_p50": round(p50, 2),
        "latency_ms_p95": round(p95, 2),
    }


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", required=True)
    parser.add_argument("--docs", type=int, default=1000, help="corpus size for docs/s")
    parser.add_argument("--latency-docs", type=int, default=200, help="single-doc calls")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads; 0: ORT's")
    parser.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args(argv)
    corpus = make_corpus(args.docs)
    texts = [f"{d.title or ''}\n{d.body or ''}".strip() for d in corpus]
    short = [d.title or d.body or "" for d in corpus[: args.latency_docs]]
    rows = [measure(model, texts, short, args) for model in args.model]
    base = rows[0]
    print(
        "| model | variant | sentiment acc / F1 | topic acc / F1 | docs/s | ratio | "
        "latency p50 / p95 (ms) |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        s, t = row["quality"]["sentiment"], row["quality"]["topic"]
        ratio = row["docs_per_s"] / base["docs_per_s"]
        print(
            f"| {row['name']} | {row['variant']} ({row['provider']}) | "
            f"{_fmt(s['accuracy'])} / {_fmt(s['macro_f1'])} | "
            f"{_fmt(t['accuracy'])} / {_fmt(t['macro_f1'])} | {row['docs_per_s']} | "
            f"{ratio:.2f}x | {row['latency_ms_p50']} / {row['latency_ms_p95']} |"
        )
    print(json.dumps({"docs": len(texts), "threads": args.threads, "models": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
