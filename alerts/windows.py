"""Sliding trend windows (e.g. 5 min, 1 h, 24 h) rolled up from final buckets.

Each window keeps running sums per series (add the new bucket, subtract the
one that left), so reading a trend costs nothing. Subtracting floats leaves
rounding residue; the count columns are whole numbers (exact in float64), so
a row whose window count drops to zero is reset to exact zeros, and the
confidence-weighted mean is clipped to [-1, 1] (every document's score lies
there): an empty window reads NaN, never a residue ratio like 2.5; buckets are kept sparse
(only series with documents) for the longest window, also to merge the top
documents of any series over any recent span.

>>> import numpy as np
>>> from alerts.aggregate import FinalBucket
>>> w = TrendWindows(bucket_s=60, windows_s=(120,))
>>> for t, n in enumerate([1.0, 2.0, 4.0]):
...     w.push(FinalBucket(t * 60, t * 60 + 60, np.array([[n, n, 0, 0, n, -n]]), {}, 0))
>>> w.trend(120).total.tolist()  # the last two buckets
[6.0]
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from alerts.aggregate import COLUMNS, CONF, NEG, NEU, POS, TOTAL, WSCORE, FinalBucket
from alerts.baseline import grow, pack, unpack
from stream.contracts.schemas import AlertEvidence

__all__ = ["Trend", "TrendWindows"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Trend:
    """Window statistics per series (arrays indexed by series row)."""

    window_s: int
    total: FloatArray
    negative: FloatArray
    neutral: FloatArray
    positive: FloatArray
    negative_share: FloatArray  # NaN where the window is empty
    mean_score: FloatArray  # confidence-weighted mean sentiment score, NaN where empty


@dataclass(frozen=True)
class _Sparse:
    start_s: int
    rows: NDArray[np.int64]
    values: FloatArray
    top: dict[int, list[AlertEvidence]]


class TrendWindows:
    """Running window sums over the last buckets for several window lengths."""

    def __init__(self, *, bucket_s: int, windows_s: tuple[int, ...]) -> None:
        bad = [w for w in windows_s if w % bucket_s or w <= 0]
        if bad:
            raise ValueError(f"windows {bad} are not positive multiples of the {bucket_s}s bucket")
        self.bucket_s = bucket_s
        self.windows_s = tuple(sorted(windows_s))
        self._sums = {w: np.zeros((0, len(COLUMNS))) for w in self.windows_s}
        self._buckets: deque[_Sparse] = deque()
        self._by_start: dict[int, _Sparse] = {}
        self.last_end_s: int | None = None

    def push(self, bucket: FinalBucket) -> None:
        """Add a final bucket and drop what left every window."""
        rows = np.flatnonzero(bucket.stats[:, TOTAL] > 0)
        sparse = _Sparse(bucket.start_s, rows, bucket.stats[rows].copy(), bucket.top)
        self._buckets.append(sparse)
        n = bucket.stats.shape[0]
        for w in self.windows_s:
            if self._sums[w].shape[0] < n:  # new series: room for their rows
                self._sums[w] = grow(self._sums[w].T, n).T.copy()
            self._sums[w][rows] += sparse.values
        self._by_start[bucket.start_s] = sparse
        for w in self.windows_s:
            # Buckets arrive gap-free, so exactly the bucket that started w ago leaves w now.
            old = self._by_start.get(bucket.start_s - w)
            if old is not None:
                sums = self._sums[w]
                sums[old.rows] -= old.values
                # Counts are exact; the float columns of rows left empty keep only residue.
                emptied = old.rows[sums[old.rows, TOTAL] < 0.5]
                sums[emptied] = 0.0
        while self._buckets and self._buckets[0].start_s <= bucket.start_s - self.windows_s[-1]:
            del self._by_start[self._buckets.popleft().start_s]
        self.last_end_s = bucket.end_s

    def trend(self, window_s: int) -> Trend:
        """The statistics of every series over the last ``window_s`` seconds."""
        s = self._sums[window_s].copy()  # a snapshot: the sums move in place on push
        total = s[:, TOTAL]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, s[:, NEG] / total, np.nan)
            mean = np.where(
                (total > 0) & (s[:, CONF] > 0),
                np.clip(s[:, WSCORE] / s[:, CONF], -1.0, 1.0),
                np.nan,
            )
        return Trend(window_s, total, s[:, NEG], s[:, NEU], s[:, POS], share, mean)

    def top_documents(self, row: int, since_s: int, k: int = 5) -> list[AlertEvidence]:
        """The ``k`` most confident negative documents of series ``row`` since ``since_s``."""
        docs = [e for b in self._buckets if b.start_s >= since_s for e in b.top.get(row, [])]
        docs.sort(key=lambda e: (e.confidence, e.published_at), reverse=True)
        return docs[:k]

    def state(self) -> dict[str, Any]:
        """JSON-able state: the retained sparse buckets (sums are rebuilt on load)."""
        return {
            "buckets": [
                {
                    "start_s": b.start_s,
                    "rows": pack(b.rows),
                    "values": pack(b.values),
                    "top": {
                        str(r): [e.model_dump(mode="json") for e in es] for r, es in b.top.items()
                    },
                }
                for b in self._buckets
            ],
            "last_end_s": self.last_end_s,
        }

    def load(self, state: dict[str, Any], n_series: int) -> None:
        """Restore from :meth:`state`."""
        self._buckets, self._by_start = deque(), {}
        self._sums = {w: np.zeros((n_series, len(COLUMNS))) for w in self.windows_s}
        for b in state["buckets"]:
            rows, values = unpack(b["rows"]), unpack(b["values"])
            top = {
                int(r): [AlertEvidence.model_validate(e) for e in es] for r, es in b["top"].items()
            }
            sparse = _Sparse(b["start_s"], rows, values, top)
            self._buckets.append(sparse)
            self._by_start[sparse.start_s] = sparse
        self.last_end_s = state["last_end_s"]
        if self.last_end_s is None:
            return
        for w in self.windows_s:
            for b in self._buckets:
                if b.start_s >= self.last_end_s - w:
                    self._sums[w][b.rows] += b.values
