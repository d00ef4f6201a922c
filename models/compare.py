"""Compare two model directories and decide whether the new one may be promoted (no torch).

Both models score the same rows, per head:

* the **frozen validation split** of the recipe: the rows training holds out
  (:func:`models.data.stratified_split` with the recipe's fraction and seed, or
  a training run's ``val_<head>.csv``), so retraining never sees them;
* the **feedback hold-out**: analysts' corrections whose ``split`` is
  ``holdout`` (a stable hash of the document id puts 20 % there; those rows
  are never trained on).

The gate: the new model is promotable only if, on every head of the frozen
validation, its macro-F1 is at most ``max_loss`` below the old model's, **and**
on the feedback hold-out it is strictly better: more correct labels over all
heads with labels together (a small hold-out has too few rows per class for a
per-head macro-F1 to decide).

>>> gate(
...     {"sentiment": {"old": {"macro_f1": 0.80}, "new": {"macro_f1": 0.795}}},
...     {"old_correct": 6, "new_correct": 9, "n": 10},
...     max_loss=0.01,
... )
[]
>>> for reason in gate({}, {"old_correct": 6, "new_correct": 6, "n": 10}, max_loss=0.01):
...     print(reason)
no frozen validation rows to compare on
feedback hold-out: new 6/10 correct, not more than old 6/10
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from models.data import (
    RECIPE_FILES,
    RECIPE_SEED,
    RECIPE_VAL_FRACTION,
    LabeledSet,
    head_labels,
    load_labeled,
    map_labels,
    read_table,
    stratified_split,
)
from models.evaluate import head_report
from models.exceptions import DataError
from models.labels import HEADS
from models.providers import ProviderName
from models.registry import card_sha256
from models.scoring import Classifier

__all__ = [
    "DEFAULT_MAX_LOSS",
    "REPORT_FORMAT",
    "compare_models",
    "frozen_validation",
    "gate",
    "read_feedback_holdout",
]

logger = logging.getLogger(__name__)

#: Largest macro-F1 drop per head on the frozen validation that still passes the gate.
DEFAULT_MAX_LOSS: Final = 0.01
#: Version of the report's JSON layout.
REPORT_FORMAT: Final = 1
_HOLDOUT: Final = "holdout"


def frozen_validation(
    data: Path | str,
    *,
    topic_labels: tuple[str, ...] | list[str],
    val_fraction: float = RECIPE_VAL_FRACTION,
    seed: int = RECIPE_SEED,
) -> dict[str, LabeledSet]:
    """The validation rows of each head found in ``data``.

    ``data`` is a training run directory (its ``val_<head>.csv``: exactly the
    rows that run held out) or a directory with the recipe's files
    (:data:`~models.data.RECIPE_FILES`), split as training splits them.
    """
    root = Path(data)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory (give the recipe's data or a training run)")
    held_out = {h: root / f"val_{h}.csv" for h in HEADS if (root / f"val_{h}.csv").is_file()}
    if _is_run_dir(root):
        return {
            head: load_labeled(path, head, topic_labels=topic_labels)
            for head, path in held_out.items()
        }
    found = {h: root / name for h, name in RECIPE_FILES.items() if (root / name).is_file()}
    if not found:
        wanted = ", ".join([*RECIPE_FILES.values(), "val_sentiment.csv", "val_topic.csv"])
        raise DataError(f"{root}: none of {wanted} is there")
    sets = {}
    for head, path in found.items():
        rows = load_labeled(path, head, topic_labels=topic_labels)
        _, val_index = stratified_split(rows.labels, val_fraction, seed)
        sets[head] = rows.subset(val_index)
    return sets


def _is_run_dir(root: Path) -> bool:
    """Whether ``root`` holds a training run's held-out rows (``val_<head>.csv``)."""
    return any((root / f"val_{h}.csv").is_file() for h in HEADS)


def read_feedback_holdout(
    path: Path | str, *, topic_labels: tuple[str, ...] | list[str]
) -> dict[str, LabeledSet]:
    """The ``split == "holdout"`` corrections of a feedback export, per head with labels.

    The export (CSV or JSON Lines) has columns ``doc_id, text, sentiment, topic,
    note, created_at, split``; an empty ``sentiment`` or ``topic`` means the
    analyst did not correct that head. The last row of a ``doc_id`` wins.
    """
    path = Path(path)
    frame = read_table(path)
    missing = {"doc_id", "text", "split"} - set(frame.columns)
    if missing:
        raise DataError(f"{path}: not a feedback export, missing column(s) {sorted(missing)}")
    if "created_at" in frame.columns:
        frame = frame.sort_values("created_at", kind="stable")
    frame = frame.drop_duplicates(subset="doc_id", keep="last")
    split = frame["split"].fillna("").astype(str).str.strip().str.lower()
    frame = frame[split == _HOLDOUT]
    sets = {}
    for head in HEADS:
        if head not in frame.columns:
            continue
        labels = _text(frame[head])
        texts = _text(frame["text"])
        rows = frame[(labels != "") & (texts != "")]
        if rows.empty:
            continue
        names = head_labels(head, topic_labels)
        ids = map_labels(_text(rows[head]), head, names, path)
        sets[head] = LabeledSet(head, _text(rows["text"]).tolist(), ids, names)
    return sets


