"""Builders of hand-made scored documents for tests, benchmarks and the demo.

>>> from datetime import datetime, timezone
>>> doc = scored("n1", datetime(2026, 1, 5, tzinfo=timezone.utc), sentiment="negative")
>>> doc.sentiment, round(doc.confidence, 2), doc.sentiment_score
('negative', 0.9, -0.85)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from stream.contracts.schemas import SENTIMENT_LABELS, Alert, AlertEvidence, ScoredDocument

__all__ = ["sample_alert", "scored", "synthetic_stream"]

_PROBS = {
    "negative": {"negative": 0.9, "neutral": 0.05, "positive": 0.05},
    "neutral": {"negative": 0.1, "neutral": 0.8, "positive": 0.1},
    "positive": {"negative": 0.05, "neutral": 0.05, "positive": 0.9},
}


def evidence_of(doc: ScoredDocument) -> AlertEvidence:
    """Evidence record of a hand-built document (see :func:`alerts.aggregate.evidence_of`)."""
    from alerts.aggregate import evidence_of as _evidence_of

    return _evidence_of(doc)


def scored(
    doc_id: str,
    published_at: datetime,
    *,
    sentiment: str = "neutral",
    topic: str = "Markets",
    source: str = "wire",
    tickers: Sequence[str] = (),
    title: str | None = None,
    url: str | None = None,
) -> ScoredDocument:
    """A valid :class:`ScoredDocument` with typical probabilities for ``sentiment``."""
    probs = _PROBS[sentiment]
    return ScoredDocument(
        id=doc_id,
        source=source,
        kind="news",
        url=url or f"https://news.example/{doc_id}",
        title=title or f"{topic} story {doc_id}",
        tickers=list(tickers),
        published_at=published_at,
        fetched_at=published_at,
        topic=topic,
        topic_probs={topic: 1.0},
        sentiment=sentiment,  # type: ignore[arg-type]
        sentiment_probs=probs,  # type: ignore[arg-type]
        sentiment_score=round(probs["positive"] - probs["negative"], 6),
        model_name="hand-built",
        model_version="0",
        scored_at=published_at,
    )


def synthetic_stream(
    *,
    start: datetime,
    hours: float = 4.0,
    docs: int = 480,
    seed: int = 0,
    burst_topic: str | None = None,
    burst_ticker: str | None = None,
    burst_docs: int = 45,
    burst_minutes: float = 20.0,
) -> list[ScoredDocument]:
    """A demo-like stream in event-time order: steady coverage, optionally one burst.

    Steady documents spread uniformly over ``hours`` on five topics, twenty
    tickers and four sources, a quarter of them negative; the burst adds
    ``burst_docs`` negative documents on ``burst_topic`` (and ``burst_ticker``)
    within ``burst_minutes`` in the middle.
    """
    import random
    from datetime import timedelta

    rng = random.Random(seed)
    topics = ["Earnings", "Markets", "Macro", "Mergers", "Legal"]
    tickers = [f"T{i:02d}" for i in range(20)]
    sources = ["wire", "blog", "forum", "paper"]
    span_s = hours * 3600
    out: list[ScoredDocument] = []
    for i in range(docs):
        at = start + timedelta(seconds=rng.uniform(0, span_s))
        sentiment = rng.choices(SENTIMENT_LABELS, [0.25, 0.45, 0.30])[0]
        out.append(
            scored(
                f"s{seed}-{i}",
                at,
                sentiment=sentiment,
                topic=rng.choice(topics),
                source=rng.choice(sources),
                tickers=rng.sample(tickers, rng.choice([0, 1, 1, 2])),
            )
        )
    if burst_topic or burst_ticker:
        mid = start + timedelta(seconds=span_s / 2)
        for i in range(burst_docs):
            at = mid + timedelta(seconds=rng.uniform(0, burst_minutes * 60))
            out.append(
                scored(
                    f"b{seed}-{i}",
                    at,
                    sentiment="negative",
                    topic=burst_topic or rng.choice(topics),
                    source=rng.choice(sources),
                    tickers=[burst_ticker] if burst_ticker else [],
                    title=f"Profit warning shock #{i}",
                )
            )
    out.sort(key=lambda d: d.published_at)
    return out


def sample_alert(
    *,
    key: str = "negative-spike-topic:topic:Earnings",
    state: str = "firing",
    series: str = "Earnings",
    series_kind: str = "topic",
    labels: dict[str, str] | None = None,
) -> Alert:
    """A realistic firing alert with two headlines of evidence."""
    from datetime import UTC
    from datetime import datetime as dt

    t = dt(2026, 1, 5, 10, 0, tzinfo=UTC)
    docs = [scored(f"e{i}", t, sentiment="negative", topic=series) for i in range(2)]
    return Alert(
        key=key,
        rule=key.split(":")[0],
        series_kind=series_kind,  # type: ignore[arg-type]
        series=series,
        state=state,  # type: ignore[arg-type]
        severity="warning",
        score=0.93,
        observed=14,
        baseline=1.2,
        window_start=t,
        window_end=t,
        started_at=t,
        updated_at=t,
        resolved_at=t if state == "resolved" else None,
        summary=f"Spike in negative coverage on {series_kind} {series}: 14 negative documents.",
        labels={"rule": key.split(":")[0], **(labels or {})},
        evidence=[evidence_of(d) for d in docs],
    )
