"""Prediction columns for a table of texts, with their types fixed.

Output has the input columns plus ``sentiment``, ``sentiment_score``,
``sentiment_prob_<label>``, ``topic``, ``topic_prob`` (of the chosen topic),
``topic_probs`` (every topic's probability: a ``dict`` here, written as a
Parquet ``map<string, double>``, a JSON object in JSONL and JSON text in CSV),
``n_tokens`` and ``n_chunks`` (``int64``; 0 for a row with an empty text, whose
other prediction columns stay empty), ``detected_language`` and
``unsupported_reason`` (``language``, ``no_text`` or empty: whether the model
could read the text, as in the stream; see :mod:`models.lang`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from models.exceptions import DataError
from models.lang import check_text
from models.scoring import Classifier, Prediction

__all__ = ["INT_COLUMNS", "arrow_schema", "classify_frame"]

logger = logging.getLogger(__name__)

#: Prediction columns that are counts: integers in every format, 0 for an empty text.
INT_COLUMNS = ("n_tokens", "n_chunks")


def _row(pred: Prediction, text: str) -> dict[str, Any]:
    row: dict[str, Any] = {"sentiment": pred.sentiment, "sentiment_score": pred.sentiment_score}
    row.update({f"sentiment_prob_{k}": v for k, v in pred.sentiment_probs.items()})
    row.update(
        topic=pred.topic,
        topic_prob=pred.topic_probs[pred.topic],
        topic_probs=dict(pred.topic_probs),
        n_tokens=pred.n_tokens,
        n_chunks=pred.n_chunks,
    )
    readable = check_text(text)
    row.update(detected_language=readable.language, unsupported_reason=readable.unsupported_reason)
    return row


def _columns(classifier: Classifier) -> list[str]:
    sentiments = [f"sentiment_prob_{s}" for s in classifier.card.sentiment_labels]
    head = ["sentiment", "sentiment_score", *sentiments, "topic", "topic_prob", "topic_probs"]
    return [*head, "detected_language", "unsupported_reason"]


def arrow_schema(frame: pd.DataFrame, classifier: Classifier) -> pa.Schema:
    """The Parquet schema of ``frame`` classified: its own columns, as pyarrow reads
    the whole input, then the typed prediction columns."""
    predicted: dict[str, pa.DataType] = dict.fromkeys(_columns(classifier), pa.float64())
    predicted.update(
        sentiment=pa.string(),
        topic=pa.string(),
        topic_probs=pa.map_(pa.string(), pa.float64()),
        detected_language=pa.string(),
        unsupported_reason=pa.string(),
    )
    predicted.update(dict.fromkeys(INT_COLUMNS, pa.int64()))
    own = pa.Schema.from_pandas(
        frame.drop(columns=list(predicted), errors="ignore"), preserve_index=False
    )
    fields = [*own, *(pa.field(name, t) for name, t in predicted.items())]
    return pa.schema(fields)


def classify_frame(
    frame: pd.DataFrame,
    classifier: Classifier,
    *,
    text_column: str = "text",
    batch_size: int = 64,
) -> pd.DataFrame:
    """``frame`` with the prediction columns added (see the module docstring)."""
    if text_column not in frame.columns:
        raise DataError(f"no column {text_column!r} (columns: {list(frame.columns)})")
    texts = frame[text_column].fillna("").astype(str)
    scorable = [i for i, t in enumerate(texts) if t.strip()]
    if len(scorable) < len(texts):
        logger.debug("%s rows have an empty text and are not scored", len(texts) - len(scorable))
    preds = classifier.predict([texts.iloc[i] for i in scorable], batch_size=batch_size)
    rows = {i: _row(p, texts.iloc[i]) for i, p in zip(scorable, preds, strict=True)}
    predictions = pd.DataFrame.from_dict(rows, orient="index", columns=_columns(classifier))
    predictions = predictions.reindex(range(len(frame)))
    empty = [i for i in range(len(frame)) if i not in rows]
    predictions.loc[empty, "unsupported_reason"] = "no_text"
    for name in INT_COLUMNS:
        counts = np.zeros(len(frame), dtype=np.int64)
        for i, r in rows.items():
            counts[i] = r[name]
        predictions[name] = counts
    predictions["topic_probs"] = [
        rows[i]["topic_probs"] if i in rows else None for i in range(len(frame))
    ]
    predictions.index = frame.index
    clash = [c for c in predictions.columns if c in frame.columns]
    return pd.concat([frame.drop(columns=clash), predictions], axis=1)
