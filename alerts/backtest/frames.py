"""Vectorised bucket aggregation of archived scored documents, for backtests.

:class:`BucketBuilder` turns Arrow tables of scored documents (archive
columns, sorted by ``published_at``) into the same
:class:`~alerts.aggregate.FinalBucket` objects the live
:class:`~alerts.aggregate.Aggregator` produces, with one numpy ``bincount``
per statistic instead of one Python call per document. The buckets then go
through the live engine's detectors, hysteresis and lifecycle unchanged.

Parity with the live aggregator (checked by the tests):

* series and their rows: ``all``, the document's topic, its source, then its
  tickers (de-duplicated), registered in order of first appearance;
* statistics per bucket and series: the :data:`~alerts.aggregate.COLUMNS`;
* buckets are gap-free (empty buckets included) from the first document on;
* a document id seen again (in this chunk or the previous one, i.e. within a
  day: the aggregator's de-duplication retention) is dropped as a duplicate;
* evidence: the ``top_k`` most confident negative documents per bucket and
  series, built lazily (only when an alert asks for them).

A series first appears in the bucket that holds its first document; the live
aggregator may register it up to ``allowed_lateness_s`` earlier (with zero
counts), depending on poll batching, which only adds a few empty buckets to a
brand-new series' history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from alerts.aggregate import COLUMNS, FinalBucket
from alerts.series import ALL_KEY, SeriesIndex
from stream.contracts.schemas import AlertEvidence

__all__ = ["BUCKET_COLUMNS", "BucketBuilder", "LazyEvidence"]

#: Archive columns the builder reads.
BUCKET_COLUMNS: Final = (
    "id",
    "published_at",
    "source",
    "topic_label",
    "tickers",
    "sentiment",
    "p_negative",
    "p_neutral",
    "p_positive",
    "sentiment_score",
    "title",
    "body",
    "url",
    "unsupported_reason",
)
_SENTIMENTS: Final = ("negative", "neutral", "positive")
_EVIDENCE_COLUMNS: Final = ("id", "title", "body", "url", "source", "published_at", "sentiment")


class LazyEvidence(Mapping[int, list[AlertEvidence]]):
    """Top negative documents per series row of one bucket, built on first access."""

    def __init__(
        self,
        rows: np.ndarray,
        starts: np.ndarray,
        docs: np.ndarray,
        table: pa.Table,
        conf: np.ndarray,
    ) -> None:
        self._rows, self._starts, self._docs = rows, starts, docs
        self._table, self._conf = table, conf
        self._cache: dict[int, list[AlertEvidence]] = {}

    def __getitem__(self, row: int) -> list[AlertEvidence]:
        i = int(np.searchsorted(self._rows, row))
        if i >= self._rows.shape[0] or self._rows[i] != row:
            raise KeyError(row)
        if row not in self._cache:
            idx = self._docs[self._starts[i] : self._starts[i + 1]]
            self._cache[row] = self._build(idx)
        return self._cache[row]

    def _build(self, idx: np.ndarray) -> list[AlertEvidence]:
        part = self._table.take(pa.array(idx, pa.int64())).to_pylist()
        out = []
        for rec, i in zip(part, idx.tolist(), strict=True):
            out.append(
                AlertEvidence(
                    id=rec["id"],
                    title=(rec["title"] or "")[:300] or (rec["body"] or "")[:300],
                    url=rec["url"],
                    source=rec["source"],
                    published_at=rec["published_at"],
                    sentiment=rec["sentiment"],
                    sentiment_score=rec["sentiment_score"],
                    confidence=float(self._conf[i]),
                )
            )
        return out

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows.tolist())

    def __len__(self) -> int:
        return int(self._rows.shape[0])


def _series_keys(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(document index, series key) of every (document, series) pair, in series_of order."""
    n = table.num_rows
    tickers = table["tickers"].combine_chunks()
    t_doc = pc.list_parent_indices(tickers).to_numpy()
    t_val = pc.list_flatten(tickers).to_numpy(zero_copy_only=False)
    doc = np.concatenate([np.arange(n), np.arange(n), np.arange(n), t_doc])
    pos = np.concatenate([np.zeros(n), np.ones(n), np.full(n, 2), 3 + np.arange(t_doc.shape[0])])
    topic = table["topic_label"].to_numpy(zero_copy_only=False)
    source = table["source"].to_numpy(zero_copy_only=False)
    keys = np.concatenate(
        [
            np.full(n, "all\x1fall", dtype=object),
            "topic\x1f" + topic.astype(object),
            "source\x1f" + source.astype(object),
            "ticker\x1f" + t_val.astype(object),
        ]
    )
    order = np.lexsort((pos, doc))
    doc, keys = doc[order], keys[order]
    first = ~pd.DataFrame({"d": doc, "k": keys}).duplicated().to_numpy()
    return doc[first], keys[first]


