"""Tickers from cashtags, exchange prefixes, company names and bare symbols, with relevance.

* Cashtags: ``$AAPL``, ``$brk.b`` (not ``$5`` or ``$5B``, not currency codes).
* Exchange prefixes: ``NASDAQ:AAPL``, ``NYSE: JPM``, ``LSE:BP.``, ``XETRA:SAP``;
  non-US listings get Yahoo-style suffixes (``BP.L``, ``SAP.DE``).
* Company names from an alias table (a shipped default for ~220 large US and
  European issuers, extendable with your own CSV files), matched as whole words
  (see :mod:`ingest.names`: ``~Apple`` needs company context).
* Bare upper-case symbols (``KO vs PEP``) when the context says "security"
  (see :mod:`ingest.bare`): listed symbols are the alias tables' US symbols and
  ``data/symbols.txt``.

Relevance in [0, 1]: 0.5 for a title mention, up to 0.3 for how early the
first mention is, up to 0.2 for frequency (five mentions and more), halved for
an ambiguous name linked on weak evidence.

>>> ex = EntityExtractor.default()
>>> tickers, rel = ex.extract("Apple shares slide; $MSFT flat", "NYSE:JPM says Shell plc ...")
>>> tickers
['AAPL', 'MSFT', 'JPM', 'SHEL.L']
>>> rel["AAPL"] > rel["JPM"] > rel["SHEL.L"]
True
>>> ex.extract("Apple pie recipes", "Costs $5 and $USD 3")[0]
[]
>>> ex.extract("KO vs PEP for a 20-year hold", "", community=True)[0]
['KO', 'PEP']
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ingest.bare import DEFAULT_ALWAYS, BareLinker
from ingest.exceptions import SourceConfigError
from ingest.names import NameMatcher

__all__ = ["DEFAULT_ALIASES", "DEFAULT_SYMBOLS", "EntityExtractor", "Mention"]

logger = logging.getLogger(__name__)

DEFAULT_ALIASES = "aliases.csv"
#: Listed symbols without a name in the alias table (ETFs, funds), which may stand bare.
DEFAULT_SYMBOLS = "symbols.txt"
#: A US listing (no exchange suffix; share classes such as ``BRK.B`` allowed).
_US_LISTING = re.compile(r"^[A-Z]{1,5}(?:\.[A-B])?$")
_TICKER = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,14}$")
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9]{0,5}(?:[.\-][A-Za-z]{1,3})?)(?![\w$])")
_EXCHANGE_SUFFIX = {
    "NASDAQ": "",
    "NYSE": "",
    "NYSEARCA": "",
    "NYSEAMERICAN": "",
    "AMEX": "",
    "BATS": "",
    "OTC": "",
    "LSE": ".L",
    "LON": ".L",
    "XETRA": ".DE",
    "ETR": ".DE",
    "FRA": ".F",
    "EPA": ".PA",
    "AMS": ".AS",
    "SIX": ".SW",
    "SWX": ".SW",
    "VTX": ".SW",
    "BIT": ".MI",
    "BME": ".MC",
    "STO": ".ST",
    "CPH": ".CO",
    "HEL": ".HE",
    "EBR": ".BR",
    "TSX": ".TO",
    "ASX": ".AX",
    "HKEX": ".HK",
    "HKG": ".HK",
    "TYO": ".T",
}
_PREFIXED = re.compile(
    r"(?<![\w])(" + "|".join(sorted(_EXCHANGE_SUFFIX, key=len, reverse=True)) + r")"
    r"\s?:\s?([A-Z0-9]{1,6}(?:[.\-][A-Z0-9]{1,3})?)(?![\w])"
)
#: Cashtags that are currencies or everyday abbreviations, not listings.
_NOT_TICKERS = frozenset(
    {
        "USD",
        "EUR",
        "GBP",
        "JPY",
        "CHF",
        "CAD",
        "AUD",
        "CNY",
        "HKD",
        "SEK",
        "NOK",
        "DKK",
        "CEO",
        "CFO",
        "IPO",
        "ETF",
        "GDP",
        "CPI",
        "FED",
        "THE",
        "AND",
        "FOR",
        "YOU",
        "LOL",
        "USA",
        "US",
        "EU",
        "UK",
        "OK",
        "Q",
        "K",
        "M",
        "B",
        "BN",
        "MM",
    }
)


@dataclass
class _Hits:
    first: int
    count: int = 0
    in_title: bool = False
    weight: float = 0.0


@dataclass
class EntityExtractor:
    """Finds tickers in text; build with :meth:`default` or :meth:`from_files`.

    ``symbols`` are the listed symbols that may stand bare (by default every
    US symbol of the alias tables plus ``data/symbols.txt``); ``always`` are
    linked whenever they stand bare (see :mod:`ingest.bare`).
    """

    aliases: dict[str, str]
    ambiguous: frozenset[str] = frozenset()
    symbols: frozenset[str] = frozenset()
    always: frozenset[str] = DEFAULT_ALWAYS
    _names: NameMatcher = field(init=False, repr=False)
    _bare: BareLinker = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._names = NameMatcher(self.aliases, self.ambiguous)
        self._bare = BareLinker(self.symbols, always=self.always)

    @classmethod
    def default(cls) -> EntityExtractor:
        """The shipped alias table and symbol list only."""
        return cls.from_files(())

    @classmethod
    def from_files(
        cls,
        paths: Iterable[Path],
        *,
        include_default: bool = True,
        always: Iterable[str] = (),
    ) -> EntityExtractor:
        """The shipped table (unless excluded) extended by CSV files ``symbol,aliases``.

        ``always``: symbols to link whenever they stand bare, on top of
        :data:`~ingest.bare.DEFAULT_ALWAYS`.
        """
        aliases: dict[str, str] = {}
        ambiguous: set[str] = set()
        data = resources.files("ingest.data")
        texts = [data.joinpath(DEFAULT_ALIASES).read_text("utf-8")] if include_default else []
        for path in paths:
            try:
                texts.append(Path(path).read_text(encoding="utf-8"))
            except OSError as exc:
                raise SourceConfigError(f"cannot read alias table {path}: {exc}") from exc
        for text in texts:
            _read_table(text, aliases, ambiguous)
        symbols = {s for s in aliases.values() if _US_LISTING.match(s)}
        if include_default:
            listed = data.joinpath(DEFAULT_SYMBOLS).read_text("utf-8").split()
            symbols.update(s for s in listed if not s.startswith("#"))
        extra = {s.strip().lstrip("$").upper() for s in always if s.strip()}
        bad = sorted(s for s in extra if not _TICKER.match(s))
        if bad:
            raise SourceConfigError(f"tickers_always: not ticker symbols: {', '.join(bad)}")
        return cls(
            aliases,
            frozenset(ambiguous),
            frozenset(symbols | extra),
            DEFAULT_ALWAYS | frozenset(extra),
        )

    def extract(
        self,
        title: str,
        body: str,
        *,
        explicit: Sequence[str] = (),
        community: bool = False,
    ) -> tuple[list[str], dict[str, float]]:
        """Tickers ordered by relevance (ties: first mention) and their relevance scores.

        ``community``: the text comes from a finance community (a finance
        subreddit, StockTwits), where a bare symbol needs less context.
        """
        text = f"{title}\n{body}"
        hits: dict[str, _Hits] = {}
        for mention in self.mentions(text, community=community):
            hit = hits.setdefault(mention.symbol, _Hits(first=mention.start))
            hit.count += 1
            hit.first = min(hit.first, mention.start)
            hit.in_title = hit.in_title or mention.start < len(title)
            hit.weight = max(hit.weight, mention.weight)
        scores = {s: _relevance(h, len(text)) for s, h in hits.items()}
        for raw in explicit:
            symbol = raw.strip().lstrip("$").upper()
            if _TICKER.match(symbol):
                scores[symbol] = max(scores.get(symbol, 0.0), 0.5)
        order = sorted(scores, key=lambda s: (-scores[s], hits[s].first if s in hits else 0))
        order = order[:64]
        return order, {s: scores[s] for s in order}

    def mentions(self, text: str, *, community: bool = False) -> list[Mention]:
        """Every ticker mention in ``text``, in order of kind (cashtag, name, bare)."""
        found: list[Mention] = []
        for m in _CASHTAG.finditer(text):
            symbol = m.group(1).upper()
            if symbol not in _NOT_TICKERS and _TICKER.match(symbol):
                found.append(Mention(symbol, m.start(), "cashtag"))
        taken: list[range] = []
        for m in _PREFIXED.finditer(text):
            symbol = m.group(2).rstrip(".") + _EXCHANGE_SUFFIX[m.group(1)]
            found.append(Mention(symbol, m.start(), "prefix"))
            taken.append(range(m.start(), m.end()))
        names = self._names.find(text)
        linked = {f.symbol for f in found} | {symbol for symbol, _, w in names if w == 1.0}
        bare = [
            (symbol, start)
            for symbol, start in self._bare.link(text, community=community, linked=linked)
            if not any(start in span for span in taken)
        ]
        bare_at = {start for _, start in bare}
        for symbol, start, weight in names:
            # A name that is also a listed symbol ("ASML", "SAP"): in a finance community
            # it is the (US) listing traded there; elsewhere the company's home listing.
            if not (community and start in bare_at):
                found.append(Mention(symbol, start, "name", weight))
        name_at = {m.start for m in found if m.kind == "name"}
        found.extend(Mention(s, start, "bare") for s, start in bare if start not in name_at)
        return found


@dataclass(frozen=True)
class Mention:
    """One place a ticker is mentioned, and how (``cashtag``, ``prefix``, ``name``, ``bare``)."""

    symbol: str
    start: int
    kind: str
    #: 1.0, or less for an ambiguous name linked on weak evidence.
    weight: float = 1.0


def _relevance(hit: _Hits, length: int) -> float:
    position = 1.0 - hit.first / max(length, 1)
    score = 0.5 * hit.in_title + 0.3 * position + 0.2 * min(hit.count, 5) / 5
    return round(min(1.0, max(0.0, score * hit.weight)), 4)


def _read_table(text: str, aliases: dict[str, str], ambiguous: set[str]) -> None:
    rows = csv.reader(line for line in text.splitlines() if line and not line.startswith("#"))
    for lineno, row in enumerate(rows, start=1):
        if not row or row[0] == "symbol":
            continue
        if len(row) != 2 or not _TICKER.match(row[0]):
            raise SourceConfigError(f"alias table row {lineno}: expected 'SYMBOL,alias|alias'")
        for alias in row[1].split("|"):
            alias = alias.strip()
            if alias.startswith("~"):
                alias = alias[1:]
                ambiguous.add(alias)
            if alias:
                aliases[alias] = row[0]
