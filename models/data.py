"""Labeled and unlabeled tables: reading, label mapping, validation split (no torch).

Tables are CSV, JSON Lines or Parquet, chosen by extension. Labels may be the
class names (``negative``/``bullish``/``Fed | Central Banks``, any case) or the
integer ids of the public data sets (see :mod:`models.labels`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from models.exceptions import DataError
from models.labels import SENTIMENT_ALIASES, SENTIMENT_DATA_IDS, SENTIMENT_LABELS, TOPIC_LABELS

__all__ = [
    "RECIPE_FILES",
    "RECIPE_SEED",
    "RECIPE_VAL_FRACTION",
    "LabeledSet",
    "head_labels",
    "labeled_rows",
    "load_labeled",
    "map_labels",
    "read_table",
    "stratified_split",
    "table_format",
    "write_table",
]

logger = logging.getLogger(__name__)

#: The recipe's labeled files (``make model``, ``finsentinel models compare --data DIR``).
RECIPE_FILES: Final[dict[str, str]] = {
    "sentiment": "tfns_sentiment_train.csv",
    "topic": "tfnt_topic_train.csv",
}
#: The recipe's validation split: the share held out and the seed of :func:`stratified_split`.
RECIPE_VAL_FRACTION: Final = 0.1
RECIPE_SEED: Final = 0

_READERS: Final = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True)
class LabeledSet:
    """Texts of one head with integer labels indexing ``label_names``."""

    head: str
    texts: list[str]
    labels: np.ndarray
    label_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: Sequence[int] | np.ndarray) -> LabeledSet:
        """The rows at ``index``."""
        idx = np.asarray(index, dtype=np.int64)
        return LabeledSet(
            self.head, [self.texts[i] for i in idx], self.labels[idx], self.label_names
        )

    def concat(self, other: LabeledSet) -> LabeledSet:
        """These rows followed by ``other``'s (same head and classes)."""
        if (other.head, other.label_names) != (self.head, self.label_names):
            raise DataError(f"cannot join {other.head} rows to {self.head} rows")
        return LabeledSet(
            self.head,
            [*self.texts, *other.texts],
            np.concatenate([self.labels, other.labels]).astype(np.int64),
            self.label_names,
        )


def table_format(path: Path | str) -> str:
    """``csv``, ``jsonl`` or ``parquet`` from the extension; :class:`DataError` otherwise."""
    path = Path(path)
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"{path}: unsupported extension {path.suffix!r}; use .csv, .jsonl or .parquet"
        )
    return kind


def read_table(path: Path | str, *, as_text: bool = False) -> pd.DataFrame:
    """Read a CSV/JSONL/Parquet file; :class:`DataError` if unreadable or empty.

    ``as_text`` keeps CSV values as written (an id ``007`` stays ``"007"``, an
    empty cell is ``""``) instead of guessing numbers and missing values.
    """
    path = Path(path)
    kind = table_format(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        if kind == "csv" and as_text:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif kind == "csv":
            frame = pd.read_csv(path)
        elif kind == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            frame = pd.read_parquet(path)
    except (pd.errors.EmptyDataError, ValueError, OSError) as exc:
        if path.stat().st_size == 0 or isinstance(exc, pd.errors.EmptyDataError):
            raise DataError(f"{path}: file is empty") from exc
        raise DataError(f"{path}: cannot read as {kind}: {exc}") from exc
    if frame.empty:
        raise DataError(f"{path}: file has no rows")
    return frame


def write_table(frame: pd.DataFrame, path: Path | str) -> None:
    """Write ``frame`` as CSV/JSONL/Parquet by extension."""
    path = Path(path)
    kind = table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        frame.to_csv(path, index=False)
    elif kind == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path, index=False)


def head_labels(head: str, topic_labels: Sequence[str] = TOPIC_LABELS) -> tuple[str, ...]:
    """The class names of ``head``."""
    if head == "sentiment":
        return tuple(SENTIMENT_LABELS)
    if head == "topic":
        return tuple(topic_labels)
    raise DataError(f"unknown head {head!r}; use 'sentiment' or 'topic'")


