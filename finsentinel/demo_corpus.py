"""The bundled demo corpus: a few hours of realistic, project-written headlines and comments.

The companies are fictional (tickers included) so the corpus cannot be mistaken
for news about real issuers. :func:`generate` is deterministic; the files in
``finsentinel/demo_data/`` are its output for the default arguments, and a test keeps
them in step. Larger corpora (benchmarks, fault tests) come from the same
function with a larger ``n_docs``. ``demo_aliases.csv`` maps the fictional
company names to their tickers for the crawler's entity extraction.

The middle of the corpus holds a burst of negative coverage: a regional bank
(``CRBK``) reports deposit outflows and a loss, and its peers follow, so the
"negative share" per ticker and per topic spikes for about twenty minutes.

>>> docs = generate(n_docs=50, burst=10, seed=1)
>>> len(docs), sum(d["burst"] for d in docs)
(60, 10)
>>> len(generate(n_docs=3000, burst=150, seed=3))
3150
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

__all__ = ["COMPANIES", "DEMO_ALIASES", "DEMO_DATA_DIR", "DEMO_START", "generate", "write_corpus"]

DEMO_DATA_DIR = Path(__file__).parent / "demo_data"
#: Company-name aliases of the fictional issuers, for the crawler's entity extraction.
DEMO_ALIASES = Path(__file__).parent / "demo_aliases.csv"
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

_UP = ("shares jump", "stock rallies", "climbs", "gains", "rises", "surges")
_UP_WHY = (
    "after record quarterly revenue",
    "as full-year guidance tops forecasts",
    "on the strongest order growth in five years",
    "after an analyst upgrade to buy",
    "on a $2.1 billion multi-year contract win",
    "after announcing a $500 million buyback",
    "as margins recover faster than expected",
    "after beating profit estimates",
)
_DOWN = ("shares fall", "stock slides", "drops", "sinks", "tumbles", "declines")
_DOWN_WHY = (
    "after cutting its full-year outlook",
    "as regulator opens accounting probe",
    "on a recall of 200,000 units",
    "after missing profit estimates",
    "as rating agency cuts its debt to junk",
    "after warning of weaker holiday demand",
    "on plans to cut 1,200 jobs",
    "after suspending its dividend",
)
_EVENTS = (
    "to report third-quarter results",
    "to present at an investor conference",
    "to hold annual shareholder meeting",
    "board to meet on capital plans",
    "to publish sustainability report",
    "to host capital markets day",
)
_WHEN = ("on Thursday", "next week", "on Dec. 3", "after the close on Tuesday", "in March")
_MACRO_NEUTRAL = (
    "Fed minutes due at 2 p.m. ET as markets weigh timing of next move",
    "Treasury to auction $42 billion of 10-year notes",
    "Oil steady ahead of OPEC+ meeting",
    "ECB policymakers meet in Frankfurt this week",
    "Dollar little changed against the yen in quiet trading",
    "Gold holds near $2,400 an ounce as traders await data",
    "U.S. weekly jobless claims due Thursday",
    "European shares open flat ahead of inflation data",
    "Bank of England keeps rates on hold, as expected",
    "Copper trades in narrow range as China data looms",
)
_SAY_POS = ("Adding more ${t} here", "Long ${t}", "Bought ${t} this morning", "Loving ${t}")
_SAY_POS_WHY = (
    "the guidance was better than expected",
    "the order book looks strong",
    "this is breaking out to new highs",
    "margins are finally turning",
)
_SAY_NEU = (
    "Anyone know when ${t} reports?",
    "Watching ${t} today, volume is about average.",
    "What do people think about ${t} at these levels?",
    "Holding ${t} for now, no strong view.",
    "Is ${t} in anyone's index fund?",
    "${t} options chain looks quiet.",
)
_SAY_NEG = ("Sold my ${t}", "Done with ${t}", "Not touching ${t}")
_SAY_NEG_WHY = (
    "management keeps missing its own targets",
    "that guidance cut was ugly",
    "until they fix the balance sheet",
)
_BANKS = (("Crescent Regional Bank", "CRBK"), ("Meridian Savings Bancorp", "MSBC"))
_BANK_WHY = (
    "after disclosing deposit outflows",
    "on a quarterly loss from commercial property loans",
    "as funding stress spreads",
    "after a downgrade to junk",
    "after suspending its dividend",
    "as short sellers pile in",
    "after drawing on an emergency credit line",
    "as analysts slash price targets",
)
_BANK_SAY = (
    "Dumped my ${t}",
    "Got out of ${t} way too late",
    "${t} is a disaster",
    "Who is next after ${t}?",
    "Watching ${t} collapse",
    "${t} holders are getting wiped out",
)
_BANK_SAY_WHY = (
    "deposits are running for the exits",
    "that loss is brutal",
    "regional banks are in trouble again",
    "this could spread to every small lender",
    "nobody trusts their loan book now",
    "the dividend cut says it all",
)


def _combos(rng: random.Random, *parts: Sequence[str]) -> list[tuple[str, ...]]:
    """Every combination of ``parts`` in a seeded random order (no repeats, so no duplicates)."""
    combos: list[tuple[str, ...]] = [()]
    for part in parts:
        combos = [(*c, p) for c in combos for p in part]
    rng.shuffle(combos)
    return combos


class _Writer:
    """Draws distinct documents: each template combination is used at most once."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        names = [c[0] for c in COMPANIES]
        self.up = _combos(rng, names, _UP, _UP_WHY)
        self.down = _combos(rng, names, _DOWN, _DOWN_WHY)
        self.events = _combos(rng, names, _EVENTS, _WHEN)
        self.say_pos = _combos(rng, [c[1] for c in COMPANIES], _SAY_POS, _SAY_POS_WHY)
        self.say_neg = _combos(rng, [c[1] for c in COMPANIES], _SAY_NEG, _SAY_NEG_WHY)
        self.say_neu = _combos(rng, [c[1] for c in COMPANIES], _SAY_NEU)
        self.bank = _combos(rng, [b[0] for b in _BANKS], _DOWN, _BANK_WHY)
        self.bank_say = _combos(rng, [b[1] for b in _BANKS], _BANK_SAY, _BANK_SAY_WHY)
        self.ticker = {c[0]: c[1] for c in (*COMPANIES, *_BANKS)}
        self._spent: dict[int, list[tuple[str, ...]]] = {}

    def _draw(self, pool: list[tuple[str, ...]]) -> tuple[str, ...]:
        """The next unused combination; an exhausted pool starts over (texts then repeat,
        and the crawler folds the repeats as duplicates)."""
        if not pool:
            pool.extend(self._spent[id(pool)])
            self._spent[id(pool)].clear()
            self.rng.shuffle(pool)
        item = pool.pop()
        self._spent.setdefault(id(pool), []).append(item)
        return item

    def news(self, pool: list[tuple[str, ...]]) -> tuple[str, str, list[str]]:
        name, verb, why = self._draw(pool)
        pct = self.rng.randint(2, 9) if pool is not self.bank else self.rng.randint(9, 35)
        return "news", f"{name} {verb} {pct}% {why}", [self.ticker[name]]

    def comment(self, pool: list[tuple[str, ...]]) -> tuple[str, str, list[str]]:
        ticker, *words = self._draw(pool)
        text = ", ".join(w.replace("{t}", ticker) for w in words)
        return "comment", text, [ticker]

    def ordinary(self) -> tuple[str, str, list[str]]:
        roll = self.rng.random()
        if self.rng.random() < 0.3:
            pool = self.say_neg if roll < 0.2 else self.say_pos if roll < 0.55 else self.say_neu
            return self.comment(pool)
        if roll < 0.12:
            return "news", self.rng.choice(_MACRO_NEUTRAL), []
        if roll < 0.45:
            name, event, when = self._draw(self.events)
            return "news", f"{name} {event} {when}", [self.ticker[name]]
        return self.news(self.down if roll < 0.6 else self.up)

    def burst(self) -> tuple[str, str, list[str]]:
        return self.comment(self.bank_say) if self.rng.random() < 0.35 else self.news(self.bank)


