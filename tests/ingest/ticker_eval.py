"""Precision and recall of ticker linking per kind of mention, on a labeled set.

Each labeled item lists its tickers by how the text names them: ``cashtag``
(``$AAPL`` or an exchange prefix), ``bare`` (an upper-case symbol) or ``name``
(a company name). A predicted ticker that is labeled counts as a true positive
of its labeled kind; one that is not is a false positive of the kind its
text suggests (a ``$`` before it, the bare symbol, else a name).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("cashtag", "bare", "name")
LABELED = Path(__file__).parent / "data" / "tickers_labeled.jsonl"


@dataclass
class Score:
    """Counts of one kind."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    false_links: list[tuple[int, str]] = field(default_factory=list)
    misses: list[tuple[int, str]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def load(path: Path = LABELED) -> list[dict[str, Any]]:
    """The labeled items."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _kind_in_text(symbol: str, text: str) -> str:
    base = re.escape(symbol.split(".")[0])
    if re.search(rf"(\$|[A-Z]+\s?:\s?){base}\b", text, re.IGNORECASE):
        return "cashtag"
    if re.search(rf"(?<![\w$]){base}(?!\w)", text):
        return "bare"
    return "name"


def evaluate(
    items: Iterable[dict[str, Any]], predict: Callable[[dict[str, Any]], Iterable[str]]
) -> dict[str, Score]:
    """Scores per kind, plus ``all`` over every kind."""
    scores = {k: Score() for k in (*KINDS, "all")}
    for item in items:
        labeled = {t: k for k in reversed(KINDS) for t in item[k]}
        predicted = set(predict(item))
        for t in predicted:
            kind = labeled.get(t)
            if kind is not None:
                scores[kind].tp += 1
                scores["all"].tp += 1
            else:
                kind = _kind_in_text(t, item["text"])
                scores[kind].fp += 1
                scores["all"].fp += 1
                scores[kind].false_links.append((item["id"], t))
        for t, kind in labeled.items():
            if t not in predicted:
                scores[kind].fn += 1
                scores["all"].fn += 1
                scores[kind].misses.append((item["id"], t))
    return scores


def table(scores: dict[str, Score]) -> str:
    """A Markdown table of the scores."""
    rows = [
        "| kind | labeled | linked right | false links | precision | recall |",
        "|---|---|---|---|---|---|",
    ]
    for k, s in scores.items():
        rows.append(
            f"| {k} | {s.tp + s.fn} | {s.tp} | {s.fp} | {s.precision:.3f} | {s.recall:.3f} |"
        )
    return "\n".join(rows)