def _text(values: pd.Series) -> pd.Series:
    return values.fillna("").astype(str).str.strip()


def _score(classifier: Classifier, sets: Mapping[str, LabeledSet]) -> dict[str, dict[str, Any]]:
    """Accuracy, macro-F1 and correct count of ``classifier`` on each head's rows."""
    out = {}
    for head, rows in sets.items():
        if not len(rows):
            continue
        probs = classifier.probabilities(classifier.tokenize(rows.texts))[HEADS.index(head)]
        report = head_report(probs, rows.labels, rows.label_names)
        correct = int(np.sum(probs.argmax(axis=-1) == rows.labels))
        out[head] = {
            "n": len(rows),
            "accuracy": report["accuracy"],
            "macro_f1": report["macro_f1"],
            "correct": correct,
        }
    return out


def _side_by_side(
    old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    return {head: {"old": old[head], "new": new[head]} for head in old}


def gate(
    validation: Mapping[str, Mapping[str, Any]],
    holdout: Mapping[str, int],
    *,
    max_loss: float,
) -> list[str]:
    """Why the new model is not promotable (empty: it is); see the module docstring."""
    reasons = []
    if not validation:
        reasons.append("no frozen validation rows to compare on")
    for head, pair in validation.items():
        loss = pair["old"]["macro_f1"] - pair["new"]["macro_f1"]
        if loss > max_loss + 1e-12:
            reasons.append(
                f"{head}: frozen-validation macro-F1 falls by {loss:.4f} "
                f"({pair['old']['macro_f1']:.4f} -> {pair['new']['macro_f1']:.4f}), "
                f"more than the allowed {max_loss}"
            )
    n, old, new = holdout["n"], holdout["old_correct"], holdout["new_correct"]
    if n == 0:
        reasons.append("no labeled feedback hold-out rows to win on")
    elif new <= old:
        reasons.append(f"feedback hold-out: new {new}/{n} correct, not more than old {old}/{n}")
    return reasons


def _identity(classifier: Classifier) -> dict[str, Any]:
    card = classifier.card
    return {
        "path": str(classifier.model_dir.path),
        "name": card.name,
        "version": card.version,
        "card_sha256": card_sha256(classifier.model_dir.path),
        "variant": classifier.variant,
    }


def compare_models(
    old_dir: Path | str,
    new_dir: Path | str,
    *,
    data: Path | str,
    feedback: Path | str | None = None,
    max_loss: float = DEFAULT_MAX_LOSS,
    val_fraction: float = RECIPE_VAL_FRACTION,
    seed: int = RECIPE_SEED,
    provider: ProviderName = "cpu",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Score both models on the frozen validation and the feedback hold-out; the report.

    The report (JSON-ready) holds both models' identities, per-head metrics of
    each side, the gate's margin, ``promotable`` and the ``reasons`` it is not.
    """
    if not 0 <= max_loss < 1:
        raise DataError(f"max_loss must be in [0, 1), not {max_loss}")
    old = Classifier.load(old_dir, provider=provider)
    new = Classifier.load(new_dir, provider=provider)
    if old.card.topic_labels != new.card.topic_labels:
        raise DataError(
            f"{old_dir} and {new_dir} have different topic labels; their topic heads "
            "cannot be compared on the same rows"
        )
    labels = old.card.topic_labels
    validation_sets = frozen_validation(
        data, topic_labels=labels, val_fraction=val_fraction, seed=seed
    )
    feedback_sets = read_feedback_holdout(feedback, topic_labels=labels) if feedback else {}
    validation = _side_by_side(_score(old, validation_sets), _score(new, validation_sets))
    holdout_heads = _side_by_side(_score(old, feedback_sets), _score(new, feedback_sets))
    combined = {
        "n": sum(p["old"]["n"] for p in holdout_heads.values()),
        "old_correct": sum(p["old"]["correct"] for p in holdout_heads.values()),
        "new_correct": sum(p["new"]["correct"] for p in holdout_heads.values()),
    }
    reasons = gate(validation, combined, max_loss=max_loss)
    return {
        "format": REPORT_FORMAT,
        "created_at": (now or datetime.now(UTC)).isoformat(),
        "old": _identity(old),
        "new": _identity(new),
        "data": {
            "validation": str(data),
            "held_out_by": "run" if _is_run_dir(Path(data)) else "recipe split",
            "val_fraction": val_fraction,
            "seed": seed,
            "feedback": str(feedback) if feedback else None,
        },
        "max_loss_macro_f1": max_loss,
        "validation": validation,
        "feedback_holdout": {"heads": holdout_heads, "combined": combined},
        "promotable": not reasons,
        "reasons": reasons,
    }
