"""Analyst corrections as extra, weighted training rows (no torch).

``finsentinel train --feedback STORE`` reads a feedback store (or its export,
see :mod:`models.feedback`). For each head being trained:

* corrections of documents in the ``train`` split that label the head join its
  training rows, with loss weight ``feedback_weight`` (ordinary rows weigh 1);
* corrections in the ``holdout`` split never join training, and their texts
  are taken out of the ordinary training rows too, so the hold-out stays an
  honest judge of any model trained here;
* a correction whose text is also a validation text (of either head) is left
  out: validation stays on the labeled files' rows only and is never touched.

The counts go to the run's ``data.json`` and from there to the model card.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from models.data import LabeledSet
from models.exceptions import TrainingError
from models.feedback import Correction, load_corrections

__all__ = ["FeedbackRows", "add_feedback", "feedback_rows"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedbackRows:
    """The corrections that join one head's training rows, and what was left out."""

    rows: LabeledSet
    weight: float
    summary: dict[str, Any]


def _label_ids(
    head: str, corrections: Sequence[Correction], names: tuple[str, ...], path: Path
) -> np.ndarray:
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted({str(c.label(head)) for c in corrections if c.label(head) not in index})
    if unknown:
        raise TrainingError(
            f"{path}: {head} correction label(s) {unknown[:5]} are not classes of this "
            f"model ({list(names)})"
        )
    return np.array([index[str(c.label(head))] for c in corrections], dtype=np.int64)


def feedback_rows(
    corrections: Sequence[Correction], splits: Mapping[str, Any], weight: float, path: Path
) -> dict[str, FeedbackRows]:
    """Each trained head's train-split corrections (read from ``path``; see the module).

    ``splits`` maps a head to its ``train`` and ``validation`` :class:`LabeledSet`.
    """
    validation = {t for s in splits.values() for t in s.validation.texts}
    out = {}
    for head, split in splits.items():
        labeled = [c for c in corrections if c.label(head) is not None]
        train = [c for c in labeled if c.split == "train"]
        used = [c for c in train if c.text not in validation]
        names = split.train.label_names
        rows = LabeledSet(head, [c.text for c in used], _label_ids(head, used, names, path), names)
        counts = np.bincount(rows.labels, minlength=len(names)).tolist()
        summary = {
            "file": str(path),
            "weight": weight,
            "used": len(used),
            "holdout_left_out": len(labeled) - len(train),
            "validation_texts_left_out": len(train) - len(used),
            "per_class": {n: c for n, c in zip(names, counts, strict=True) if c},
        }
        out[head] = FeedbackRows(rows, weight, summary)
        logger.info(
            "%s: %s corrections join training (weight %s); %s held out, %s validation texts",
            head, len(used), weight, len(labeled) - len(train), len(train) - len(used),
        )  # fmt: skip
    return out


def add_feedback(
    splits: dict[str, Any],
    path: Path,
    weight: float,
    base_weights: Mapping[str, np.ndarray] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """``splits`` with the corrections appended to training, each head's row weights, summaries.

    Training rows whose text is a hold-out correction's are dropped first.
    ``base_weights`` (head -> one weight per current training row; 1 where a head
    is missing) are carried over for the rows that stay.
    """
    corrections = load_corrections(path)
    extra = feedback_rows(corrections, splits, weight, path)
    holdout = {c.text for c in corrections if c.split == "holdout"}
    out, weights, summaries = {}, {}, {}
    for head, split in splits.items():
        base: LabeledSet = split.train
        keep = np.array([t not in holdout for t in base.texts], dtype=bool)
        if not keep.all():
            base = base.subset(np.flatnonzero(keep))
        rows = extra[head].rows
        out[head] = replace(split, train=base.concat(rows))
        before = (base_weights or {}).get(head)
        kept = (
            np.ones(len(base), dtype=np.float32)
            if before is None
            else np.asarray(before, dtype=np.float32)[keep]
        )
        weights[head] = np.concatenate([kept, np.full(len(rows), weight, dtype=np.float32)])
        summaries[head] = {**extra[head].summary, "holdout_texts_dropped": int((~keep).sum())}
    return out, weights, summaries
