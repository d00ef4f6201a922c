"""Bare upper-case symbols (``KO vs PEP``), linked only when the context says "security".

On Reddit and StockTwits most mentions are bare symbols, not cashtags, but
upper-case tokens are also ordinary words and acronyms (``A``, ``IT``, ``ALL``,
``CEO``, ``DD``). A token that is a listed symbol links when:

* it stands in parentheses next to a name (``Netflix (NFLX)``, ``ALL (Allstate)``),
  the one place where even a stop-listed symbol counts;
* it is in the ``always`` list (configurable), unless stop-listed;
* it is a *distinctive* symbol (three letters or more, not an everyday word) and
  the source is a finance community, or the text has a finance word anywhere,
  or another ticker;
* it is *word-like* (one or two letters, or an everyday word such as ``NOW``,
  ``COST``, ``CAT``) and a finance word or a linked ticker stands within
  :data:`NEAR_WORDS` words of it ("shares of COST", "GS and MS both beat").

Stop-listed tokens (:data:`STOP_SYMBOLS`) never link bare.

>>> linker = BareLinker(frozenset({"KO", "PEP", "NVDA", "MA", "DE", "A"}))
>>> linker.link("KO vs PEP for a 20-year hold", community=False, linked=set())
[('KO', 0), ('PEP', 6)]
>>> linker.link("Moving from MA to DE next month", community=True, linked=set())
[]
>>> linker.link("Got an A on my NVDA report", community=False, linked=set())  # NVDA: always
[('NVDA', 15)]
>>> linker.link("Agilent (A) raised guidance", community=False, linked=set())
[('A', 9)]
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_ALWAYS", "NEAR_WORDS", "STOP_SYMBOLS", "WORD_LIKE", "BareLinker"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Upper-case tokens that never link as bare symbols: acronyms, slang and everyday
#: words that are (or might become) listed symbols. A cashtag or an exchange prefix
#: still links them (``$ALL``, ``NASDAQ:ON``), and so does ``Name (SYM)``.
STOP_SYMBOLS: Final = _words(
    """
    A I IT ALL ON AN AM ARE AS AT BE BY DO GO HE IF IN IS ME MY NO OF OH OR SO TO UP US WE
    CEO CFO COO CTO CIO USA UK EU UN AI DD YOLO EPS IPO ETF ATH ATL IMO IMHO FOMO HODL TLDR
    LOL LMAO OMG WTF FYI PSA AMA ELI5 EDIT OP OK GG RIP GM GN NFA LFG EOD EOW EOY YTD QOQ
    YOY DCA PE ER IV OTM ITM ATM DTE FD FDS PT TA FA ROI ROE FCF EBIT EBITDA GAAP SEC FED
    FOMC CPI PPI PCE GDP NFP FDA FTC DOJ IRS IRA ROTH HSA CD CDS USD EUR GBP JPY CNY BTC
    ETH NYSE NASDAQ DOW SPX NDX VIX WSB LLC INC CO LTD PLC AG NV SA SE DTC API CEO AWS GPU
    CPU EV EVS TV PC HR PR QA IQ ID FAQ ETA TBD TBA DM PM NEW BIG FUN LOVE REAL TRUE
    GOOD BEST NEXT OPEN HOLD MOON PUMP DUMP BULL BEAR CASH EVER NOTE FREE
    """
)

#: Listed symbols that are also everyday words or short abbreviations: they need a
#: finance word (or a linked ticker) right next to them. One- and two-letter symbols
#: are word-like without being listed here.
WORD_LIKE: Final = _words(
    """
    NOW LOW COST ARM CAT SNOW COIN UBER SNAP ICE MET KEY FAST TEAM PLAY RUN CAR HAS CASH
    DIS UPS DOW LIN HON DUK NEE CVS MMM AIG PNC COP SLB DHR GILD ADBE WELL GOLD SPOT PATH
    NET PLUG RIOT PINS SIRI SONY ROKU TEAM USB SHOP
    """
)

#: Symbols linked whenever they stand bare (unless stop-listed); extend it with the
#: ``tickers_always`` setting.
DEFAULT_ALWAYS: Final = _words(
    "AAPL MSFT NVDA GOOGL GOOG AMZN TSLA NFLX AMD INTC JPM BRK.B SPY QQQ PLTR"
)

#: How many words either side of a word-like symbol its context may stand.
NEAR_WORDS: Final = 3

_TOKEN = re.compile(r"(?<![\w$.&'’/-])([A-Z][A-Z0-9]{0,5}(?:\.[A-Z])?)(?![\w&'’/]|-\w|\.\w)")
_WORD = re.compile(r"[\w$%./'’-]+")
#: Words that say "security": positions, trades, options, results, prices.
_FINANCE = re.compile(
    r"^(?:calls?|puts?|shares?|stocks?|holds?|holding|held|hodl|buy|buys|buying|bought|sell|"
    r"sells|selling|sold|long|short|shorts|shorting|earnings|er|pt|position|positions|"
    r"dividends?|yield|options?|strike|premium|covered|ah|premarket|pre-market|"
    r"bagholding|bagholder|averaging|dip|rally|rallying|red|green|chart|breakout|breaking|"
    r"support|resistance|squeeze|squeezing|guidance|revenue|eps|beat|beats|miss|missed|"
    r"upgrade|downgrade|analysts?|valuation|undervalued|overvalued|p/e|multiples?|ticker|"
    r"portfolio|invest|investing|invested|trade|trading|traded|bullish|bearish|moon|"
    r"tendies|gap|gapping|ath|iv|0dte|10-k|10-q|ipo|stake|weighting|allocation|"
    r"dropping|drops|dropped|tanking|tanked|dumping|dumped|pumping|ripping|mooning|soaring|"
    r"plunging|plunged|crashing|crashed|surging|surged|"
    r"[+-]?\d+(?:\.\d+)?%|\d+(?:\.\d+)?[cp])$",
    re.IGNORECASE,
)
#: Words that join two symbols into a comparison or a list ("KO vs PEP", "GS and MS").
_JOINERS = frozenset({"vs", "vs.", "versus", "or", "and", "&", "/"})


@dataclass(frozen=True)
class _Token:
    symbol: str
    start: int
    index: int  # word index


class BareLinker:
    """Links bare symbols from ``symbols`` (the listed universe) by context."""

    def __init__(
        self,
        symbols: Collection[str],
        *,
        always: Collection[str] = DEFAULT_ALWAYS,
        stop: Collection[str] = STOP_SYMBOLS,
        word_like: Collection[str] = WORD_LIKE,
    ) -> None:
        self.symbols = frozenset(symbols)
        self.always = frozenset(always)
        self.stop = frozenset(stop)
        self.word_like = frozenset(word_like)

    def link(self, text: str, *, community: bool, linked: Collection[str]) -> list[tuple[str, int]]:
        """``(symbol, offset)`` of every bare mention that counts, in text order.

        ``community``: the source is a finance community (r/stocks, StockTwits).
        ``linked``: tickers already found another way (cashtags, names), which
        count as context.
        """
        found = [(m.group(1), m.start(1)) for m in _TOKEN.finditer(text)]
        if not any(symbol in self.symbols for symbol, _ in found):
            return []
        words = [(m.group(0), m.start()) for m in _WORD.finditer(text)]
        index_of = {start: i for i, (_, start) in enumerate(words)}
        cands = [
            _Token(symbol, start, index_of.get(start, -1))
            for symbol, start in found
            if symbol in self.symbols
        ]
        finance_at = [i for i, (w, _) in enumerate(words) if _FINANCE.match(w.strip(".,:;!?"))]
        distinct = {c.symbol for c in cands if c.symbol not in self.stop and not self._weak(c)}
        anywhere = bool(finance_at) or bool(linked)
        confirmed: dict[int, _Token] = {}
        for tok in cands:
            if self._parenthesised(text, tok) or self._strong(tok, community, anywhere, distinct):
                confirmed[tok.start] = tok
        # Word-like symbols: a finance word, a linked ticker or a joiner next to them;
        # each one confirmed may confirm its neighbours ("GS and MS both beat").
        near_finance = {k for j in finance_at for k in range(j - NEAR_WORDS, j + NEAR_WORDS + 1)}
        at_word = {c.index: c for c in cands if c.index >= 0 and c.symbol not in self.stop}
        weak = [c for c in at_word.values() if c.start not in confirmed and self._weak(c)]
        queue = [c for c in weak if c.index in near_finance or self._joined(c, at_word, words)]
        queue += [c for c in confirmed.values() if c.index >= 0]
        done: set[int] = set()
        while queue:
            tok = queue.pop()
            if tok.start in done:
                continue
            done.add(tok.start)
            confirmed[tok.start] = tok
            for k in range(tok.index - NEAR_WORDS, tok.index + NEAR_WORDS + 1):
                other = at_word.get(k)
                if other is not None and other.start not in done and self._weak(other):
                    queue.append(other)
        return [(t.symbol, t.start) for t in sorted(confirmed.values(), key=lambda t: t.start)]

    def _weak(self, tok: _Token) -> bool:
        return len(tok.symbol.split(".")[0]) <= 2 or tok.symbol in self.word_like

    def _strong(self, tok: _Token, community: bool, anywhere: bool, distinct: set[str]) -> bool:
        if tok.symbol in self.stop or self._weak(tok):
            return False
        if tok.symbol in self.always or community or anywhere:
            return True
        # Another distinctive symbol in the same text ("MSFT, GOOGL and META").
        return bool(distinct - {tok.symbol})

    @staticmethod
    def _joined(tok: _Token, at_word: dict[int, _Token], words: list[tuple[str, int]]) -> bool:
        """ "KO vs PEP", "V or MA": a joiner between this and another listed symbol."""
        for k in (tok.index - 2, tok.index + 2):
            if k in at_word and words[(k + tok.index) // 2][0].lower() in _JOINERS:
                return True
        return False

    @staticmethod
    def _parenthesised(text: str, tok: _Token) -> bool:
        """``Name (SYM)`` or ``SYM (Name)``: a listing written out."""
        end = tok.start + len(tok.symbol)
        before, after = text[max(0, tok.start - 40) : tok.start], text[end : end + 40]
        if before.endswith("(") and after.startswith(")"):
            return re.search(r"[A-Z][\w.&'’-]*\s*\($", before) is not None
        return re.match(r"\s*\([A-Z][a-z]", after) is not None
