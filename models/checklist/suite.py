"""The behavioural suite's rows, their schema and the train/test split (no torch).

Every row of ``headlines.jsonl`` is one invented headline with what a financial
analyst would say about the named company's stock: ``sentiment``, the
``topic`` (one of the model card's 20 labels, or null where no label is
clear), the financial ``event_type`` it reports and the ``capability`` it
probes (plain wire style, tabloid, social posts with cashtags and emoji,
negation, hedging).

The split is stratified by event type: within each type the rows are ordered
by ``sha256("checklist:" + id)`` and the first third (rounded, at least one)
is the held-out test set. A row's side therefore depends only on its id and
on the ids of its own event type: rows of other types, the file's order and
the texts never move it.

``training_headlines.jsonl`` (same schema, ids ``<event_type>-tNN``) holds
1,056 more headlines written for training only (24 per event type, in the
same five capabilities); it shares no text with this suite (a test checks)
and is used with ``finsentinel train --extra-data``; its own split is meaningless.

>>> suite = load_suite()
>>> len(suite.rows) >= 450, len(suite.event_types) >= 32
(True, True)
>>> sorted({row.split for row in suite.rows})
['test', 'train']
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.exceptions import DataError
from models.labels import TOPIC_LABELS
from stream.contracts.schemas import Sentiment

__all__ = [
    "CAPABILITIES",
    "SPLITS",
    "SUITE_FILE",
    "TEST_FRACTION",
    "TRAINING_HEADLINES",
    "Headline",
    "Suite",
    "SuiteRow",
    "load_suite",
    "split_ids",
]

#: The headlines written for the suite (shipped with the package).
SUITE_FILE: Final = Path(__file__).with_name("headlines.jsonl")
#: More headlines written for training only (none is a suite text; `make model` uses them).
TRAINING_HEADLINES: Final = Path(__file__).with_name("training_headlines.jsonl")
#: Share of each event type's rows held out as the test set.
TEST_FRACTION: Final = 1 / 3
SPLITS: Final = ("train", "test")
Split = Literal["train", "test"]
Capability = Literal["plain", "tabloid", "emoji_cashtag", "negation", "hedging"]
#: What each row probes: wire-style text, tabloid style, social posts with
#: cashtags/emoji, a negated event ("avoids bankruptcy") and a hedged one ("may cut").
CAPABILITIES: Final[tuple[str, ...]] = get_args(Capability)
_SALT: Final = "checklist:"


class Headline(BaseModel):
    """One labeled headline of the suite (a row of ``headlines.jsonl``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: ``<event_type>-NN``; ``<event_type>-tNN`` in ``training_headlines.jsonl``.
    id: Annotated[str, Field(pattern=r"^[a-z0-9_]+-t?[0-9]{2,}$")]
    text: Annotated[str, Field(min_length=1, max_length=300)]
    event_type: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    sentiment: Sentiment
    #: One of :data:`~models.labels.TOPIC_LABELS`; None where no topic is clear.
    topic: str | None = None
    capability: Capability

    @field_validator("topic")
    @classmethod
    def _known_topic(cls, value: str | None) -> str | None:
        if value is not None and value not in TOPIC_LABELS:
            raise ValueError(f"unknown topic {value!r}; use one of the model card's labels")
        return value


@dataclass(frozen=True)
class SuiteRow:
    """A headline and the side of the split it falls on."""

    headline: Headline
    split: Split


def _rank_key(row_id: str) -> bytes:
    return hashlib.sha256((_SALT + row_id).encode("utf-8")).digest()


def split_ids(rows: Iterable[Headline]) -> dict[str, Split]:
    """Id -> ``train``/``test``: per event type, the lowest-hash third is ``test``.

    >>> rows = [
    ...     Headline(id=f"x-{i:02d}", text="t", event_type="x", sentiment="neutral",
    ...              capability="plain")
    ...     for i in range(9)
    ... ]
    >>> sorted(split_ids(rows).values()).count("test")
    3
    """
    by_type: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_type[row.event_type].append(row.id)
    out: dict[str, Split] = {}
    for ids in by_type.values():
        n_test = max(1, round(TEST_FRACTION * len(ids)))
        for rank, row_id in enumerate(sorted(ids, key=_rank_key)):
            out[row_id] = "test" if rank < n_test else "train"
    return out


@dataclass(frozen=True)
class Suite:
    """All rows of the suite with their split; ``rows`` keeps the file's order."""

    rows: tuple[SuiteRow, ...]
    path: Path

    @property
    def event_types(self) -> tuple[str, ...]:
        """Event types in order of first appearance."""
        return tuple(dict.fromkeys(r.headline.event_type for r in self.rows))

    def select(self, split: Split | Literal["all"] = "test") -> list[Headline]:
        """The headlines of one side of the split (or ``all``)."""
        if split not in (*SPLITS, "all"):
            raise ValueError(f"unknown split {split!r}; use 'train', 'test' or 'all'")
        return [r.headline for r in self.rows if split in ("all", r.split)]


def _parse(path: Path) -> list[Headline]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(Headline.model_validate_json(line))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(map(str, err["loc"])) or "row"
            raise DataError(f"{path}:{number}: {where}: {err['msg']}") from exc
    return rows


def _check(rows: Sequence[Headline], path: Path) -> None:
    for field in ("id", "text"):
        seen: set[str] = set()
        for row in rows:
            value = getattr(row, field)
            if value in seen:
                raise DataError(f"{path}: duplicate {field} {value!r}")
            seen.add(value)
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row.event_type] += 1
    small = sorted(event for event, n in counts.items() if n < 3)
    if small:
        raise DataError(f"{path}: event types {small} need at least 3 rows each (test + train)")


def load_suite(path: Path | str = SUITE_FILE) -> Suite:
    """Read and check the suite; :class:`~models.exceptions.DataError` on a bad row."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    rows = _parse(path)
    if not rows:
        raise DataError(f"{path}: no rows")
    _check(rows, path)
    split = split_ids(rows)
    return Suite(tuple(SuiteRow(row, split[row.id]) for row in rows), path)
