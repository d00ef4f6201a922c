"""A behavioural test suite for news headlines, in the spirit of CheckList (no torch).

``headlines.jsonl`` holds 481 headlines written for this project over 44
financial event types (bankruptcy, deposit run, AT1 write-off, downgrade, …,
their positive counterparts and neutral ones), each labeled with the sentiment
an analyst would give the named company's stock, a topic where one is clear,
and the capability it probes (plain, tabloid, emoji/cashtag, negation,
hedging). A third of every event type is held out as the test set
(:func:`~models.checklist.suite.split_ids`); the rest may be used in training
(``finsentinel train --checklist``). ``python -m models.checklist --model DIR``
prints accuracy per event type and capability and writes a JSON report.

>>> from models.checklist import load_suite
>>> load_suite().select("test")[0].event_type
'bankruptcy'
"""

from __future__ import annotations

from models.checklist.report import (
    TARGET_ACCURACY,
    card_entry,
    evaluate_suite,
    format_report,
    markdown_table,
    summarise,
)
from models.checklist.suite import (
    CAPABILITIES,
    SPLITS,
    SUITE_FILE,
    Headline,
    Suite,
    SuiteRow,
    load_suite,
    split_ids,
)

__all__ = [
    "CAPABILITIES",
    "SPLITS",
    "SUITE_FILE",
    "TARGET_ACCURACY",
    "Headline",
    "Suite",
    "SuiteRow",
    "card_entry",
    "evaluate_suite",
    "format_report",
    "load_suite",
    "markdown_table",
    "split_ids",
    "summarise",
]
