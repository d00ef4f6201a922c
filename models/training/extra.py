"""Extra labeled rows that join the training rows only: ``--extra-data`` and ``--checklist``.

An extra file (CSV, JSON Lines or Parquet) has a ``text`` column and a
``sentiment`` and/or ``topic`` column; a blank label leaves that row out of
that head. ``checklist`` adds the training part of the behavioural suite
(:mod:`models.checklist`). Extra rows are never validation rows: a text that
equals a validation text of either head is dropped, and a text of the suite's
held-out test third is refused with an error, whatever file it comes in, so
the suite's test figure stays honest. The counts go into ``data.json``.

Extra rows are few next to the tweets of the two public files (hundreds against
~18,000 sentiment rows), so ``extra_weight`` (``--extra-weight``) scales their
loss (:func:`extra_row_weights`), as ``--feedback-weight`` does for corrections;
``extra_topic_weight`` (``--extra-topic-weight``) gives their topic labels a
weight of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from models.checklist import load_suite
from models.data import LabeledSet, labeled_rows, read_table
from models.exceptions import TrainingError
from models.labels import HEADS
from models.modeldir import sha256_file

__all__ = ["ExtraRows", "add_extra_rows", "checklist_frame", "extra_row_weights"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtraRows:
    """What each source added to each head (for ``data.json``)."""

    added: dict[str, dict[str, int]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def rows(self, head: str) -> int:
        """Rows added to ``head`` over all sources."""
        return sum(counts.get(head, 0) for counts in self.added.values())

    def summary(self, head: str) -> dict[str, Any]:
        """JSON-able: per source, its sha256 and the rows it added to ``head``."""
        return {
            name: {"sha256": self.sources[name], "rows": counts.get(head, 0)}
            for name, counts in self.added.items()
        }


def checklist_frame(split: Literal["train", "test", "all"] = "train") -> pd.DataFrame:
    """The suite's ``split`` rows as a ``text, sentiment, topic`` table."""
    rows = load_suite().select(split)
    return pd.DataFrame(
        {
            "text": [r.text for r in rows],
            "sentiment": [r.sentiment for r in rows],
            "topic": [r.topic for r in rows],
        }
    )


def _sources(extra_data: tuple[str, ...], checklist: bool) -> list[tuple[str, pd.DataFrame, str]]:
    out = []
    if checklist:
        path = load_suite().path
        out.append((f"checklist:{path.name}", checklist_frame("train"), sha256_file(path)))
    for name in extra_data:
        out.append((name, read_table(name), sha256_file(Path(name))))
    return out


def _head_rows(frame: pd.DataFrame, head: str, name: str) -> LabeledSet | None:
    if head not in frame.columns:
        return None
    return labeled_rows(frame, head, label_column=head, source=name, skip_unlabeled=True)


def add_extra_rows(
    splits: Mapping[str, Any], extra_data: tuple[str, ...], checklist: bool
) -> tuple[dict[str, Any], ExtraRows]:
    """``splits`` with the extra rows appended to the training rows of their heads.

    ``splits`` maps head -> an object with ``train`` and ``validation``
    :class:`~models.data.LabeledSet` (``models.training.run.SplitData``).
    """
    out = dict(splits)
    sources = _sources(extra_data, checklist)
    if not sources:
        return out, ExtraRows()
    held_out = {r.text for r in load_suite().select("test")}
    validation = {t for s in splits.values() for t in s.validation.texts}
    report = ExtraRows()
    for name, frame, digest in sources:
        leaked = held_out & set(frame.get("text", pd.Series(dtype=str)).astype(str).str.strip())
        if leaked:
            raise TrainingError(
                f"{name}: {len(leaked)} rows are in the behavioural suite's held-out test split "
                f"(e.g. {sorted(leaked)[0]!r}); train on its train split only (--checklist)"
            )
        report.sources[name] = digest
        report.added[name] = {}
        for head in HEADS:
            rows = _head_rows(frame, head, name)
            if head not in out or rows is None or not len(rows):
                continue
            keep = [i for i, text in enumerate(rows.texts) if text not in validation]
            if len(keep) < len(rows):
                logger.warning(
                    "%s: dropped %s %s rows equal to a validation text",
                    name,
                    len(rows) - len(keep),
                    head,
                )
            rows = rows.subset(keep)
            out[head] = replace(out[head], train=out[head].train.concat(rows))
            report.added[name][head] = len(rows)
            logger.info("%s: %s extra %s training rows", name, len(rows), head)
    return out, report


def extra_row_weights(
    splits: Mapping[str, Any], extra: ExtraRows, weight: float | Mapping[str, float]
) -> dict[str, np.ndarray]:
    """Per head, the loss weight of each training row: ``weight`` for the extra rows.

    ``weight`` is one number for every head or a ``head -> weight`` mapping (a
    head it leaves out weighs 1). The extra rows are the last
    ``extra.rows(head)`` training rows (as :func:`add_extra_rows` appends
    them); every other row weighs 1. A head whose weight is 1 or that got no
    extra rows is left out (the trainer then weighs its rows equally).

    >>> from models.data import LabeledSet
    >>> from types import SimpleNamespace
    >>> train = LabeledSet("sentiment", ["a", "b", "c"], np.array([0, 1, 2]), ("n", "p", "u"))
    >>> extra = ExtraRows(added={"x.csv": {"sentiment": 1}}, sources={"x.csv": "00"})
    >>> extra_row_weights({"sentiment": SimpleNamespace(train=train)}, extra, 3.0)["sentiment"]
    array([1., 1., 3.], dtype=float32)
    """
    per_head = dict(weight) if isinstance(weight, Mapping) else dict.fromkeys(splits, float(weight))
    out = {}
    for head, split in splits.items():
        added = extra.rows(head)
        head_weight = per_head.get(head, 1.0)
        if added and head_weight != 1.0:
            total = len(split.train)
            row_weights = np.ones(total, dtype=np.float32)
            row_weights[total - added :] = head_weight
            out[head] = row_weights
    return out