def _label_lookup(head: str, names: tuple[str, ...]) -> dict[str, int]:
    lookup = {name.lower(): i for i, name in enumerate(names)}
    if head == "sentiment":
        lookup.update({alias: names.index(name) for alias, name in SENTIMENT_ALIASES.items()})
        lookup.update({str(k): names.index(v) for k, v in SENTIMENT_DATA_IDS.items()})
    else:
        lookup.update({str(i): i for i in range(len(names))})
    return lookup


def map_labels(
    values: pd.Series, head: str, names: tuple[str, ...], source: str | Path
) -> np.ndarray:
    """Class ids of ``values`` (names, aliases or data-set ids); :class:`DataError` if unknown."""
    lookup = _label_lookup(head, names)
    keys = values.map(lambda v: str(v).strip().lower().removesuffix(".0"))
    mapped = keys.map(lookup)
    unknown = sorted(set(values[mapped.isna()].astype(str)))
    if unknown:
        raise DataError(
            f"{source}: unknown {head} label(s) {unknown[:5]} "
            f"({len(unknown)} distinct); expected one of {list(names)} or their ids"
        )
    return mapped.to_numpy(dtype=np.int64)


def load_labeled(
    path: Path | str,
    head: str,
    *,
    text_column: str = "text",
    label_column: str = "label",
    topic_labels: Sequence[str] = TOPIC_LABELS,
) -> LabeledSet:
    """Read a labeled file for ``head``; drops blank texts, rejects unknown labels."""
    return labeled_rows(
        read_table(path),
        head,
        text_column=text_column,
        label_column=label_column,
        topic_labels=topic_labels,
        source=str(path),
    )


def labeled_rows(
    frame: pd.DataFrame,
    head: str,
    *,
    text_column: str = "text",
    label_column: str = "label",
    topic_labels: Sequence[str] = TOPIC_LABELS,
    source: str = "table",
    skip_unlabeled: bool = False,
) -> LabeledSet:
    """The rows of ``frame`` labeled for ``head``; drops blank texts, rejects unknown labels.

    With ``skip_unlabeled``, rows whose label is blank are left out (a table
    labeled for both heads, where some rows carry only one label).

    >>> frame = pd.DataFrame({"text": ["a", "b"], "topic": ["Dividend", None]})
    >>> labeled_rows(frame, "topic", label_column="topic", skip_unlabeled=True).labels.tolist()
    [4]
    """
    names = head_labels(head, topic_labels)
    for column in (text_column, label_column):
        if column not in frame.columns:
            raise DataError(f"{source}: no column {column!r} (columns: {list(frame.columns)})")
    texts = frame[text_column].fillna("").astype(str).str.strip()
    keep = texts.str.len() > 0
    if not keep.all():
        logger.warning("%s: dropping %s rows with empty text", source, int((~keep).sum()))
    if not keep.any():
        raise DataError(f"{source}: every {text_column!r} value is empty")
    if skip_unlabeled:
        labels = frame[label_column].fillna("").astype(str).str.strip()
        keep &= labels.str.len() > 0
    mapped = map_labels(frame.loc[keep, label_column], head, names, source)
    return LabeledSet(head, texts[keep].tolist(), mapped, names)


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified ``(train_index, validation_index)``.

    Each class puts ``round(fraction * count)`` rows (at least one when it has
    two or more) into validation.

    >>> tr, va = stratified_split(np.array([0] * 10 + [1] * 10), 0.2, seed=0)
    >>> len(tr), len(va), np.bincount(np.array([0] * 10 + [1] * 10)[va]).tolist()
    (16, 4, [2, 2])
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError("validation fraction must be between 0 and 1")
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for cls in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        n_val = round(fraction * len(rows))
        n_val = max(n_val, 1) if len(rows) >= 2 else 0
        val.append(rows[:n_val])
    val_index = np.sort(np.concatenate(val)) if val else np.array([], dtype=np.int64)
    train_index = np.setdiff1d(np.arange(len(labels)), val_index)
    return train_index, val_index
