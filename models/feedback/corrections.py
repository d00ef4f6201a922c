"""What a correction is, which labels it may carry, and which split its document is in.

A :class:`Correction` is an analyst's verdict on one scored document: the text
as the model scored it, the corrected sentiment and/or topic, an optional note,
and the model that produced the output being corrected. Labels are checked
against the label sets of a model card (:class:`LabelSets`), so a misspelt
topic is refused at once instead of poisoning a retrain.

>>> labels = LabelSets(topics=("Earnings", "Macro"))
>>> labels.sentiment("Bearish"), labels.topic("earnings")
('negative', 'Earnings')
>>> labels.topic("Earning")
Traceback (most recent call last):
...
models.exceptions.FeedbackError: unknown topic 'Earning'; expected one of 'Earnings', 'Macro'
>>> split_of("doc-0"), split_of("doc-1")
('train', 'holdout')
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final, Literal

from models.exceptions import FeedbackError
from models.labels import SENTIMENT_ALIASES, SENTIMENT_LABELS, TOPIC_LABELS
from models.modeldir import ModelCard

__all__ = [
    "HOLDOUT_PERCENT",
    "SPLITS",
    "Correction",
    "Draft",
    "LabelSets",
    "Split",
    "split_of",
]

Split = Literal["train", "holdout"]
SPLITS: Final[tuple[Split, ...]] = ("train", "holdout")
#: Share of documents (by a hash of their id) whose corrections are held out from training.
HOLDOUT_PERCENT: Final = 20
#: Longest note kept with a correction (the ``feedback`` topic's limit).
MAX_NOTE_CHARS: Final = 4_000


def split_of(doc_id: str) -> Split:
    """``holdout`` for 20 % of document ids, ``train`` for the rest; the same forever.

    The bucket is the first 8 bytes of SHA-256 of the UTF-8 id, modulo 100, so
    every process, machine and Python version agrees (``hash()`` would not).

    >>> [split_of(f"n{i}") for i in range(6)]
    ['train', 'holdout', 'holdout', 'train', 'train', 'holdout']
    """
    digest = hashlib.sha256(doc_id.encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    return "holdout" if bucket < HOLDOUT_PERCENT else "train"


@dataclass(frozen=True)
class LabelSets:
    """The labels a correction may use: the model card's sentiment classes and topics."""

    topics: tuple[str, ...] = TOPIC_LABELS
    sentiments: tuple[str, ...] = SENTIMENT_LABELS

    @classmethod
    def from_card(cls, card: ModelCard) -> LabelSets:
        """The label sets of the model described by ``card``."""
        return cls(topics=tuple(card.topic_labels), sentiments=tuple(card.sentiment_labels))

    def sentiment(self, value: str) -> str:
        """The canonical sentiment class of ``value`` (any case, ``bearish``/``bullish`` too)."""
        key = value.strip().lower()
        name = SENTIMENT_ALIASES.get(key, key)
        if name not in self.sentiments:
            allowed = ", ".join(self.sentiments)
            raise FeedbackError(f"unknown sentiment {value!r}; expected one of {allowed}")
        return name

    def topic(self, value: str) -> str:
        """The card's spelling of topic ``value`` (matched without regard to case)."""
        lookup = {t.lower(): t for t in self.topics}
        found = lookup.get(value.strip().lower())
        if found is None:
            allowed = ", ".join(repr(t) for t in self.topics)
            raise FeedbackError(f"unknown topic {value!r}; expected one of {allowed}")
        return found


def _blank(value: str | None) -> str | None:
    return None if value is None or not value.strip() else value.strip()


