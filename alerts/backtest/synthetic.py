"""Synthetic scored history with planted negative bursts, for tests, benchmarks and demos.

Documents per ticker arrive as a Poisson process whose rate follows an
hour-of-day profile (busy US market hours, quiet nights) with day-to-day noise;
each is negative with a base probability. A :class:`PlantedEvent` raises the
document rate and the negative share of one ticker for a while: the "truth" a
backtest must find. Generation is vectorised (numpy), deterministic for a seed,
and returns an Arrow table in the archive's scored schema.

>>> from datetime import datetime, timezone
>>> t0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
>>> ev = PlantedEvent("T001", t0.replace(hour=15), minutes=30)
>>> table = synthesize(start=t0, days=1, n_tickers=3, docs_per_ticker_day=50, events=[ev])
>>> table.num_rows > 100, table.schema.field("p_negative").type
(True, DataType(double))
>>> ev.series, ev.row()["series"]
('ticker:T001', 'ticker:T001')
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stream.history.schema import SCORED_SCHEMA

__all__ = ["HOURLY_PROFILE", "PlantedEvent", "synthesize", "write_archive", "write_labels"]

#: Relative document rate per UTC hour: quiet nights, busy 13:00-21:00 (US market hours).
HOURLY_PROFILE: tuple[float, ...] = (
    0.3, 0.25, 0.2, 0.2, 0.25, 0.3, 0.45, 0.6, 0.8, 0.9, 1.0, 1.1,
    1.3, 1.7, 2.0, 2.0, 1.9, 1.8, 1.7, 1.5, 1.2, 0.8, 0.5, 0.4,
)  # fmt: skip
_SOURCES = ("wire", "newsroom", "blog", "forum")
_TOPICS = ("Earnings", "Markets", "Macro", "Legal | Regulation", "M&A | Investments")


@dataclass(frozen=True)
class PlantedEvent:
    """A burst of negative coverage on one ticker: ``rate_x`` more documents, mostly negative."""

    ticker: str
    start: datetime
    minutes: int = 30
    rate_x: float = 4.0
    negative_share: float = 0.75

    @property
    def end(self) -> datetime:
        """When the burst stops."""
        return self.start + timedelta(minutes=self.minutes)

    @property
    def series(self) -> str:
        """The series label of the burst, as in a labels file."""
        return f"ticker:{self.ticker}"

    def row(self) -> dict[str, str]:
        """The ``series,start,end`` row of a labels file."""
        return {"series": self.series, "start": self.start.isoformat(), "end": self.end.isoformat()}


def _tickers(n: int) -> list[str]:
    return [f"T{i:03d}" for i in range(1, n + 1)]


def _rates(
    rng: np.random.Generator, start: datetime, minutes: int, n_tickers: int, per_day: float
) -> np.ndarray:
    """Expected documents per minute, shape ``(minutes, tickers)``."""
    t = np.arange(minutes)
    hour = ((start.hour * 60 + start.minute + t) // 60) % 24
    profile = np.asarray(HOURLY_PROFILE)[hour] / np.mean(HOURLY_PROFILE)
    day = (start.hour * 60 + start.minute + t) // 1440
    day_noise = rng.lognormal(0.0, 0.15, size=(int(day.max()) + 1, n_tickers))[day]
    weight = rng.lognormal(0.0, 0.5, size=n_tickers)
    weight = weight / weight.mean()
    return (per_day / 1440.0) * profile[:, None] * day_noise * weight[None, :]


def synthesize(
    *,
    start: datetime,
    days: float,
    n_tickers: int,
    docs_per_ticker_day: float = 48.0,
    base_negative_share: float = 0.15,
    events: Sequence[PlantedEvent] = (),
    seed: int = 7,
    model_version: str = "synthetic-1",
) -> pa.Table:
    """A table of scored documents (archive schema), sorted by ``published_at``."""
    rng = np.random.default_rng(seed)
    minutes = round(days * 1440)
    tickers = _tickers(n_tickers)
    rates = _rates(rng, start, minutes, n_tickers, docs_per_ticker_day)
    neg_p = np.full_like(rates, base_negative_share)
    for ev in events:
        col = tickers.index(ev.ticker)
        a = int((ev.start - start).total_seconds() // 60)
        rates[a : a + ev.minutes, col] *= ev.rate_x
        neg_p[a : a + ev.minutes, col] = ev.negative_share
    counts = rng.poisson(rates)
    minute_idx, ticker_idx = np.nonzero(counts)
    reps = counts[minute_idx, ticker_idx]
    minute_idx, ticker_idx = np.repeat(minute_idx, reps), np.repeat(ticker_idx, reps)
    n = minute_idx.shape[0]
    negative = rng.random(n) < neg_p[minute_idx, ticker_idx]
    offset_us = (minute_idx * 60_000_000 + rng.integers(0, 60_000_000, n)).astype(np.int64)
    order = np.lexsort((ticker_idx, offset_us))
    cols = _columns(rng, start, tickers, offset_us[order], ticker_idx[order], negative[order])
    return pa.Table.from_pydict(_finish(cols, model_version), schema=SCORED_SCHEMA)


def _columns(
    rng: np.random.Generator,
    start: datetime,
    tickers: list[str],
    offset_us: np.ndarray,
    ticker_idx: np.ndarray,
    negative: np.ndarray,
) -> dict[str, Any]:
    n = offset_us.shape[0]
    base_us = int(start.timestamp() * 1_000_000)
    published = pa.array(base_us + offset_us, pa.timestamp("us", "UTC"))
    conf = 0.55 + 0.4 * rng.random(n)
    rest = (1.0 - conf) / 2.0
    positive = ~negative & (rng.random(n) < 0.35)
    neutral = ~negative & ~positive
    p_neg = np.where(negative, conf, rest)
    p_pos = np.where(positive, conf, rest)
    p_neu = 1.0 - p_neg - p_pos
    sentiment = np.where(negative, "negative", np.where(positive, "positive", "neutral"))
    tick = np.asarray(tickers)[ticker_idx]
    return {
        "n": n,
        "id": [f"syn-{i:09d}" for i in range(n)],
        "tickers": pa.ListArray.from_arrays(np.arange(n + 1, dtype=np.int32), pa.array(tick)),
        "source": np.asarray(_SOURCES)[rng.integers(0, len(_SOURCES), n)],
        "topic_label": np.asarray(_TOPICS)[rng.integers(0, len(_TOPICS), n)],
        "published_at": published,
        "sentiment": sentiment,
        "p": (p_neg, p_neu, p_pos),
        "title": pc.binary_join_element_wise(
            pa.array(tick), pa.array(np.where(negative, "shares slide", "update")), " "
        ),
        "neutral": neutral,
    }


def _finish(cols: dict[str, Any], model_version: str) -> dict[str, Any]:
    n = cols["n"]
    p_neg, p_neu, p_pos = cols["p"]
    keys = pa.array(["negative", "neutral", "positive"] * n)
    probs = pa.MapArray.from_arrays(
        np.arange(0, 3 * n + 1, 3, dtype=np.int32),
        keys,
        pa.array(np.stack([p_neg, p_neu, p_pos], axis=1).ravel()),
    )
    topics = pa.MapArray.from_arrays(
        np.arange(n + 1, dtype=np.int32), pa.array(cols["topic_label"]), pa.array(np.ones(n))
    )
    empty_map = pa.MapArray.from_arrays(
        np.zeros(n + 1, dtype=np.int32), pa.array([], pa.string()), pa.array([], pa.float64())
    )
    empty_list = pa.ListArray.from_arrays(
        np.zeros(n + 1, dtype=np.int32), pa.array([], pa.string())
    )
    return {
        "schema_version": np.ones(n, dtype=np.int16),
        "id": cols["id"],
        "source": cols["source"],
        "kind": np.full(n, "news"),
        "url": pa.nulls(n, pa.string()),
        "title": cols["title"],
        "body": np.full(n, ""),
        "author": pa.nulls(n, pa.string()),
        "language": np.full(n, "en"),
        "tickers": cols["tickers"],
        "ticker_relevance": empty_map,
        "tags": empty_list,
        "copies": np.ones(n, dtype=np.int32),
        "novelty": pa.nulls(n, pa.float64()),
        "published_at": cols["published_at"],
        "fetched_at": cols["published_at"],
        "topic_label": cols["topic_label"],
        "topic_probs": topics,
        "sentiment": cols["sentiment"],
        "sentiment_probs": probs,
        "sentiment_score": p_pos - p_neg,
        "model_name": np.full(n, "synthetic"),
        "model_version": np.full(n, model_version),
        "scored_at": cols["published_at"],
        "detected_language": np.full(n, "en"),
        "unsupported_reason": pa.nulls(n, pa.string()),
        "p_negative": p_neg,
        "p_neutral": p_neu,
        "p_positive": p_pos,
        "kafka_partition": pa.nulls(n, pa.int32()),
        "kafka_offset": pa.nulls(n, pa.int64()),
        "kafka_timestamp_ms": pa.nulls(n, pa.int64()),
    }


def write_archive(table: pa.Table, root: Path, *, topic: str = "finsentinel.scored") -> list[Path]:
    """Write ``table`` as archive files (one per UTC date) under ``root/scored``."""
    dates = pc.strftime(table["published_at"], format="%Y-%m-%d").to_numpy(zero_copy_only=False)
    paths = []
    for date in sorted(set(dates)):
        part = table.filter(pa.array(dates == date))
        path = Path(root) / "scored" / f"date={date}" / f"topic={topic}" / "part-synthetic.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(part, tmp, compression="zstd")
        os.replace(tmp, path)
        paths.append(path)
    return paths


def write_labels(events: Sequence[PlantedEvent], path: Path) -> Path:
    """Write the ``series,start,end`` labels file of ``events``."""
    lines = ["series,start,end", *(",".join(ev.row().values()) for ev in events)]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)
