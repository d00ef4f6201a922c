"""Versioned message schemas: the one contract every stage imports.

Three documents travel through Kafka as UTF-8 JSON:

* :class:`RawDocument` -- a news article or comment as a crawler found it;
* :class:`ScoredDocument` -- the raw fields plus the model's topic and sentiment;
* :class:`Alert` -- a firing, updated or resolved alert with its evidence;
* :class:`StoryBreadth` -- a crawler's update when later copies of an already
  produced story arrive from other outlets (how widely it spread);
* :class:`FeedbackRecord` -- an analyst's correction of a scored document's labels;

and a :class:`DeadLetter` wraps any record a stage could not process, with the
original bytes and the reason. Every consumer decodes with :func:`decode`, which
raises :class:`~stream.contracts.errors.SchemaError` with a reason from
:data:`REJECT_REASONS`.

>>> from datetime import datetime, timezone
>>> t = datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc)
>>> doc = RawDocument(id="a1", source="wire", kind="news", title="Acme beats estimates",
...                   tickers=["ACME"], published_at=t, fetched_at=t)
>>> decode(encode(doc), RawDocument) == doc
True
>>> decode(b'{"schema_version": 99}', RawDocument)
Traceback (most recent call last):
...
stream.contracts.errors.SchemaError: unsupported_version: schema_version 99 is not ...
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, TypeVar, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from stream.contracts.errors import SchemaError

__all__ = [
    "MAX_MESSAGE_BYTES",
    "REJECT_REASONS",
    "SCHEMA_VERSION",
    "SENTIMENT_LABELS",
    "UNSUPPORTED_REASONS",
    "Alert",
    "AlertEvidence",
    "DeadLetter",
    "FeedbackRecord",
    "RawDocument",
    "ScoredDocument",
    "StoryBreadth",
    "decode",
    "encode",
    "message_key",
]

SCHEMA_VERSION: Final = 1
#: Largest message a consumer accepts; larger ones are dead-lettered as ``too_large``.
MAX_MESSAGE_BYTES: Final = 1_000_000
#: A sentiment class; the one place the classes are spelled.
Sentiment = Literal["negative", "neutral", "positive"]
#: Sentiment classes, in the order of the model's sentiment head.
SENTIMENT_LABELS: Final[tuple[Sentiment, ...]] = get_args(Sentiment)
#: Why the model's sentiment of a document is not to be trusted (``None``: it is).
#: ``language``: the text is in a language the model was not trained on;
#: ``no_text``: too few words to read (emoji, cashtags, links only).
UNSUPPORTED_REASONS: Final = ("language", "no_text")
#: Every reason a record can be rejected for. A fixed set: it is a metric label.
REJECT_REASONS: Final = (
    "too_large",
    "undecodable",
    "malformed_json",
    "unsupported_version",
    "schema_violation",
    "empty_text",
    "processing_error",
)

_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)

Kind = Literal["news", "comment"]
Ticker = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9.\-]{0,14}$")]
ShortStr = Annotated[str, Field(max_length=512)]


def _utc(value: datetime) -> datetime:
    if not _EARLIEST <= value <= _LATEST:
        raise ValueError(f"timestamp {value.isoformat()} is outside 1990..2200")
    return value.astimezone(UTC)


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    schema_version: Literal[1] = SCHEMA_VERSION


class RawDocument(_Message):
    """A document as a crawler produced it, before scoring."""

    id: Annotated[str, Field(min_length=1, max_length=256)]
    source: Annotated[str, Field(min_length=1, max_length=128)]
    kind: Kind
    url: Annotated[str, Field(max_length=2048)] | None = None
    title: Annotated[str, Field(max_length=2_000)] = ""
    body: Annotated[str, Field(max_length=200_000)] = ""
    author: ShortStr | None = None
    language: Annotated[str, Field(min_length=2, max_length=16)] = "en"
    tickers: Annotated[list[Ticker], Field(max_length=64)] = []
    #: Relevance of each ticker to the document in [0, 1] (position and frequency).
    ticker_relevance: dict[Ticker, Annotated[float, Field(ge=0, le=1)]] = {}
    tags: Annotated[list[ShortStr], Field(max_length=64)] = []
    #: How many syndicated copies of this story the crawler folded into this one.
    copies: Annotated[int, Field(ge=1)] = 1
    #: 1.0 for a story never seen before, towards 0.0 for a rehash of recent ones.
    novelty: Annotated[float, Field(ge=0, le=1)] | None = None
    published_at: AwareDatetime
    fetched_at: AwareDatetime

    _to_utc = field_validator("published_at", "fetched_at")(_utc)

    @property
    def text(self) -> str:
        """The text the model scores: title and body joined."""
        if self.title and self.body:
            return f"{self.title}. {self.body}"
        return self.title or self.body


class ScoredDocument(RawDocument):
    """A raw document with the model's topic and sentiment."""

    topic: Annotated[str, Field(min_length=1, max_length=64)]
    topic_probs: dict[str, float]
    sentiment: Sentiment
    sentiment_probs: dict[Sentiment, float]
    #: P(positive) - P(negative), in [-1, 1].
    sentiment_score: Annotated[float, Field(ge=-1, le=1)]
    model_name: ShortStr
    model_version: ShortStr
    scored_at: AwareDatetime
    #: ISO 639-1 code the scorer detected in the text (``None``: too little text to tell,
    #: or scored before detection existed). ``language`` is what the source declared.
    detected_language: Annotated[str, Field(min_length=2, max_length=16)] | None = None
    #: Set when the sentiment is the model's output on a text it cannot read (see
    #: :data:`UNSUPPORTED_REASONS`); consumers leave such documents out of sentiment.
    unsupported_reason: Literal["language", "no_text"] | None = None

    _scored_utc = field_validator("scored_at")(_utc)

    @property
    def confidence(self) -> float:
        """Probability of the predicted sentiment class."""
        return self.sentiment_probs[self.sentiment]

    @property
    def supported(self) -> bool:
        """Whether the model could read the text (its sentiment counts)."""
        return self.unsupported_reason is None