@dataclass(frozen=True)
class Draft:
    """A correction as a person typed it: labels checked, text possibly still to be found.

    >>> d = Draft.parse("a1", sentiment="Bullish", topic=" ", labels=LabelSets())
    >>> d.sentiment, d.topic, d.text
    ('positive', None, None)
    """

    doc_id: str
    sentiment: str | None = None
    topic: str | None = None
    note: str | None = None
    #: The text as scored, when the person supplied it.
    text: str | None = None
    model_name: str | None = None
    model_version: str | None = None

    @classmethod
    def parse(
        cls,
        doc_id: str,
        *,
        labels: LabelSets,
        sentiment: str | None = None,
        topic: str | None = None,
        note: str | None = None,
        text: str | None = None,
        model_name: str | None = None,
        model_version: str | None = None,
    ) -> Draft:
        """Check and normalise one correction; :class:`FeedbackError` names what is wrong."""
        doc = _blank(doc_id)
        if doc is None or len(doc) > 256:
            raise FeedbackError(f"doc id {doc_id!r} must be 1 to 256 characters")
        sentiment, topic = _blank(sentiment), _blank(topic)
        if sentiment is None and topic is None:
            raise FeedbackError(f"doc {doc}: give a sentiment and/or a topic to correct")
        note = _blank(note)
        if note is not None and len(note) > MAX_NOTE_CHARS:
            raise FeedbackError(f"doc {doc}: note is longer than {MAX_NOTE_CHARS} characters")
        try:
            return cls(
                doc,
                None if sentiment is None else labels.sentiment(sentiment),
                None if topic is None else labels.topic(topic),
                note,
                _blank(text),
                _blank(model_name),
                _blank(model_version),
            )
        except FeedbackError as exc:
            raise FeedbackError(f"doc {doc}: {exc}") from None

    def with_scored(self, text: str, model_name: str | None, model_version: str | None) -> Draft:
        """This draft with the text (and model) found where the document was scored."""
        return replace(self, text=text, model_name=model_name, model_version=model_version)

    def complete(self, *, created_at: datetime, source: str) -> Correction:
        """The correction to store; :class:`FeedbackError` when the text is still unknown."""
        if self.text is None:
            raise FeedbackError(f"doc {self.doc_id}: no text as scored (give it with --text)")
        return Correction(
            doc_id=self.doc_id,
            text=self.text,
            sentiment=self.sentiment,
            topic=self.topic,
            note=self.note,
            model_name=self.model_name,
            model_version=self.model_version,
            created_at=created_at.astimezone(UTC),
            source=source,
        )


@dataclass(frozen=True)
class Correction:
    """One stored correction: the text as scored and the labels it should have had.

    ``revision`` counts the changes of the document's stored correction (0: not
    stored yet); ``published`` says whether that revision reached the topic.
    """

    doc_id: str
    text: str
    sentiment: str | None
    topic: str | None
    created_at: datetime
    source: str
    note: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    revision: int = 0
    published: bool = False

    @property
    def split(self) -> Split:
        """``train`` or ``holdout``, fixed by the document id (:func:`split_of`)."""
        return split_of(self.doc_id)

    def label(self, head: str) -> str | None:
        """The corrected label of ``head`` (``sentiment`` or ``topic``), if any."""
        if head not in ("sentiment", "topic"):
            raise FeedbackError(f"unknown head {head!r}; use 'sentiment' or 'topic'")
        return self.sentiment if head == "sentiment" else self.topic

    def merged(self, later: Correction) -> Correction:
        """``later`` over this one: heads ``later`` leaves empty keep their label."""
        return replace(
            later,
            sentiment=later.sentiment or self.sentiment,
            topic=later.topic or self.topic,
            note=later.note if later.note is not None else self.note,
            model_name=later.model_name or self.model_name,
            model_version=later.model_version or self.model_version,
            revision=self.revision,
            published=self.published,
        )

    def same_content(self, other: Correction) -> bool:
        """Whether both say the same thing (times, source and revision aside)."""
        fields = ("doc_id", "text", "sentiment", "topic", "note", "model_name", "model_version")
        return all(getattr(self, f) == getattr(other, f) for f in fields)
