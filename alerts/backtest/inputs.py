"""Backtest inputs: archive days, or one Parquet/CSV file of scored documents.

The archive is read one UTC day at a time (memory bounded by a day of the
needed columns). An input file is read whole; its columns:

* required: ``published_at`` (ISO-8601 or a timestamp), ``sentiment``
  (negative/neutral/positive);
* optional: ``id`` (default: the row number), ``source`` (``unknown``),
  ``topic`` or ``topic_label`` (``unknown``), ``tickers`` (a list, or a string
  separated by ``;`` or ``,``), ``p_negative``/``p_neutral``/``p_positive``
  (default 1.0 for the labelled class), ``sentiment_score``, ``title``,
  ``body``, ``url``.

A file exported by ``finsentinel replay --out`` or the archive's own Parquet
files qualify as they are.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alerts.backtest.frames import BUCKET_COLUMNS
from alerts.exceptions import InputError
from stream.contracts.schemas import SENTIMENT_LABELS
from stream.history.query import HistoryQuery, iter_days

__all__ = ["archive_tables", "file_tables"]


def archive_tables(
    root: Path,
    *,
    start: datetime | None,
    end: datetime | None,
    sources: Sequence[str] = (),
    tickers: Sequence[str] = (),
    topics: Sequence[str] = (),
) -> Iterator[tuple[str, pa.Table]]:
    """``(date, table)`` of archived scored documents per day, sorted by ``published_at``."""
    query = HistoryQuery("scored", start, end, tuple(sources), tuple(tickers), tuple(topics))
    yield from iter_days(root, query, columns=BUCKET_COLUMNS)


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: no such input file")
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path, dtype={"id": str})
        if path.suffix.lower() in (".parquet", ".pq"):
            return pq.read_table(path).to_pandas()
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
    raise InputError(f"{path}: expected a .parquet or .csv file")


def _tickers(value: object) -> list[str]:
    if isinstance(value, list | tuple | np.ndarray):
        return [str(v) for v in value]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    text = str(value).replace(",", ";")
    return [t.strip() for t in text.split(";") if t.strip()]


def _normalise(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    missing = {"published_at", "sentiment"} - set(df.columns)
    if missing:
        raise InputError(f"{path}: missing required columns {sorted(missing)}")
    out = pd.DataFrame()
    try:
        out["published_at"] = pd.to_datetime(df["published_at"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: published_at is not a time column: {exc}") from exc
    sentiment = df["sentiment"].astype(str).str.lower()
    bad = sorted(set(sentiment) - set(SENTIMENT_LABELS))
    if bad:
        raise InputError(
            f"{path}: unknown sentiment values {bad[:5]} (use {list(SENTIMENT_LABELS)})"
        )
    out["sentiment"] = sentiment
    n = len(df)
    out["id"] = df["id"].astype(str) if "id" in df else [f"row-{i}" for i in range(n)]
    out["source"] = df["source"].astype(str) if "source" in df else "unknown"
    topic = next((c for c in ("topic_label", "topic") if c in df), None)
    out["topic_label"] = df[topic].astype(str) if topic else "unknown"
    out["tickers"] = df["tickers"].map(_tickers) if "tickers" in df else [[] for _ in range(n)]
    for s in SENTIMENT_LABELS:
        col = f"p_{s}"
        out[col] = df[col].astype(float) if col in df else (sentiment == s).astype(float)
    default_score = out["p_positive"] - out["p_negative"]
    out["sentiment_score"] = df.get("sentiment_score", default_score)
    for col in ("title", "body"):
        out[col] = df[col].fillna("").astype(str) if col in df else ""
    out["url"] = df["url"].astype(object).where(df["url"].notna(), None) if "url" in df else None
    return out


def file_tables(
    path: Path, *, start: datetime | None, end: datetime | None
) -> Iterator[tuple[str, pa.Table]]:
    """``(date, table)`` per UTC day of an input file, rows sorted by ``published_at``."""
    df = _normalise(_read(Path(path)), Path(path))
    if start is not None:
        df = df[df["published_at"] >= pd.Timestamp(start)]
    if end is not None:
        df = df[df["published_at"] < pd.Timestamp(end)]
    df = df.sort_values(["published_at", "id"], kind="stable").reset_index(drop=True)
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("published_at", pa.timestamp("us", "UTC")),
            ("source", pa.string()),
            ("topic_label", pa.string()),
            ("tickers", pa.list_(pa.string())),
            ("sentiment", pa.string()),
            ("p_negative", pa.float64()),
            ("p_neutral", pa.float64()),
            ("p_positive", pa.float64()),
            ("sentiment_score", pa.float64()),
            ("title", pa.string()),
            ("body", pa.string()),
            ("url", pa.string()),
        ]
    )
    table = pa.Table.from_pandas(df[list(schema.names)], schema=schema, preserve_index=False)
    if table.num_rows == 0:
        return
    dates = pc.strftime(table["published_at"], format="%Y-%m-%d").to_numpy(zero_copy_only=False)
    bounds = np.flatnonzero(np.r_[True, dates[1:] != dates[:-1], True])
    for lo, hi in itertools.pairwise(bounds):
        yield str(dates[lo]), table.slice(int(lo), int(hi - lo))
