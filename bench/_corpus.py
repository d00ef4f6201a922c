"""A deterministic corpus of realistic financial headlines for the benchmarks.

Mixed lengths: short comments, ordinary headlines, and 10% article snippets
of a few hundred words (some longer than the model's window, so chunking is
exercised as in production).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from stream.contracts.schemas import RawDocument

__all__ = ["make_corpus"]

_COMPANIES = [
    ("ACME", "Acme Corp"), ("GLBX", "Globex"), ("INIT", "Initech"), ("HOOL", "Hooli"),
    ("UMBR", "Umbrella Holdings"), ("WAYN", "Wayne Enterprises"), ("STRK", "Stark Industries"),
    ("TYRL", "Tyrell"), ("CYBD", "Cyberdyne Systems"), ("SOYL", "Soylent"), ("MSFT", "Microsoft"),
    ("AAPL", "Apple"), ("JPM", "JPMorgan Chase"), ("XOM", "Exxon Mobil"), ("TSLA", "Tesla"),
]  # fmt: skip
_HEADLINES = [
    "{c} shares jump after third-quarter earnings beat analyst estimates",
    "{c} cuts full-year revenue guidance as demand weakens in Europe",
    "{c} to lay off 4% of workforce in restructuring push",
    "{c} raises quarterly dividend by 8%, announces $2 billion buyback",
    "SEC opens probe into {c} accounting practices, sources say",
    "{c} misses on profit as input costs climb; stock slides in premarket",
    "{c} agrees to acquire rival in $3.4 billion all-cash deal",
    "Moody's downgrades {c} to Baa3, citing rising leverage",
    "{c} CEO steps down unexpectedly; CFO named interim chief",
    "{c} wins $1.2 billion defense contract",
    "{c} recalls 120,000 vehicles over faulty brake sensors",
    "Analysts upgrade {c} to buy on improving margins",
    "{c} bonds rally as company refinances 2027 maturities",
    "{c} faces class action over data breach affecting millions",
]
_COMMENTS = [
    "{t} to the moon", "sold my {t} today, guidance looks awful",
    "{t} earnings call was a disaster lol", "loading up on {t} before the print",
    "anyone else think {t} is overvalued here?", "{t} dividend hike is nice",
]  # fmt: skip
_SENTENCES = [
    "Revenue rose 12% year over year to $4.1 billion, ahead of the consensus estimate.",
    "Operating margin narrowed by 150 basis points on higher logistics and wage costs.",
    "Management reiterated its outlook for the second half despite currency headwinds.",
    "The company said it expects restructuring charges of $250 million to $300 million.",
    "Shares have fallen 18% so far this year, underperforming the broader index.",
    "Credit analysts flagged rising net debt and weaker free cash flow conversion.",
    "The board also approved a new share repurchase program without an expiry date.",
    "Regulators are reviewing whether disclosures to investors were adequate.",
    "Demand from data-center customers remained strong, offsetting weakness in consumer.",
    "The chief financial officer said pricing actions would take effect next quarter.",
]
T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def _document(i: int, rng: random.Random) -> RawDocument:
    ticker, company = rng.choice(_COMPANIES)
    roll = rng.random()
    if roll < 0.10:  # article snippet, 150-700 words
        title = rng.choice(_HEADLINES).format(c=company)
        body = " ".join(rng.choice(_SENTENCES) for _ in range(rng.randint(10, 45)))
        kind = "news"
    elif roll < 0.35:
        title, body, kind = rng.choice(_COMMENTS).format(t=f"${ticker}"), "", "comment"
    else:
        title, body, kind = rng.choice(_HEADLINES).format(c=company), "", "news"
    return RawDocument(
        id=f"bench-{i}",
        source="wire" if kind == "news" else "forum",
        kind=kind,  # type: ignore[arg-type]
        title=title,
        body=body,
        tickers=[ticker],
        published_at=T0,
        fetched_at=T0,
    )


def make_corpus(n: int, *, seed: int = 7) -> list[RawDocument]:
    """``n`` documents, the same for a given seed."""
    rng = random.Random(seed)
    return [_document(i, rng) for i in range(n)]
