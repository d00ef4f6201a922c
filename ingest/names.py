"""Company names from an alias table, matched as whole words, with context.

A name counts only when it stands as a word: hyphens and apostrophes join
words, so "La Roche-Posay" is not Roche and "Meta-analysis" is not Meta (a
possessive "Apple's" is still Apple, and "Microsoft-backed" still Microsoft).
Aliases that are also ordinary words (``~Apple``, ``~Oracle``, ``~Target``) need
evidence that the company is meant:

* a context word within :data:`CONTEXT_CHARS` characters (shares, earnings,
  bonds, notes, debt, offering, rating, guidance, ...) or a possessive: a full link;
* otherwise a company verb right after the name ("Oracle sells", "Target cuts"),
  a context word elsewhere in the text, or another company named in it: a link
  with :data:`WEAK_WEIGHT` (lower relevance rather than no link);
* nothing of the kind ("Apple pie recipes"): no link.

>>> names = NameMatcher({"Oracle": "ORCL", "Roche": "ROG.SW"}, frozenset({"Oracle"}))
>>> names.find("Oracle sells $18 billion of bonds")
[('ORCL', 0, 1.0)]
>>> names.find("La Roche-Posay sunscreen"), names.find("The Oracle at Delphi")
([], [])
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = ["CONTEXT_CHARS", "WEAK_WEIGHT", "NameMatcher"]

#: How far (characters, either side) a context word may stand from an ambiguous name.
CONTEXT_CHARS: Final = 48
#: Relevance factor of an ambiguous name linked on weak evidence only.
WEAK_WEIGHT: Final = 0.5

_CONTEXT = re.compile(
    r"\b(shares?|stocks?|Inc|Corp|plc|AG|SE|NV|earnings|revenue|profits?|CEO|CFO|"
    r"chief executive|quarter(?:ly)?|investors?|analysts?|results|guidance|outlook|forecast|"
    r"dividends?|buyback|Nasdaq|NYSE|sales|lawsuit|acquisition|merger|deal|company|"
    r"market value|market cap|valuation|downgrade[sd]?|upgrade[sd]?|"
    # capital markets
    r"bonds?|notes|debt|offering|issuance|loan|credit|rating|rated|junk|investment grade|"
    r"yield|spreads?|refinanc\w*|IPO|stake|shareholders?|stockholders?|subsidiary|"
    r"layoffs|jobs)\b",
    re.IGNORECASE,
)
_VERB = re.compile(
    r"\s+(?:(?:also|again|now|quietly|reportedly)\s+)?"
    r"(sells|buys|cuts|raises|reports|posts|says|plans|unveils|launches|announces|agrees|"
    r"acquires|sues|settles|hires|files|warns|beats|misses|tops|wins|loses|invests|issues|"
    r"prices|expands|recalls|delays|names|appoints|faces|lifts|slashes|boosts|shuts|"
    r"closes|opens|signs|bets|pledges|rejects|confirms|denies|to\s+(?:buy|sell|cut|raise|"
    r"acquire|invest|hire|close|open|spin))\b"
)
_JOINING = "-‐'’"


class NameMatcher:
    """Finds aliases as whole words; ``ambiguous`` ones need context."""

    def __init__(self, aliases: Mapping[str, str], ambiguous: frozenset[str]) -> None:
        self.aliases = dict(aliases)
        self.ambiguous = ambiguous
        names = sorted(self.aliases, key=len, reverse=True)
        self._pattern = (
            re.compile(rf"(?<![\w$.&])(?:{'|'.join(re.escape(n) for n in names)})(?![\w&])")
            if names
            else None
        )

    def find(self, text: str) -> list[tuple[str, int, float]]:
        """``(symbol, offset, weight)`` per mention; weight 1.0, or lower on weak evidence."""
        if self._pattern is None:
            return []
        firm: list[tuple[str, int, float]] = []
        unsure: list[tuple[str, int]] = []
        for m in self._pattern.finditer(text):
            name, symbol = m.group(0), self.aliases[m.group(0)]
            if not _stands_alone(text, m.start(), m.end(), ambiguous=name in self.ambiguous):
                continue
            if name not in self.ambiguous or _in_context(text, m.start(), m.end()):
                firm.append((symbol, m.start(), 1.0))
            elif _VERB.match(text, m.end()):
                firm.append((symbol, m.start(), WEAK_WEIGHT))
            else:
                unsure.append((symbol, m.start()))
        # No context next to it, but the text is about companies: another company
        # named, or a context word further away ("Why does Berkshire keep selling Apple?").
        if unsure and (firm or _CONTEXT.search(text)):
            firm.extend((symbol, start, WEAK_WEIGHT) for symbol, start in unsure)
        return sorted(firm, key=lambda f: f[1])


def _stands_alone(text: str, start: int, end: int, *, ambiguous: bool = False) -> bool:
    """False when a hyphen or apostrophe glues the match into a longer name or word.

    A hyphen before a capital continues a name ("La Roche-Posay"); before a lower-case
    word it makes a modifier that still names the company ("Microsoft-backed"),
    except for everyday-word aliases ("Meta-analysis", "Apple-picking").

    >>> _stands_alone("La Roche-Posay", 3, 8), _stands_alone("Roche's drug", 0, 5)
    (False, True)
    >>> _stands_alone("Microsoft-backed", 0, 9)
    True
    >>> _stands_alone("Meta-analysis", 0, 4, ambiguous=True)
    False
    """
    after = text[end : end + 3]
    if after[:1] in _JOINING and after[1:2].isalnum():
        possessive = after[:1] in "'’" and after[1:2] == "s" and not after[2:3].isalnum()
        modifier = after[:1] in "-‐" and after[1:2].islower() and not ambiguous
        if not (possessive or modifier):
            return False
    before = text[max(0, start - 2) : start]
    return not (len(before) == 2 and before[1] in _JOINING and before[0].isalnum())


def _in_context(text: str, start: int, end: int) -> bool:
    if text[end : end + 2] in ("'s", "’s"):
        return True
    window = text[max(0, start - CONTEXT_CHARS) : end + CONTEXT_CHARS]
    return _CONTEXT.search(window) is not None
