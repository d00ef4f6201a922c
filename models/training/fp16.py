"""Add the CUDA variant to a model directory that ships only its int8 file (no torch).

``python -m models.training.fp16 --model models/default`` writes
``model.fp16.onnx`` from ``model.int8.onnx`` (its weights dequantized, then fp16:
:func:`~models.training.weightonly.fp16_from_weight_only`) and records it in the
card: the file's hash, and in ``parity.fp16`` how it agrees with the int8 file on
CPU over the headline suite. The committed default model carries only int8 (the
fp32 export is 90 MB and not committed), so this is how a CUDA deployment gets the
fp16 file (``deploy/docker/Dockerfile.cuda`` runs it at build time, ``make
model-fp16`` here). Needs ``onnx`` (the ``train`` extra), not torch.

Why fp16 at all: measured on an H200 (``bench/gpu_paths.py``, models/README.md), the
int8 file runs on CUDA at about half the fp16 file's speed (its dequantization
runs on every call and its quantized embedding node is CPU-only). Why from int8
and not from the fp32 export: the CUDA scorer then gives the labels the CPU
scorers give (measured: every label equal, probabilities within 0.003), so a
mixed CPU/GPU consumer group and a CPU backtest agree with each other.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.exceptions import ModelDirError
from models.modeldir import VARIANT_FILES, file_entry, load_model_dir, write_card
from models.training.weightonly import fp16_from_weight_only

__all__ = ["add_fp16_variant", "main"]

logger = logging.getLogger(__name__)


def _suite_texts() -> list[str]:
    from models.checklist.suite import load_suite

    return [h.text for h in load_suite().select("all")]


def _agreement(model_dir: Path, texts: Sequence[str]) -> dict[str, Any]:
    """fp16 against int8 on CPU: the largest probability difference and label agreement."""
    from models.scoring import Classifier

    probs = {}
    for variant in ("int8", "fp16"):
        clf = Classifier.load(model_dir, provider="cpu", variant=variant)
        probs[variant] = clf.probabilities(clf.tokenize(texts))
    report: dict[str, Any] = {"checked": True, "derived_from": "int8", "n_texts": len(texts)}
    report["max_abs_prob_diff_vs_int8"] = {}
    report["argmax_agreement_vs_int8"] = {}
    for i, head in enumerate(("sentiment", "topic")):
        a, b = probs["int8"][i], probs["fp16"][i]
        report["max_abs_prob_diff_vs_int8"][head] = round(float(np.abs(a - b).max()), 6)
        agree = float((a.argmax(axis=1) == b.argmax(axis=1)).mean())
        report["argmax_agreement_vs_int8"][head] = round(agree, 4)
    return report


def add_fp16_variant(model_dir: Path, texts: Sequence[str] | None = None) -> dict[str, Any]:
    """Write ``model_dir``'s fp16 file from its int8 file and record it in the card.

    Replaces an fp16 file (and card entry) already there. ``texts`` (default: the
    headline suite) are scored by both files on CPU for the card's parity entry.
    Returns that entry. Raises :class:`~models.exceptions.ModelDirError` if the
    directory is invalid and ``ValueError`` if its int8 file is not weight-only.
    """
    model_dir = Path(model_dir)
    card = load_model_dir(model_dir).card
    int8 = model_dir / VARIANT_FILES["int8"]
    out = model_dir / VARIANT_FILES["fp16"]
    # Written beside the target and renamed: a reader never sees half a file.
    staging = model_dir / f".{out.name}.{os.getpid()}.tmp"
    try:
        fp16_from_weight_only(int8, staging)
        os.replace(staging, out)
    finally:
        staging.unlink(missing_ok=True)
    files = {**card.files, "fp16": file_entry(model_dir, out.name)}
    write_card(model_dir, card.model_copy(update={"files": files}))
    report = _agreement(model_dir, list(texts) if texts is not None else _suite_texts())
    parity = {**card.parity, "fp16": report}
    write_card(model_dir, card.model_copy(update={"files": files, "parity": parity}))
    logger.info("%s: wrote %s from %s: %s", model_dir, out.name, int8.name, report)
    return report


def main(argv: list[str] | None = None) -> None:
    """Write a model directory's fp16 (CUDA) file from its int8 file (module doc)."""
    parser = argparse.ArgumentParser(prog="python -m models.training.fp16", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", type=Path, required=True, help="the model directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        add_fp16_variant(args.model)
    except (ModelDirError, ValueError) as exc:  # a bad directory or a dynamic int8 file
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":
    main()
