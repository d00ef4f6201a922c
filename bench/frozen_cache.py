"""Training steps with frozen lower layers: recomputed every step vs cached once per text.

Not a test: run it and read the numbers (a Markdown table, then one JSON line)::

    .venv/bin/python bench/frozen_cache.py --encoder runs/encoders/all-mpnet-base-v2

On the same batches (benchmark headlines and comments from ``bench/_corpus.py``,
batches of 32, length-grouped as training groups them), in one run:

* ``uncached``: embeddings and the lowest ``--freeze`` layers frozen, as
  ``TrainConfig.freeze_layers`` alone trains (they still run forward every step);
* ``cached``: the same plus ``cache_frozen_layers``, timed on a second pass over
  the batches, once the cache holds their texts (every epoch after the first);
* ``fill``: the first pass of ``cached``, which computes the frozen part once.

Seconds per optimizer step (forward, backward, AdamW), the mean over the batches,
and the ratio to ``uncached``. ``--encoder`` defaults to the packaged MiniLM (no
download); the teacher's MPNet comes from ``python -m models.training.encoders``.
Run it on a quiet machine: another job on the cores changes every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _corpus import make_corpus

from models.encoding import TextEncoder
from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
from models.training.batches import to_tensors
from models.training.frozencache import cache_lower_layers
from models.training.network import MultiTaskModel, freeze_lower, from_pretrained
from models.training.run import default_base_model


def _batches(encoder_dir: Path, n_batches: int, max_length: int) -> list[list[tuple[int, ...]]]:
    texts = [f"{d.title or ''}\n{d.body or ''}".strip() for d in make_corpus(n_batches * 32)]
    encoder = TextEncoder.from_file(encoder_dir / "tokenizer.json", max_length)
    sequences = sorted(encoder.encode_truncated(texts), key=len)
    return [sequences[i : i + 32] for i in range(0, len(sequences), 32)]


def _model(encoder_dir: Path, freeze: int, cached: bool) -> MultiTaskModel:
    torch.manual_seed(0)
    model = from_pretrained(encoder_dir, len(SENTIMENT_LABELS), len(TOPIC_LABELS))
    freeze_lower(model, embeddings=True, layers=freeze)
    if cached:
        cache_lower_layers(model, freeze)
    return model.train()


def _seconds_per_step(model: MultiTaskModel, batches: list[list[tuple[int, ...]]]) -> float:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    start = time.perf_counter()
    for batch in batches:
        _, topic = model(*to_tensors(batch))
        loss = topic.logsumexp(-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", type=Path, default=None, help="Encoder directory.")
    parser.add_argument("--freeze", type=int, default=6, help="Frozen lower layers.")
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    encoder_dir = args.encoder or Path(default_base_model())
    batches = _batches(encoder_dir, args.batches, args.max_length)
    _seconds_per_step(_model(encoder_dir, args.freeze, cached=False), batches[:1])  # warm-up
    uncached = _seconds_per_step(_model(encoder_dir, args.freeze, cached=False), batches)
    model = _model(encoder_dir, args.freeze, cached=True)
    fill = _seconds_per_step(model, batches)
    cached = _seconds_per_step(model, batches)
    rows = {"uncached": uncached, "fill": fill, "cached": cached}
    print(f"{encoder_dir}: {args.freeze} frozen layers, {len(batches)} batches of 32")
    print("| steps | s/step | vs uncached |\n|---|---|---|")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds:.3f} | {seconds / uncached:.2f}x |")
    summary = {"encoder": str(encoder_dir), "freeze": args.freeze, "threads": args.threads}
    print(json.dumps({**summary, **{k: round(v, 4) for k, v in rows.items()}}))


if __name__ == "__main__":
    main()
