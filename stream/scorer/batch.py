"""The scorer's core: a micro-batch of Kafka records in, scored documents or dead letters out.

No Kafka here, so the benchmark and tests drive it directly. Every record
yields exactly one :class:`Outcome`, in input order: nothing is dropped.
Decoding uses :func:`stream.contracts.schemas.decode`; texts are tokenized once with the
fast tokenizer and scored by :class:`models.scoring.Classifier` (which sorts
windows by length and pads each ONNX batch to its longest member). If the
model fails on a batch, the batch is retried one document at a time so only
the poison record is dead-lettered (``processing_error``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from stream.contracts.deadletters import InputRecord, dead_letter
from stream.contracts.errors import SchemaError
from stream.contracts.schemas import DeadLetter, RawDocument, ScoredDocument, decode, message_key

if TYPE_CHECKING:
    from models.encoding import EncodedText
    from models.scoring import Classifier, Prediction

__all__ = ["BatchResult", "BatchScorer", "Outcome"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What became of one record: exactly one of ``scored`` and ``dead`` is set."""

    record: InputRecord
    scored: ScoredDocument | None = None
    dead: DeadLetter | None = None

    @property
    def key(self) -> bytes | None:
        """Kafka key of the output: the document's key, else the input record's."""
        if self.scored is not None:
            return message_key(self.scored)
        return self.record.key


@dataclass(frozen=True)
class BatchResult:
    """The outcomes of a micro-batch, in input order, and the time spent scoring."""

    outcomes: list[Outcome]
    #: Tokenization plus inference, seconds.
    inference_s: float

    @property
    def scored(self) -> list[ScoredDocument]:
        """The scored documents."""
        return [o.scored for o in self.outcomes if o.scored is not None]

    @property
    def dead(self) -> list[DeadLetter]:
        """The dead letters."""
        return [o.dead for o in self.outcomes if o.dead is not None]


def _decode(record: InputRecord) -> RawDocument:
    if record.value is None:
        raise SchemaError("schema_violation", "record has no value (a tombstone)")
    return decode(record.value, RawDocument)


class BatchScorer:
    """Score micro-batches of raw records with one :class:`~models.scoring.Classifier`."""

    def __init__(
        self,
        classifier: Classifier,
        *,
        clock: Callable[[], datetime],
        inference_batch_size: int = 64,
        max_document_tokens: int = 16_384,
        max_original_bytes: int = 700_000,
    ) -> None:
        self.classifier = classifier
        self._clock = clock
        self._batch_size = inference_batch_size
        self._max_tokens = max_document_tokens
        self._max_original = max_original_bytes
        self._model_name = classifier.card.name
        self._model_version = classifier.card.version

    def score(self, records: Sequence[InputRecord]) -> BatchResult:
        """One outcome per record, in order; never raises for a bad record."""
        now = self._clock()
        outcomes: dict[int, Outcome] = {}
        docs: list[tuple[int, RawDocument]] = []
        for i, record in enumerate(records):
            try:
                docs.append((i, _decode(record)))
            except SchemaError as exc:
                outcomes[i] = self._dead(record, exc, now)
        by_index = dict(docs)
        started = time.perf_counter()
        results = self._score_docs(docs)
        elapsed = time.perf_counter() - started
        for i, result in results.items():
            if isinstance(result, SchemaError):
                outcomes[i] = self._dead(records[i], result, now)
            else:
                outcomes[i] = self._scored(records[i], by_index[i], result, now)
        return BatchResult([outcomes[i] for i in range(len(records))], elapsed)

    def _dead(self, record: InputRecord, error: SchemaError, now: datetime) -> Outcome:
        logger.warning(
            "dead-lettering %s[%s]@%s: %s", record.topic, record.partition, record.offset, error
        )
        letter = dead_letter(record, error, failed_at=now, max_original_bytes=self._max_original)
        return Outcome(record, dead=letter)

    def _score_docs(
        self, docs: list[tuple[int, RawDocument]]
    ) -> dict[int, Prediction | SchemaError]:
        """Predictions (or the error to dead-letter) for each document index."""
        if not docs:
            return {}
        results: dict[int, Prediction | SchemaError] = {}
        encoded = self._tokenize(docs, results)
        if not encoded:
            return results
        try:
            predictions = self.classifier.predict_encoded(
                [e for _, e in encoded], batch_size=self._batch_size
            )
        except Exception:  # ORT raises bare RuntimeErrors; isolate the poison record below
            logger.exception("scoring a batch of %s failed; retrying one by one", len(encoded))
            results.update(self._one_by_one(encoded))
        else:
            results.update({i: p for (i, _), p in zip(encoded, predictions, strict=True)})
        return results

    def _tokenize(
        self, docs: list[tuple[int, RawDocument]], results: dict[int, Prediction | SchemaError]
    ) -> list[tuple[int, EncodedText]]:
        encodings: list[EncodedText | None]
        try:
            encodings = list(self.classifier.tokenize([doc.text for _, doc in docs]))
        except Exception:  # the fast tokenizer raises plain Exceptions; isolate per document
            logger.exception("tokenizing a batch failed; retrying one by one")
            encodings = [self._tokenize_one(i, doc, results) for i, doc in docs]
        kept: list[tuple[int, EncodedText]] = []
        for (i, _), enc in zip(docs, encodings, strict=True):
            if enc is None:
                continue
            if enc.n_tokens > self._max_tokens:
                results[i] = SchemaError(
                    "too_large", f"{enc.n_tokens} tokens > max_document_tokens={self._max_tokens}"
                )
            else:
                kept.append((i, enc))
        return kept

    def _tokenize_one(
        self, i: int, doc: RawDocument, results: dict[int, Prediction | SchemaError]
    ) -> EncodedText | None:
        try:
            return self.classifier.tokenize([doc.text])[0]
        except Exception as exc:  # dead-lettered with the error, never dropped
            results[i] = SchemaError("processing_error", f"tokenization failed: {exc!r}")
            return None

    def _one_by_one(
        self, encoded: list[tuple[int, EncodedText]]
    ) -> dict[int, Prediction | SchemaError]:
        results: dict[int, Prediction | SchemaError] = {}
        for i, enc in encoded:
            try:
                results[i] = self.classifier.predict_encoded([enc], batch_size=1)[0]
            except Exception as exc:  # the poison record: dead-lettered with the error
                results[i] = SchemaError("processing_error", f"model failed: {exc!r}")
        return results

    def _scored(
        self, record: InputRecord, doc: RawDocument, pred: Prediction, now: datetime
    ) -> Outcome:
        try:
            scored = ScoredDocument(
                **dict(doc),
                topic=pred.topic,
                topic_probs=pred.topic_probs,
                sentiment=pred.sentiment,  # type: ignore[arg-type]  # validated here
                sentiment_probs=pred.sentiment_probs,  # type: ignore[arg-type]
                sentiment_score=pred.sentiment_score,
                model_name=self._model_name,
                model_version=self._model_version,
                scored_at=now,
            )
        except ValidationError as exc:
            error = SchemaError("processing_error", f"scored document is invalid: {exc}")
            return self._dead(record, error, now)
        return Outcome(record, scored=scored)
