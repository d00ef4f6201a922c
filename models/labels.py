"""Label sets of the two heads, defined once.

The sentiment head's classes follow :data:`stream.contracts.schemas.SENTIMENT_LABELS`.
The public training data (zeroshot "Twitter Financial News") numbers its
classes differently; :data:`SENTIMENT_DATA_IDS` maps those ids to our names.

>>> SENTIMENT_DATA_IDS[1]
'positive'
>>> TOPIC_LABELS[1]
'Fed | Central Banks'
"""

from __future__ import annotations

from typing import Final

from stream.contracts.schemas import SENTIMENT_LABELS

__all__ = [
    "HEADS",
    "SENTIMENT_ALIASES",
    "SENTIMENT_DATA_IDS",
    "SENTIMENT_LABELS",
    "TOPIC_LABELS",
]

#: The two heads of the multi-task model.
HEADS: Final = ("sentiment", "topic")

#: Integer ids of the zeroshot sentiment data set: 0 Bearish, 1 Bullish, 2 Neutral.
SENTIMENT_DATA_IDS: Final[dict[int, str]] = {0: "negative", 1: "positive", 2: "neutral"}

#: Other spellings of the sentiment classes accepted in labeled files.
SENTIMENT_ALIASES: Final[dict[str, str]] = {
    "bearish": "negative",
    "bullish": "positive",
    **{label: label for label in SENTIMENT_LABELS},
}

#: The 20 topics of the zeroshot topic data set, in the order of its integer ids.
TOPIC_LABELS: Final[tuple[str, ...]] = (
    "Analyst Update",
    "Fed | Central Banks",
    "Company | Product News",
    "Treasuries | Corporate Debt",
    "Dividend",
    "Earnings",
    "Energy | Oil",
    "Financials",
    "Currencies",
    "General News | Opinion",
    "Gold | Metals | Materials",
    "IPO",
    "Legal | Regulation",
    "M&A | Investments",
    "Macro",
    "Markets",
    "Politics",
    "Personnel Change",
    "Stock Commentary",
    "Stock Movement",
)