#: Two broken records, so the demo shows dead-lettering: no text at all, and cut-off JSON.
_BAD_LINES = [
    '{"id": "bad-empty", "kind": "comment", "source": "demo-social", "title": "", "body": "  ",'
    ' "published_at": "2026-11-27T15:00:00Z"}',
    '{"id": "bad-truncated", "kind": "comment", "source": "demo-social", "body": "Dumped all',
]


def _stable_id(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


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
    """Return ``n_docs`` ordinary documents plus ``burst`` burst documents, by time.

    Company documents are distinct (no two share a template combination); the
    market-wide headlines repeat now and then, as wire headlines do, and the
    crawler folds those repeats as exact duplicates. Past the template space
    (a few hundred combinations per kind) texts start to repeat as well.
    """
    rng = random.Random(seed)
    writer = _Writer(rng)
    docs = []
    for i in range(n_docs):
        kind, title, tickers = writer.ordinary()
        at = start + span * rng.random()
        docs.append(_row(i, kind, title, tickers, at, burst=False))
    burst_start = start + span * burst_at
    for j in range(burst):
        kind, title, tickers = writer.burst()
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


def write_corpus(
    out_dir: Path = DEMO_DATA_DIR, *, aliases_path: Path | None = DEMO_ALIASES, **kwargs: Any
) -> dict[str, int]:
    """Write the corpus as ``news.rss`` (two thirds of the news), ``wire.jsonl`` and
    ``comments.jsonl``, and the alias table to ``aliases_path`` (default: beside the
    package, outside the corpus folder); return the row count per file."""
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
    aliases = [f"{ticker},{name}" for name, ticker, _sector in COMPANIES]
    if aliases_path is not None:
        aliases_path.write_text(
            "# Aliases of the demo's fictional companies (format: ingest/data/aliases.csv).\n"
            "symbol,aliases\n" + "\n".join(aliases) + "\n",
            encoding="utf-8",
        )
    return {
        "news.rss": len(rss_items),
        "wire.jsonl": len(jsonl_news),
        "comments.jsonl": len(comments),
    }


if __name__ == "__main__":
    print(write_corpus())
