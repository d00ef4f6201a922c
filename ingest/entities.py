"""Tickers from cashtags, exchange prefixes and company names, with relevance.

* Cashtags: ``$AAPL``, ``$brk.b`` (not ``$5`` or ``$5B``, not currency codes).
* Exchange prefixes: ``NASDAQ:AAPL``, ``NYSE: JPM``, ``LSE:BP.``, ``XETRA:SAP``;
  non-US listings get Yahoo-style suffixes (``BP.L``, ``SAP.DE``).
* Company names from an alias table (a shipped default for ~200 large US and
  European issuers, extendable with your own CSV files). Aliases that are also
  ordinary words (``~Apple``) count only next to a company context word.

Relevance in [0, 1]: 0.5 for a title mention, up to 0.3 for how early the
first mention is, up to 0.2 for frequency (five mentions and more).

>>> ex = EntityExtractor.default()
>>> tickers, rel = ex.extract("Apple shares slide; $MSFT flat", "NYSE:JPM says Shell plc ...")
>>> tickers
['AAPL', 'MSFT', 'JPM', 'SHEL.L']
>>> rel["AAPL"] > rel["JPM"] > rel["SHEL.L"]
True
>>> ex.extract("Apple pie recipes", "Costs $5 and $USD 3")[0]
[]
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ingest.exceptions import SourceConfigError

__all__ = ["DEFAULT_ALIASES", "EntityExtractor"]

logger = logging.getLogger(__name__)

DEFAULT_ALIASES = "aliases.csv"
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
_CONTEXT = re.compile(
    r"\b(shares?|stocks?|Inc|Corp|plc|AG|SE|NV|earnings|revenue|profits?|CEO|chief executive|"
    r"quarter(?:ly)?|investors?|analysts?|results|guidance|dividends?|buyback|Nasdaq|NYSE|"
    r"sales|lawsuit|acquisition|deal|company|market value|valuation|downgrade|upgrade)\b",
    re.IGNORECASE,
)
_CONTEXT_CHARS = 48


@dataclass
class _Hits:
    first: int
    count: int = 0
    in_title: bool = False


@dataclass
class EntityExtractor:
    """Finds tickers in text; build with :meth:`default` or :meth:`from_files`."""

    aliases: dict[str, str]
    ambiguous: frozenset[str] = frozenset()
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        names = sorted(self.aliases, key=len, reverse=True)
        if names:
            alternation = "|".join(re.escape(n) for n in names)
            self._pattern = re.compile(rf"(?<![\w$.&])(?:{alternation})(?![\w&])")

    @classmethod
    def default(cls) -> EntityExtractor:
        """The shipped alias table only."""
        return cls.from_files(())

    @classmethod
    def from_files(cls, paths: Iterable[Path], *, include_default: bool = True) -> EntityExtractor:
        """The shipped table (unless excluded) extended by CSV files ``symbol,aliases``."""
        aliases: dict[str, str] = {}
        ambiguous: set[str] = set()
        texts = [resources.files("ingest.data").joinpath(DEFAULT_ALIASES).read_text("utf-8")]
        if not include_default:
            texts = []
        for path in paths:
            try:
                texts.append(Path(path).read_text(encoding="utf-8"))
            except OSError as exc:
                raise SourceConfigError(f"cannot read alias table {path}: {exc}") from exc
        for text in texts:
            _read_table(text, aliases, ambiguous)
        return cls(aliases, frozenset(ambiguous))

    def extract(
        self, title: str, body: str, *, explicit: Sequence[str] = ()
    ) -> tuple[list[str], dict[str, float]]:
        """Tickers ordered by relevance (ties: first mention) and their relevance scores."""
        text = f"{title}\n{body}"
        hits: dict[str, _Hits] = {}
        for symbol, start in self._mentions(text):
            hit = hits.setdefault(symbol, _Hits(first=start))
            hit.count += 1
            hit.first = min(hit.first, start)
            hit.in_title = hit.in_title or start < len(title)
        scores = {s: _relevance(h, len(text)) for s, h in hits.items()}
        for raw in explicit:
            symbol = raw.strip().lstrip("$").upper()
            if _TICKER.match(symbol):
                scores[symbol] = max(scores.get(symbol, 0.0), 0.5)
        order = sorted(scores, key=lambda s: (-scores[s], hits[s].first if s in hits else 0))
        order = order[:64]
        return order, {s: scores[s] for s in order}

    def _mentions(self, text: str) -> Iterable[tuple[str, int]]:
        for m in _CASHTAG.finditer(text):
            symbol = m.group(1).upper()
            if symbol not in _NOT_TICKERS and _TICKER.match(symbol):
                yield symbol, m.start()
        for m in _PREFIXED.finditer(text):
            yield m.group(2).rstrip(".") + _EXCHANGE_SUFFIX[m.group(1)], m.start()
        if self._pattern is None:
            return
        for m in self._pattern.finditer(text):
            name = m.group(0)
            if name in self.ambiguous and not _in_context(text, m.start(), m.end()):
                continue
            yield self.aliases[name], m.start()


def _in_context(text: str, start: int, end: int) -> bool:
    if text[end : end + 2] in ("'s", "’s"):
        return True
    window = text[max(0, start - _CONTEXT_CHARS) : end + _CONTEXT_CHARS]
    return _CONTEXT.search(window) is not None


def _relevance(hit: _Hits, length: int) -> float:
    position = 1.0 - hit.first / max(length, 1)
    score = 0.5 * hit.in_title + 0.3 * position + 0.2 * min(hit.count, 5) / 5
    return round(min(1.0, max(0.0, score)), 4)


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
