"""Two model directories side by side: throughput and batch dependence of their int8 files.

Made to compare the weight-only int8 layout (0.3.1, models/training/weightonly.py)
with the dynamic int8 it replaced (0.3.0). Get 0.3.0 from git history::

    mkdir -p /tmp/m030 && for f in model.int8.onnx model_card.json tokenizer.json; do
      git show a757e94:models/default/$f > /tmp/m030/$f; done
    .venv/bin/python bench/int8_layouts.py --baseline /tmp/m030

Prints, for each model, bare-inference docs/s on the throughput corpus (the same
code as bench/score_throughput.py's stage (a), interleaved repeats) and how far a
document's scores move between being scored in a batch and alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpus import make_corpus
from score_throughput import bench_bare, machine

from models.scoring import Classifier


def batch_dependence(classifier: Classifier, texts: list[str]) -> tuple[float, int]:
    """Largest sentiment-score move and label flips, batch of 64 vs one by one."""
    together = classifier.predict(texts, batch_size=64)
    alone = [classifier.predict([t], batch_size=1)[0] for t in texts]
    pairs = list(zip(together, alone, strict=True))
    moved = max(abs(a.sentiment_score - b.sentiment_score) for a, b in pairs)
    flips = sum((a.sentiment, a.topic) != (b.sentiment, b.topic) for a, b in pairs)
    return moved, flips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="model directory A")
    parser.add_argument("--model", type=Path, default=None, help="model directory B [shipped]")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    texts = [d.text for d in make_corpus(args.docs)]
    models = {
        "baseline": Classifier.load(args.baseline, provider="cpu"),
        "model": Classifier.load(args.model, provider="cpu"),
    }
    print(machine())
    speed: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, classifier in models.items():
            speed[name].append(bench_bare(classifier, texts, 64))
    for name, classifier in models.items():
        moved, flips = batch_dependence(classifier, texts[:300])
        card = classifier.card
        print(
            f"{name}: {card.name} {card.version}: best {max(speed[name]):.1f} docs/s "
            f"(runs {', '.join(f'{s:.1f}' for s in speed[name])}); batch of 64 vs alone on "
            f"300 docs: sentiment score moves up to {moved:.2g}, {flips} label flips"
        )
    print(f"model / baseline throughput: {max(speed['model']) / max(speed['baseline']):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