class BucketBuilder:
    """Stateful across chunks: feed tables in time order with :meth:`feed`, then :meth:`finish`."""

    def __init__(
        self, index: SeriesIndex, *, bucket_s: int = 60, top_k: int = 5, max_series: int = 100_000
    ) -> None:
        self.index = index
        self.index.row(ALL_KEY)
        self.bucket_s = bucket_s
        self.top_k = top_k
        #: As the live aggregator: past it new series are not tracked (counted in ``dropped``).
        self.max_series = max_series
        self.dropped_series = 0
        self.next_start_s: int | None = None
        self.documents = 0
        self.duplicates = 0
        self._carry: pa.Table | None = None
        self._prev_ids: pa.Array = pa.array([], pa.string())

    def feed(self, table: pa.Table) -> Iterator[FinalBucket]:
        """Buckets completed by ``table`` (the last, possibly unfinished one is held back).

        Documents the model could not read (``unsupported_reason`` set: another
        language, no text) are left out, as the live aggregator leaves them out.
        """
        if "unsupported_reason" in table.column_names:
            table = table.filter(pc.is_null(table["unsupported_reason"]))
        if self._carry is not None:
            table = pa.concat_tables([self._carry, table.select(self._carry.column_names)])
            self._carry = None
        if table.num_rows == 0:
            return
        starts = self._starts(table)
        last = starts[-1]
        keep = starts < last
        self._carry = table.filter(pa.array(~keep))
        if keep.any():
            yield from self._build(table.filter(pa.array(keep)))

    def finish(self) -> Iterator[FinalBucket]:
        """The held-back last bucket."""
        if self._carry is not None and self._carry.num_rows:
            yield from self._build(self._carry)
        self._carry = None

    def _starts(self, table: pa.Table) -> np.ndarray:
        us = table["published_at"].combine_chunks().cast(pa.int64()).to_numpy()
        step = self.bucket_s * 1_000_000
        return (us // step) * self.bucket_s

    def _dedupe(self, table: pa.Table) -> pa.Table:
        ids = table["id"].combine_chunks()
        fresh = ~pc.is_in(ids, value_set=self._prev_ids).to_numpy(zero_copy_only=False)
        first = ~pd.Series(ids.to_numpy(zero_copy_only=False)).duplicated().to_numpy()
        keep = fresh & first
        self.duplicates += int((~keep).sum())
        self._prev_ids = ids
        return table if keep.all() else table.filter(pa.array(keep))

    def _build(self, table: pa.Table) -> Iterator[FinalBucket]:
        table = self._dedupe(table)
        self.documents += table.num_rows
        starts = self._starts(table)
        doc, keys = _series_keys(table)
        codes, uniq = pd.factorize(keys)  # order of first appearance
        known = np.array([self.index.find(tuple(k.split("\x1f", 1))) for k in uniq], dtype=object)
        base = len(self.index)
        new = np.array([k is None for k in known])
        rank = np.cumsum(new) - 1
        dropped = new & (rank >= max(0, self.max_series - base))
        local = np.where(new, base + rank, np.where(new, 0, known)).astype(np.int64)
        rows = np.where(dropped, -1, local)[codes]
        keep = rows >= 0
        self.dropped_series += int((~keep).sum())
        values, conf = self._values(table)
        new = new & ~dropped
        yield from self._emit(starts, doc[keep], rows[keep], values, uniq, new, table, conf)

    def _values(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        sentiment = table["sentiment"].to_numpy(zero_copy_only=False)
        probs = {s: table[f"p_{s}"].to_numpy(zero_copy_only=False) for s in _SENTIMENTS}
        conf = np.select([sentiment == s for s in _SENTIMENTS], [probs[s] for s in _SENTIMENTS])
        score = table["sentiment_score"].to_numpy(zero_copy_only=False)
        values = np.zeros((table.num_rows, len(COLUMNS)))
        values[:, 0] = 1.0
        for j, s in enumerate(_SENTIMENTS, start=1):
            values[:, j] = sentiment == s
        values[:, 4] = conf
        values[:, 5] = conf * score
        return values, conf

    def _emit(
        self,
        starts: np.ndarray,
        doc: np.ndarray,
        rows: np.ndarray,
        values: np.ndarray,
        uniq: np.ndarray,
        new: np.ndarray,
        table: pa.Table,
        conf: np.ndarray,
    ) -> Iterator[FinalBucket]:
        first = int(starts[0]) if self.next_start_s is None else self.next_start_s
        b = (starts[doc] - first) // self.bucket_s
        n_rows_total = int(rows.max()) + 1
        key = b * n_rows_total + rows
        ukey, inv = np.unique(key, return_inverse=True)
        sums = np.stack([np.bincount(inv, weights=values[doc, j]) for j in range(len(COLUMNS))], 1)
        ub, urow = ukey // n_rows_total, ukey % n_rows_total
        top = self._top(b, rows, doc, table, conf)
        new_keys = [tuple(k.split("\x1f", 1)) for k in uniq[new]]
        registered = 0
        last_b = int(b.max())
        bounds = np.searchsorted(ub, np.arange(last_b + 2))
        for i in range(last_b + 1):
            lo, hi = bounds[i], bounds[i + 1]
            if hi > lo:
                need = max(0, int(urow[lo:hi].max()) + 1 - len(self.index))
                for k in new_keys[registered : registered + need]:
                    self.index.row(k)  # type: ignore[arg-type]
                registered += need
            stats = np.zeros((len(self.index), len(COLUMNS)))
            stats[urow[lo:hi]] = sums[lo:hi]
            start = first + i * self.bucket_s
            # A lazy mapping: TrendWindows only calls .get() on it, when an alert asks.
            yield FinalBucket(start, start + self.bucket_s, stats, top(i), 0)  # type: ignore[arg-type]
        self.next_start_s = first + (last_b + 1) * self.bucket_s

    def _top(
        self, b: np.ndarray, rows: np.ndarray, doc: np.ndarray, table: pa.Table, conf: np.ndarray
    ) -> Callable[[int], Mapping[int, list[AlertEvidence]]]:
        """A function: bucket number -> lazy evidence of that bucket."""
        neg = (table["sentiment"].to_numpy(zero_copy_only=False) == "negative")[doc]
        nb, nrow, ndoc = b[neg], rows[neg], doc[neg]
        id_rank = pd.factorize(table["id"].to_numpy(zero_copy_only=False), sort=True)[0]
        order = np.lexsort((-id_rank[ndoc], -conf[ndoc], nrow, nb))
        nb, nrow, ndoc = nb[order], nrow[order], ndoc[order]
        group = np.r_[True, (nb[1:] != nb[:-1]) | (nrow[1:] != nrow[:-1])] if nb.size else nb
        gstart = np.maximum.accumulate(np.where(group, np.arange(nb.size), 0)) if nb.size else nb
        keep = (np.arange(nb.size) - gstart) < self.top_k
        nb, nrow, ndoc = nb[keep], nrow[keep], ndoc[keep]
        bounds = np.searchsorted(nb, np.arange(int(b.max()) + 2)) if nb.size else None

        def of(i: int) -> Mapping[int, list[AlertEvidence]]:
            if bounds is None or bounds[i] == bounds[i + 1]:
                return {}
            lo, hi = bounds[i], bounds[i + 1]
            r = nrow[lo:hi]
            urows, ustart = np.unique(r, return_index=True)
            return LazyEvidence(urows, np.r_[ustart, r.size], ndoc[lo:hi], table, conf)

        return of
