"""``finsentinel classify``: score a table of texts with a model directory (no torch).

Uses :class:`~models.scoring.Classifier`, the stream's code path. Output has
the input columns plus ``sentiment``, ``sentiment_score``,
``sentiment_prob_<label>``, ``topic``, ``topic_prob`` (of the chosen topic),
``topic_probs`` (JSON object of all topics), ``n_tokens`` and ``n_chunks``.
Rows with an empty text keep empty prediction columns.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from models.data import read_table, write_table
from models.exceptions import DataError
from models.scoring import Classifier, Prediction

__all__ = ["classify_file", "classify_frame"]

logger = logging.getLogger(__name__)

_BLOCK = 512  # rows per progress update; large enough to batch well


def _row(pred: Prediction) -> dict[str, Any]:
    row: dict[str, Any] = {"sentiment": pred.sentiment, "sentiment_score": pred.sentiment_score}
    row.update({f"sentiment_prob_{k}": v for k, v in pred.sentiment_probs.items()})
    row.update(
        topic=pred.topic,
        topic_prob=pred.topic_probs[pred.topic],
        topic_probs=json.dumps(pred.topic_probs),
        n_tokens=pred.n_tokens,
        n_chunks=pred.n_chunks,
    )
    return row


def classify_frame(
    frame: pd.DataFrame,
    classifier: Classifier,
    *,
    text_column: str = "text",
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """``frame`` with prediction columns added; ``progress(n)`` after each block of rows."""
    if text_column not in frame.columns:
        raise DataError(f"no column {text_column!r} (columns: {list(frame.columns)})")
    texts = frame[text_column].fillna("").astype(str)
    scorable = [i for i, t in enumerate(texts) if t.strip()]
    if len(scorable) < len(texts):
        logger.warning("%s rows have an empty text and are not scored", len(texts) - len(scorable))
    rows: dict[int, dict[str, Any]] = {}
    for start in range(0, len(scorable), _BLOCK):
        block = scorable[start : start + _BLOCK]
        preds = classifier.predict([texts.iloc[i] for i in block], batch_size=batch_size)
        rows.update({i: _row(p) for i, p in zip(block, preds, strict=True)})
        if progress is not None:
            progress(len(block))
    predictions = pd.DataFrame.from_dict(rows, orient="index").reindex(range(len(frame)))
    predictions.index = frame.index
    clash = [c for c in predictions.columns if c in frame.columns]
    return pd.concat([frame.drop(columns=clash), predictions], axis=1)


def classify_file(
    classifier: Classifier,
    input_path: Path,
    output_path: Path,
    *,
    text_column: str = "text",
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Classify ``input_path`` into ``output_path`` (formats by extension); returns rows."""
    frame = read_table(input_path)
    if text_column not in frame.columns:
        raise DataError(f"{input_path}: no column {text_column!r} (columns: {list(frame.columns)})")
    out = classify_frame(
        frame, classifier, text_column=text_column, batch_size=batch_size, progress=progress
    )
    write_table(out, output_path)
    return len(out)
