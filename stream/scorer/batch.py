"""The scorer's core: a micro-batch of Kafka records in, scored documents or dead letters out.

No Kafka here, so the benchmark and tests drive it directly. Every record
yields exactly one :class:`Outcome`, in input order: nothing is dropped.
Records are decoded with :func:`stream.contracts.schemas.decode`; the decoded
documents are scored by :class:`models.documents.DocumentScorer` (shared with
replay rescoring and backtests), which isolates a poison document so that only
its record is dead-lettered (``processing_error``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from models.documents import DocumentScorer
from stream.contracts.deadletters import InputRecord, dead_letter
from stream.contracts.errors import SchemaError
from stream.contracts.schemas import DeadLetter, RawDocument, ScoredDocument, decode, message_key

if TYPE_CHECKING:
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
        observe: Callable[[Sequence[Prediction]], None] | None = None,
    ) -> None:
        self.classifier = classifier
        self._clock = clock
        self._max_original = max_original_bytes
        self.documents = DocumentScorer(
            classifier,
            clock=clock,
            inference_batch_size=inference_batch_size,
            max_document_tokens=max_document_tokens,
            observe=observe,
        )

    def score_documents(self, docs: Sequence[RawDocument]) -> list[ScoredDocument | SchemaError]:
        """Score already-decoded documents (rescoring, backtests): no records, no dead letters."""
        return self.documents.score_documents(docs)

    def score(self, records: Sequence[InputRecord]) -> BatchResult:
        """One outcome per record, in order; never raises for a bad record."""
        now = self._clock()
        outcomes: dict[int, Outcome] = {}
        decoded: list[tuple[int, RawDocument]] = []
        for i, record in enumerate(records):
            try:
                decoded.append((i, _decode(record)))
            except SchemaError as exc:
                outcomes[i] = self._dead(record, exc, now)
        started = time.perf_counter()
        results = self.documents.score_documents([doc for _, doc in decoded])
        elapsed = time.perf_counter() - started
        for (i, _), result in zip(decoded, results, strict=True):
            if isinstance(result, SchemaError):
                outcomes[i] = self._dead(records[i], result, now)
            else:
                outcomes[i] = Outcome(records[i], scored=result)
        return BatchResult([outcomes[i] for i in range(len(records))], elapsed)

    def _dead(self, record: InputRecord, error: SchemaError, now: datetime) -> Outcome:
        logger.warning(
            "dead-lettering %s[%s]@%s: %s", record.topic, record.partition, record.offset, error
        )
        letter = dead_letter(
            error,
            stage="score",
            failed_at=now,
            record=record,
            max_original_bytes=self._max_original,
        )
        return Outcome(record, dead=letter)
