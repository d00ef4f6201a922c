"""Score documents: :class:`~stream.contracts.schemas.RawDocument` in, scored documents out.

The document-level core shared by the stream scorer (:mod:`stream.scorer.batch`,
which adds decoding and dead letters around it), replay rescoring and
backtests: texts are tokenized once with the fast tokenizer and scored by
:class:`models.scoring.Classifier` (which sorts windows by length and pads each
ONNX batch to its longest member). If the model fails on a batch, the batch is
retried one document at a time so that only the poison document fails
(``processing_error``). Every input gets exactly one result, in input order.

Each scored document also says whether the model could read it
(:func:`models.lang.check_text`): ``detected_language``, and
``unsupported_reason`` (``language`` or ``no_text``) next to the model's output,
which is kept; consumers leave unsupported documents out of sentiment.

An optional ``observe`` callback gets each batch's successful predictions (the
scorer's drift monitor, :mod:`stream.scorer.drift`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from models.lang import MODEL_LANGUAGES, check_text, load_detector
from stream.contracts.errors import SchemaError
from stream.contracts.schemas import RawDocument, ScoredDocument

if TYPE_CHECKING:
    from models.encoding import EncodedText
    from models.scoring import Classifier, Prediction

__all__ = ["DocumentScorer"]

logger = logging.getLogger(__name__)


class DocumentScorer:
    """Score :class:`RawDocument` batches with one :class:`~models.scoring.Classifier`."""

    def __init__(
        self,
        classifier: Classifier,
        *,
        clock: Callable[[], datetime],
        inference_batch_size: int = 64,
        max_document_tokens: int = 16_384,
        languages: tuple[str, ...] = MODEL_LANGUAGES,
        observe: Callable[[Sequence[Prediction]], None] | None = None,
    ) -> None:
        self.classifier = classifier
        self._observe = observe
        self.languages = languages
        load_detector()  # once per process, at start-up rather than on the first batch
        self._clock = clock
        self._batch_size = inference_batch_size
        self._max_tokens = max_document_tokens
        self._model_name = classifier.card.name
        self._model_version = classifier.card.version

    def score_documents(self, docs: Sequence[RawDocument]) -> list[ScoredDocument | SchemaError]:
        """The scored document of each input, or the error that rejects it; never raises."""
        now = self._clock()
        results = self._predict(list(enumerate(docs)))
        out: list[ScoredDocument | SchemaError] = []
        for i, doc in enumerate(docs):
            result = results[i]
            out.append(
                result if isinstance(result, SchemaError) else self._scored(doc, result, now)
            )
        return out

    def _predict(self, docs: list[tuple[int, RawDocument]]) -> dict[int, Prediction | SchemaError]:
        """Predictions (or the error that rejects the document) for each document index."""
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
        except Exception:  # ORT raises bare RuntimeErrors; isolate the poison document below
            logger.exception("scoring a batch of %s failed; retrying one by one", len(encoded))
            results.update(self._one_by_one(encoded))
            predictions = [p for p in results.values() if not isinstance(p, SchemaError)]
        else:
            results.update({i: p for (i, _), p in zip(encoded, predictions, strict=True)})
        if self._observe is not None:
            self._observe(predictions)
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
        except Exception as exc:  # rejected with the error, never dropped
            results[i] = SchemaError("processing_error", f"tokenization failed: {exc!r}")
            return None

    def _one_by_one(
        self, encoded: list[tuple[int, EncodedText]]
    ) -> dict[int, Prediction | SchemaError]:
        results: dict[int, Prediction | SchemaError] = {}
        for i, enc in encoded:
            try:
                results[i] = self.classifier.predict_encoded([enc], batch_size=1)[0]
            except Exception as exc:  # the poison document: rejected with the error
                results[i] = SchemaError("processing_error", f"model failed: {exc!r}")
        return results

    def _scored(
        self, doc: RawDocument, pred: Prediction, now: datetime
    ) -> ScoredDocument | SchemaError:
        raw = {k: v for k, v in dict(doc).items() if k in RawDocument.model_fields}
        readable = check_text(doc.text, languages=self.languages)
        try:
            return ScoredDocument(
                **raw,
                topic=pred.topic,
                topic_probs=pred.topic_probs,
                sentiment=pred.sentiment,  # type: ignore[arg-type]  # validated here
                sentiment_probs=pred.sentiment_probs,  # type: ignore[arg-type]
                sentiment_score=pred.sentiment_score,
                model_name=self._model_name,
                model_version=self._model_version,
                scored_at=now,
                detected_language=readable.language,
                unsupported_reason=readable.unsupported_reason,
            )
        except ValidationError as exc:
            return SchemaError("processing_error", f"scored document is invalid: {exc}")
