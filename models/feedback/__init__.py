"""Analyst feedback: corrections of scored documents, stored durably and fed to retraining.

A person who sees a wrong label (an alert's evidence, a dashboard headline)
records a :class:`Correction` of the document's sentiment and/or topic. The
:class:`FeedbackStore` keeps one current correction per document in SQLite, with
every change in a history table; :func:`export_corrections` writes them as
Parquet, JSONL or CSV; :func:`split_of` fixes, by a hash of the document id,
whether a correction may be trained on (80 %) or is held out to judge models
(20 %). No torch here: the CLI and the services use it too.

>>> from datetime import datetime, timezone
>>> labels = LabelSets()
>>> draft = Draft.parse("n42", sentiment="negative", topic="earnings", labels=labels)
>>> c = draft.with_scored("Acme misses estimates", "finsentinel-minilm", "0.3.0").complete(
...     created_at=datetime(2026, 1, 5, tzinfo=timezone.utc), source="cli")
>>> with FeedbackStore(":memory:") as store:
...     store.add(c).outcome, len(store), c.topic, c.split
('added', 1, 'Earnings', 'train')
"""

from models.feedback.corrections import (
    HOLDOUT_PERCENT,
    SPLITS,
    Correction,
    Draft,
    LabelSets,
    Split,
    split_of,
)
from models.feedback.files import (
    EXPORT_COLUMNS,
    PARQUET_SCHEMA,
    export_corrections,
    load_corrections,
    read_rows,
)
from models.feedback.store import FeedbackStore, Stored, is_store

__all__ = [
    "EXPORT_COLUMNS",
    "HOLDOUT_PERCENT",
    "PARQUET_SCHEMA",
    "SPLITS",
    "Correction",
    "Draft",
    "FeedbackStore",
    "LabelSets",
    "Split",
    "Stored",
    "export_corrections",
    "is_store",
    "load_corrections",
    "read_rows",
    "split_of",
]
