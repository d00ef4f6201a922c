"""``finsentinel evaluate``: per-head metrics of a model directory on a labeled file.

Runs the ONNX model through :class:`~models.scoring.Classifier` (the same path
as the stream), and reports per-class precision/recall/F1, accuracy,
macro-F1, the confusion matrix (also as a PNG) and the expected calibration
error before (T = 1) and after the card's temperature.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from models.calibration import expected_calibration_error
from models.data import load_labeled
from models.providers import ProviderName
from models.scoring import Classifier

__all__ = ["evaluate_file", "head_report", "plot_confusion"]

logger = logging.getLogger(__name__)

_UNCALIBRATED = {"sentiment": 1.0, "topic": 1.0}


def head_report(
    probs: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    *,
    uncalibrated: np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics of one head from its (calibrated) probabilities.

    >>> r = head_report(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 1]), ["a", "b"])
    >>> r["accuracy"], r["macro_f1"]
    (1.0, 1.0)
    """
    pred = probs.argmax(axis=-1)
    classes = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, pred, labels=classes, zero_division=0
    )
    present = support > 0
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(label_names)
    }
    before = uncalibrated if uncalibrated is not None else probs
    return {
        "n": len(labels),
        "accuracy": float(np.mean(pred == labels)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "ece_before": expected_calibration_error(before, labels),
        "ece_after": expected_calibration_error(probs, labels),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(labels, pred, labels=classes).tolist(),
        "labels": list(label_names),
    }


def plot_confusion(
    matrix: Sequence[Sequence[int]], label_names: Sequence[str], path: Path, title: str
) -> Path:
    """Save a row-normalised confusion matrix as a PNG (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix, dtype=np.float64)
    norm = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(label_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(label_names)), label_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(label_names)), label_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(label_names) <= 6:
        for (i, j), value in np.ndenumerate(counts):
            ax.text(j, i, str(int(value)), ha="center", va="center", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def evaluate_file(
    model_dir: Path | str | None,
    data_path: Path | str,
    head: str,
    *,
    text_column: str = "text",
    label_column: str = "label",
    out_dir: Path | None = None,
    provider: ProviderName = "cpu",
    variant: str | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Evaluate ``head`` of a model directory on a labeled file.

    With ``out_dir``, writes ``eval_<head>.json`` and ``confusion_<head>.png``.
    """
    clf = Classifier.load(model_dir, provider=provider, variant=variant)
    data = load_labeled(
        data_path,
        head,
        text_column=text_column,
        label_column=label_column,
        topic_labels=clf.card.topic_labels,
    )
    encoded = clf.tokenize(data.texts)
    calibrated = clf.probabilities(encoded, batch_size=batch_size)
    raw = clf.probabilities(encoded, batch_size=batch_size, temperature=_UNCALIBRATED)
    index = 0 if head == "sentiment" else 1
    report = head_report(calibrated[index], data.labels, data.label_names, uncalibrated=raw[index])
    report.update(
        head=head,
        data=str(data_path),
        model_version=clf.card.version,
        variant=clf.variant,
        temperature=clf.card.temperature[head],
    )
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"eval_{head}.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        title = f"{head} ({clf.card.version}, {clf.variant})"
        png = plot_confusion(
            report["confusion_matrix"], data.label_names, out_dir / f"confusion_{head}.png", title
        )
        report["confusion_png"] = str(png)
    return report
