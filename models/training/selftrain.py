"""Self-training: label a head's missing rows with a teacher's confident predictions (torch).

The two public data sets share no texts: a headline has either a sentiment or a
topic label. A teacher (the ``best/`` checkpoint of an earlier run) predicts the
missing head on the *other* heads' training texts; predictions whose
probability reaches a threshold join that head's training rows as hard labels.
The teacher may also be a soft-label file (:mod:`models.training.softlabels`):
its saved logits are used instead of running the teacher again, which for a
110M teacher saves ~20 minutes of a CPU core per run.
Validation rows are never pseudo-labeled and never used as unlabeled texts, so
early stopping and the reported metrics stay on people's labels only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from models.data import LabeledSet
from models.encoding import TextEncoder
from models.exceptions import TrainingError
from models.scoring import softmax
from models.training.loop import predict_logits
from models.training.network import load_checkpoint
from models.training.softlabels import SoftLabels

__all__ = ["PseudoLabels", "extend_train", "pseudo_label", "pseudo_label_from_file"]

logger = logging.getLogger(__name__)


class _Split(Protocol):
    @property
    def train(self) -> LabeledSet: ...


@dataclass(frozen=True)
class PseudoLabels:
    """The rows a teacher labeled for one head, and how many it was offered."""

    rows: LabeledSet
    candidates: int
    threshold: float

    def summary(self) -> dict[str, Any]:
        """JSON-able counts for ``data.json``."""
        counts = np.bincount(self.rows.labels, minlength=len(self.rows.label_names))
        return {
            "candidates": self.candidates,
            "kept": len(self.rows),
            "threshold": self.threshold,
            "per_class": dict(zip(self.rows.label_names, counts.tolist(), strict=True)),
        }


def pseudo_label(
    teacher: Path,
    splits: Mapping[str, _Split],
    heads: tuple[str, ...],
    threshold: float,
    max_length: int,
) -> dict[str, PseudoLabels]:
    """For each of ``heads``, the teacher's confident labels on the other heads' train texts.

    ``teacher`` is a checkpoint directory, or a soft-label file made for the same
    split (see :func:`pseudo_label_from_file`).
    """
    if teacher.is_file():
        return pseudo_label_from_file(teacher, splits, heads, threshold)
    if not (teacher / "tokenizer.json").is_file():
        raise TrainingError(f"teacher {teacher}: not a checkpoint directory (no tokenizer.json)")
    model, _ = load_checkpoint(teacher)
    encoder = TextEncoder.from_file(teacher / "tokenizer.json", max_length)
    out = {}
    for head in heads:
        if head not in splits:
            raise TrainingError(f"self-training {head}: no labeled {head} file to extend")
        texts = [t for other, s in splits.items() if other != head for t in s.train.texts]
        if not texts:
            raise TrainingError(f"self-training {head}: no training texts without {head} labels")
        logger.info("teacher %s labels %s texts for the %s head", teacher, len(texts), head)
        sentiment, topic = predict_logits(model, encoder.encode_truncated(texts))
        logits = sentiment if head == "sentiment" else topic
        names = splits[head].train.label_names
        out[head] = _confident(teacher, head, texts, logits, names, threshold)
    return out


def pseudo_label_from_file(
    source: Path | SoftLabels,
    splits: Mapping[str, _Split],
    heads: tuple[str, ...],
    threshold: float,
) -> dict[str, PseudoLabels]:
    """:func:`pseudo_label` with a soft-label file's saved logits (path or loaded) as teacher.

    The file holds logits for training texts only (its ``meta.split`` is checked by
    the caller against the run's split); a text it has no row for is not a candidate.
    The logits are divided by the teacher's calibration temperature recorded in the
    file (:meth:`SoftLabels.temperature`) before the threshold applies.
    """
    if isinstance(source, SoftLabels):  # already loaded (and split-checked) by the caller
        labels, path = source, f"soft labels of {source.meta.get('teacher', 'a teacher')}"
    else:
        labels, path = SoftLabels.load(source), str(source)
    out = {}
    for head in heads:
        temperature = labels.temperature(head)
        if temperature is None:
            logger.warning(
                "%s records no %s temperature: thresholding the teacher's raw probabilities",
                path,
                head,
            )
        if head not in splits:
            raise TrainingError(f"self-training {head}: no labeled {head} file to extend")
        texts: list[str] = []
        found: list[np.ndarray] = []
        for other, split in splits.items():
            if other == head:
                continue
            logits = labels.lookup(other, split.train.texts)[head]
            have = ~np.isnan(logits).any(axis=1)
            texts += [t for t, ok in zip(split.train.texts, have, strict=True) if ok]
            found.append(logits[have])
        if not texts:
            raise TrainingError(f"self-training {head}: {path} labels none of the other texts")
        logger.info("soft labels %s label %s texts for the %s head", path, len(texts), head)
        logits = np.concatenate(found) / (temperature or 1.0)
        names = splits[head].train.label_names
        out[head] = _confident(path, head, texts, logits, names, threshold)
    return out


def _confident(
    teacher: Path | str,
    head: str,
    texts: list[str],
    logits: np.ndarray,
    names: tuple[str, ...],
    threshold: float,
) -> PseudoLabels:
    probs = softmax(logits)
    if probs.shape[1] != len(names):
        raise TrainingError(
            f"teacher {teacher}: {probs.shape[1]} {head} classes, expected {len(names)}"
        )
    keep = np.flatnonzero(probs.max(axis=1) >= threshold)
    rows = LabeledSet(head, [texts[i] for i in keep], probs.argmax(axis=1)[keep], names)
    logger.info("%s: kept %s of %s pseudo-labels (p >= %s)", head, len(keep), len(texts), threshold)
    return PseudoLabels(rows, len(texts), threshold)


def extend_train(splits: dict[str, Any], labels: Mapping[str, PseudoLabels]) -> dict[str, Any]:
    """``splits`` with each head's pseudo-labeled rows appended to its training rows."""
    return {
        head: replace(split, train=split.train.concat(labels[head].rows))
        if head in labels
        else split
        for head, split in splits.items()
    }