class AlertEvidence(BaseModel):
    """One document that drove an alert."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str
    url: str | None = None
    source: str
    published_at: AwareDatetime
    sentiment: Sentiment
    sentiment_score: float
    confidence: float
    #: Copies of the story seen across outlets (1: this outlet only, as far as known).
    copies: Annotated[int, Field(ge=1)] = 1
    #: The outlets that carried it, first one first (empty when unknown).
    outlets: list[ShortStr] = []


class StoryBreadth(_Message):
    """How widely a produced story spread: its copies so far and the outlets carrying them.

    A crawler sends one when a later copy of an already produced document
    arrives (or when a first batch folded copies from several outlets). The
    counts only grow, so a consumer keeps the largest ``copies`` per
    ``document_id`` and the union of ``outlets``: a replayed update counts
    nothing twice.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc)
    >>> b = StoryBreadth(document_id="a1", copies=3, outlets=["wire", "daily", "blog"],
    ...                  updated_at=t)
    >>> decode(encode(b), StoryBreadth) == b
    True
    """

    #: The produced document (:attr:`RawDocument.id`) the copies fold into.
    document_id: Annotated[str, Field(min_length=1, max_length=256)]
    #: Copies seen so far, the first one included.
    copies: Annotated[int, Field(ge=1)]
    #: Distinct outlets (document ``source``) that carried the story, first one first.
    outlets: Annotated[list[ShortStr], Field(max_length=256)] = []
    #: When the crawler saw the latest copy.
    updated_at: AwareDatetime

    _updated_utc = field_validator("updated_at")(_utc)


class FeedbackRecord(_Message):
    """An analyst's correction of a document's labels, as stored (keyed by ``doc_id``).

    ``sentiment``/``topic`` are the corrected labels (``None``: that head was not
    corrected); ``revision`` grows by one each time the stored correction of the
    document changes, so a consumer keeps the highest revision per ``doc_id``.
    ``split`` is the document's fixed place in retraining: ``train`` rows may be
    trained on, ``holdout`` rows only judge candidates.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc)
    >>> r = FeedbackRecord(doc_id="a1", text="Acme misses", sentiment="negative",
    ...                    split="train", revision=1, created_at=t, source="cli")
    >>> decode(encode(r), FeedbackRecord) == r
    True
    """

    doc_id: Annotated[str, Field(min_length=1, max_length=256)]
    #: The document's text as the model scored it (title and body joined).
    text: Annotated[str, Field(min_length=1, max_length=202_002)]
    sentiment: Sentiment | None = None
    topic: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    note: Annotated[str, Field(max_length=4_000)] | None = None
    split: Literal["train", "holdout"]
    #: The model that scored the text (``None``: unknown, e.g. text given by hand).
    model_name: ShortStr | None = None
    model_version: ShortStr | None = None
    revision: Annotated[int, Field(ge=1)]
    created_at: AwareDatetime
    #: Where the correction came from (``cli``, ``import:<file name>``).
    source: ShortStr

    _created_utc = field_validator("created_at")(_utc)


class Alert(_Message):
    """A state change of an alert rule on one series, with its evidence."""

    #: Stable identity of the condition (rule + series); the dedup key.
    key: Annotated[str, Field(min_length=1, max_length=512)]
    rule: ShortStr
    series_kind: Literal["topic", "ticker", "source", "all", "group"]
    series: ShortStr
    state: Literal["firing", "updated", "resolved"]
    severity: Literal["info", "warning", "critical"]
    #: Combined detector score in [0, 1].
    score: Annotated[float, Field(ge=0, le=1)]
    observed: float
    baseline: float
    window_start: AwareDatetime
    window_end: AwareDatetime
    started_at: AwareDatetime
    updated_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    summary: Annotated[str, Field(max_length=4_000)]
    labels: dict[ShortStr, ShortStr] = {}
    evidence: list[AlertEvidence] = []


class DeadLetter(_Message):
    """A record a stage rejected, kept with its original bytes and the reason."""

    stage: Literal["ingest", "score", "alerts", "archive", "replay"]
    reason: Literal[REJECT_REASONS]  # type: ignore[valid-type]
    detail: Annotated[str, Field(max_length=4_000)]
    source_topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key_b64: str | None = None
    original_b64: str
    failed_at: AwareDatetime
    #: True when ``original_b64`` holds only the first bytes of the record (see
    #: :func:`stream.contracts.deadletters.dead_letter`); the whole record stays in
    #: its source topic at ``partition``/``offset``. Optional: older letters lack it.
    truncated: bool = False
    #: Size in bytes of the rejected record before any cut (``None`` in older letters).
    original_bytes: Annotated[int, Field(ge=0)] | None = None

    @classmethod
    def wrap(
        cls,
        original: bytes,
        error: SchemaError,
        *,
        stage: str,
        failed_at: datetime,
        source_topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        key: bytes | None = None,
        truncated: bool = False,
        original_bytes: int | None = None,
    ) -> DeadLetter:
        """Build the dead letter for ``original`` rejected with ``error``, as given.

        Services use :func:`stream.contracts.deadletters.dead_letter`, which caps
        the original's size so the letter always fits one Kafka message.
        """
        return cls(
            stage=stage,  # type: ignore[arg-type]
            reason=error.reason,
            detail=error.detail[:4_000],
            source_topic=source_topic,
            partition=partition,
            offset=offset,
            key_b64=base64.b64encode(key).decode() if key is not None else None,
            original_b64=base64.b64encode(original).decode(),
            failed_at=failed_at,
            truncated=truncated,
            original_bytes=len(original) if original_bytes is None else original_bytes,
        )

    @property
    def original(self) -> bytes:
        """The rejected record's bytes as received (only the first ones if ``truncated``)."""
        return base64.b64decode(self.original_b64)


