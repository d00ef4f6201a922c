"""The bundled demo corpus: a few hours of realistic, project-written headlines and comments.

The companies are fictional (tickers included) so the corpus cannot be mistaken
for news about real issuers. :func:`generate` is deterministic; the files in
``stream/demo_data/`` are its output for the default arguments, and a test keeps
them in step. Larger corpora (benchmarks, fault tests) come from the same
function with a larger ``n_docs``.

The middle of the corpus holds a burst of negative coverage: a regional bank
(``CRBK``) reports deposit outflows and a loss, and its peers follow, so the
"negative share" per ticker and per topic spikes for about twenty minutes.

>>> docs = generate(n_docs=50, burst=10, seed=1)
>>> len(docs), sum(d["burst"] for d in docs)
(60, 10)
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

__all__ = ["COMPANIES", "DEMO_DATA_DIR", "DEMO_START", "generate", "write_corpus"]

DEMO_DATA_DIR = Path(__file__).parent / "demo_data"
DEMO_START = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)

#: (name, ticker, sector) of fictional issuers.
COMPANIES: tuple[tuple[str, str, str], ...] = (
    ("Halcyon Motors", "HALM", "autos"),
    ("Brightwater Semiconductor", "BWSC", "tech"),
    ("Northgate Pharmaceuticals", "NGPH", "health"),
    ("Crescent Regional Bank", "CRBK", "banks"),
    ("Meridian Savings Bancorp", "MSBC", "banks"),
    ("Ironvale Mining", "IRVM", "materials"),
    ("Solvane Energy", "SLVE", "energy"),
    ("Quayside Retail Group", "QRG", "retail"),
    ("Tallis Aerospace", "TLAS", "industrials"),
    ("Vantor Cloud Systems", "VNTR", "tech"),
    ("Pellham Insurance", "PLHM", "insurance"),
    ("Orchard Foods", "ORFD", "staples"),
    ("Kestrel Airlines", "KSTL", "industrials"),
    ("Lumen Bay Biotech", "LBBT", "health"),
    ("Cobalt Ridge Utilities", "CRUT", "utilities"),
    ("Ardent Payments", "ARPY", "tech"),
)

_POSITIVE = (
    "{co} beats third-quarter estimates and raises full-year guidance",
    "{co} shares jump after record quarterly revenue",
    "Analysts upgrade {co} to buy, citing a faster margin recovery",
    "{co} raises quarterly dividend by 8%",
    "{co} wins $2.1 billion multi-year supply contract",
    "{co} announces $500 million share buyback",
    "{co} posts strongest order growth in five years",
    "{co} surges as new product line sells out in first week",
    "{co} lifts outlook on robust demand in Europe",
    "Price target on {co} raised to $148 at Morgan Lane",
)
_NEUTRAL = (
    "{co} to report third-quarter results on Thursday",
    "{co} names new chief financial officer",
    "{co} completes previously announced acquisition of a logistics unit",
    "{co} to present at investor conference next week",
    "{co} files quarterly report with the SEC",
    "{co} schedules annual shareholder meeting for March",
    "{co} opens new regional headquarters in Dublin",
    "{co} board declares regular quarterly dividend",
)
_MACRO_NEUTRAL = (
    "Fed minutes due at 2 p.m. ET as markets weigh timing of next move",
    "Treasury to auction $42 billion of 10-year notes",
    "Oil steady ahead of OPEC+ meeting",
    "ECB policymakers meet in Frankfurt this week",
    "Dollar little changed against the yen in quiet trading",
    "Gold holds near $2,400 an ounce as traders await data",
    "U.S. weekly jobless claims due Thursday",
    "European shares open flat ahead of inflation data",
)
_NEGATIVE = (
    "{co} misses earnings estimates and cuts its outlook",
    "{co} shares slide after regulator opens accounting probe",
    "{co} recalls 200,000 units over safety defect",
    "Rating agency downgrades {co} debt to junk",
    "{co} plunges after warning of weaker holiday demand",
    "{co} cuts 1,200 jobs as sales fall for third straight quarter",
    "{co} suspends dividend to preserve cash",
)
_COMMENTS_POS = (
    "${t} looks cheap here, adding more on this dip",
    "Loving the numbers from ${t}, guidance was better than expected",
    "${t} breaking out, next stop new highs",
    "Long ${t} into earnings, the order book looks strong",
)
_COMMENTS_NEU = (
    "Anyone know when ${t} reports? Can't find the date",
    "Watching ${t} today, volume is about average",
    "What do people think about ${t} at these levels?",
    "Holding ${t} for now, no strong view either way",
)
_COMMENTS_NEG = (
    "Sold my ${t}, management keeps missing its own targets",
    "${t} is going lower, that guidance cut was ugly",
    "Not touching ${t} until they fix the balance sheet",
)
_BURST_NEWS = (
    "Crescent Regional Bank shares plunge 28% after disclosing deposit outflows",
    "Crescent Regional Bank swings to quarterly loss on bad commercial property loans",
    "Crescent Regional Bank halted for volatility as sell-off deepens",
    "Rating agency cuts Crescent Regional Bank to junk, citing funding stress",
    "Regional bank stocks tumble as Crescent Regional Bank losses spook investors",
    "Meridian Savings Bancorp falls 15% in sympathy with Crescent Regional Bank",
    "Crescent Regional Bank suspends dividend and draws on emergency credit line",
    "Analysts slash price targets on Crescent Regional Bank after deposit flight",
    "Crescent Regional Bank CEO fails to reassure investors as shares sink further",
    "Short sellers pile into regional lenders after Crescent Regional Bank loss",
    "Crescent Regional Bank bonds slump to distressed levels",
    "Crescent Regional Bank faces class action over loan loss disclosures",
)
_BURST_COMMENTS = (
    "$CRBK is a disaster, deposits running for the exits",
    "Got out of $CRBK way too late, brutal loss",
    "$CRBK and $MSBC both collapsing, regional banks are in trouble again",
    "This $CRBK news is terrible, who is next?",
    "Dumped all my regional bank shares after the $CRBK loss",
)


#: Two broken records, so the demo shows dead-lettering: no text at all, and cut-off JSON.
_BAD_LINES = [
    '{"id": "bad-empty", "kind": "comment", "source": "demo-social", "title": "", "body": "  ",'
    ' "published_at": "2026-11-27T15:00:00Z"}',
    '{"id": "bad-truncated", "kind": "comment", "source": "demo-social", "body": "Dumped all',
]


def _stable_id(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def _pick_doc(rng: random.Random) -> tuple[str, str, list[str]]:
    """(kind, title, tickers) for one ordinary document."""
    name, ticker, _sector = rng.choice(COMPANIES)
    roll = rng.random()
    if rng.random() < 0.3:  # a social comment
        pool = _COMMENTS_NEG if roll < 0.2 else _COMMENTS_POS if roll < 0.55 else _COMMENTS_NEU
        return "comment", rng.choice(pool).replace("{t}", ticker), [ticker]
    if roll < 0.18:
        return "news", rng.choice(_MACRO_NEUTRAL), []
    pool = _NEGATIVE if roll < 0.34 else _POSITIVE if roll < 0.67 else _NEUTRAL
    return "news", rng.choice(pool).format(co=name), [ticker]


def generate(
    *,
    n_docs: int = 440,
    burst: int = 48,
    seed: int = 7,
    start: datetime = DEMO_START,
    span: timedelta = timedelta(hours=4),
    burst_at: float = 0.55,
    burst_span: timedelta = timedelta(minutes=20),
) -> list[dict[str, Any]]:
    """Return ``n_docs`` ordinary documents plus ``burst`` burst documents, by time."""
    rng = random.Random(seed)
    docs = []
    for i in range(n_docs):
        kind, title, tickers = _pick_doc(rng)
        at = start + span * rng.random()
        docs.append(_row(i, kind, title, tickers, at, burst=False))
    burst_start = start + span * burst_at
    for j in range(burst):
        if rng.random() < 0.35:
            kind, title = "comment", rng.choice(_BURST_COMMENTS)
        else:
            kind, title = "news", rng.choice(_BURST_NEWS)
        tickers = ["CRBK", "MSBC"] if "Meridian" in title or "MSBC" in title else ["CRBK"]
        at = burst_start + burst_span * rng.random()
        docs.append(_row(n_docs + j, kind, title, tickers, at, burst=True))
    docs.sort(key=lambda d: (d["published_at"], d["id"]))
    return docs


def _row(
    i: int, kind: str, title: str, tickers: list[str], at: datetime, *, burst: bool
) -> dict[str, Any]:
    at = at.replace(microsecond=0)
    source = "demo-wire" if kind == "news" else "demo-social"
    return {
        "id": _stable_id(source, str(i), title),
        "kind": kind,
        "source": source,
        "title": title if kind == "news" else "",
        "body": "" if kind == "news" else title,
        "url": f"https://news.example.com/{i}" if kind == "news" else None,
        "author": None if kind == "news" else f"user{i % 37}",
        "tickers": tickers,
        "published_at": at.isoformat().replace("+00:00", "Z"),
        "burst": burst,
    }


def _rss(items: Sequence[dict[str, Any]]) -> str:
    rows = []
    for d in items:
        pub = datetime.fromisoformat(d["published_at"]).strftime("%a, %d %b %Y %H:%M:%S +0000")
        rows.append(
            "    <item>\n"
            f"      <title>{escape(d['title'])}</title>\n"
            f"      <link>{escape(d['url'])}</link>\n"
            f'      <guid isPermaLink="false">{d["id"]}</guid>\n'
            f"      <pubDate>{pub}</pubDate>\n"
            "    </item>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">\n  <channel>\n'
        "    <title>Demo Wire</title>\n    <link>https://news.example.com/</link>\n"
        "    <description>FinSentinel demo feed (fictional companies)</description>\n"
        + "".join(rows)
        + "  </channel>\n</rss>\n"
    )


def write_corpus(out_dir: Path = DEMO_DATA_DIR, **kwargs: Any) -> dict[str, int]:
    """Write the corpus as ``news.rss`` (two thirds of the news), ``wire.jsonl`` and
    ``comments.jsonl``; return the row count per file."""
    docs = generate(**kwargs)
    news = [d for d in docs if d["kind"] == "news"]
    comments = [d for d in docs if d["kind"] == "comment"]
    rss_items = [d for k, d in enumerate(news) if k % 3 != 0]
    jsonl_news = [d for k, d in enumerate(news) if k % 3 == 0]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "news.rss").write_text(_rss(rss_items), encoding="utf-8")
    for name, rows in (("wire.jsonl", jsonl_news), ("comments.jsonl", comments)):
        lines = [
            json.dumps({k: v for k, v in d.items() if k != "burst" and v is not None}) for d in rows
        ]
        if name == "comments.jsonl":
            lines[len(lines) // 2 : len(lines) // 2] = _BAD_LINES
        (out_dir / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {
        "news.rss": len(rss_items),
        "wire.jsonl": len(jsonl_news),
        "comments.jsonl": len(comments),
    }


if __name__ == "__main__":
    print(write_corpus())
