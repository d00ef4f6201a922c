"""Series identities: which aggregates a scored document contributes to.

A document counts in the ``all`` series, in its topic's series, in its
source's series and in one series per ticker it mentions.

>>> idx = SeriesIndex()
>>> idx.row(("all", "all")), idx.row(("topic", "Earnings")), idx.row(("all", "all"))
(0, 1, 0)
>>> idx.key(1)
('topic', 'Earnings')
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from stream.contracts.schemas import ScoredDocument

__all__ = ["ALL_KEY", "SERIES_KINDS", "SeriesIndex", "SeriesKey", "series_of"]

SeriesKind = Literal["all", "topic", "ticker", "source"]
SeriesKey = tuple[str, str]
SERIES_KINDS: Final = ("all", "topic", "ticker", "source")
ALL_KEY: Final[SeriesKey] = ("all", "all")


def series_of(doc: ScoredDocument) -> list[SeriesKey]:
    """Every series ``doc`` counts in (tickers de-duplicated, in order)."""
    keys: list[SeriesKey] = [ALL_KEY, ("topic", doc.topic), ("source", doc.source)]
    keys.extend(("ticker", t) for t in dict.fromkeys(doc.tickers))
    return keys


class SeriesIndex:
    """A stable mapping from series key to array row; rows are never reused."""

    def __init__(self) -> None:
        self._rows: dict[SeriesKey, int] = {}
        self._keys: list[SeriesKey] = []

    def __len__(self) -> int:
        return len(self._keys)

    def row(self, key: SeriesKey) -> int:
        """The row of ``key``, adding it if new."""
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = len(self._keys)
            self._keys.append(key)
        return row

    def find(self, key: SeriesKey) -> int | None:
        """The row of ``key``, or None if it was never seen."""
        return self._rows.get(key)

    def key(self, row: int) -> SeriesKey:
        """The key of ``row``."""
        return self._keys[row]

    def keys(self) -> list[SeriesKey]:
        """All keys in row order."""
        return list(self._keys)

    def kinds(self) -> NDArray[np.str_]:
        """The kind of every row, as an array (for vectorised masks)."""
        return np.array([k for k, _ in self._keys], dtype=str)

    def state(self) -> list[list[str]]:
        """JSON-able state."""
        return [list(k) for k in self._keys]

    @classmethod
    def from_state(cls, state: list[list[str]]) -> SeriesIndex:
        """Restore from :meth:`state`."""
        idx = cls()
        for kind, value in state:
            idx.row((kind, value))
        return idx