M = TypeVar("M", bound=_Message)


def encode(message: _Message) -> bytes:
    """Serialise a message to compact UTF-8 JSON."""
    return message.model_dump_json().encode()


def decode(data: bytes, model: type[M]) -> M:
    """Parse and validate ``data`` as ``model``; raise :class:`SchemaError` with a reason."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise SchemaError("too_large", f"{len(data)} bytes > limit {MAX_MESSAGE_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError("undecodable", f"not UTF-8: {exc}") from exc
    try:
        obj: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError("malformed_json", str(exc)) from exc
    except RecursionError as exc:  # hostile nesting ("[[[[..."): a reject, not a crash loop
        raise SchemaError("malformed_json", "JSON nested too deeply") from exc
    if not isinstance(obj, dict):
        raise SchemaError("schema_violation", f"expected a JSON object, got {type(obj).__name__}")
    version = obj.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise SchemaError(
            "unsupported_version",
            f"schema_version {version!r} is not supported (expected {SCHEMA_VERSION})",
        )
    try:
        message = model.model_validate(obj)
    except ValidationError as exc:
        raise SchemaError("schema_violation", _describe(exc)) from exc
    if isinstance(message, RawDocument) and not message.text.strip():
        raise SchemaError("empty_text", "title and body are both empty")
    return message


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def message_key(doc: RawDocument) -> bytes:
    """Kafka key for a document: its most relevant ticker, else its source.

    Keeping one ticker on one partition keeps its documents in order.
    """
    if doc.tickers:
        best = max(doc.tickers, key=lambda t: doc.ticker_relevance.get(t, 0.0))
        return best.encode()
    return doc.source.encode()
