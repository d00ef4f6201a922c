"""The scoring core on the real tiny ONNX model: outcomes, bad input, poison records."""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Sequence
from typing import Any

from stream.contracts.schemas import encode
from stream.scorer.batch import BatchScorer

Rec = namedtuple("Rec", "topic partition offset key value")


def _records(values: Sequence[bytes | None]) -> list[Rec]:
    return [Rec("t.raw.news", 0, i, b"K", v) for i, v in enumerate(values)]


def test_scores_valid_documents_in_input_order(tiny_classifier: Any, kit: Any) -> None:
    docs = [kit.raw_doc(i, ticker=t) for i, t in enumerate(["ACME", "GLOB", "ACME"])]
    scorer = BatchScorer(tiny_classifier, clock=lambda: kit.T0)
    result = scorer.score(_records([encode(d) for d in docs]))
    assert [o.scored.id for o in result.outcomes if o.scored] == ["doc-0", "doc-1", "doc-2"]
    first = result.outcomes[0].scored
    assert first is not None
    assert first.model_name == tiny_classifier.card.name
    assert first.model_version == tiny_classifier.card.version
    assert first.scored_at == kit.T0
    assert first.topic in tiny_classifier.card.topic_labels
    assert result.outcomes[1].key == b"GLOB"


BAD_INPUTS = {
    "malformed_json": b'{"id": "x",',
    "undecodable": b"\xff\xfe\x00 not utf-8",
    "schema_violation": json.dumps({"id": "x", "kind": "tweet"}).encode(),
    "unsupported_version": json.dumps({"schema_version": 7, "id": "x"}).encode(),
    "too_large": b"x" * 1_000_001,
}


def test_every_bad_input_becomes_a_dead_letter(tiny_classifier: Any, kit: Any) -> None:
    empty = kit.raw_doc(9).model_copy(update={"title": "   "})
    values = [*BAD_INPUTS.values(), encode(empty), None, encode(kit.raw_doc(1))]
    scorer = BatchScorer(tiny_classifier, clock=lambda: kit.T0, max_original_bytes=2_000_000)
    result = scorer.score(_records(values))
    reasons = [o.dead.reason if o.dead else "scored" for o in result.outcomes]
    assert reasons == [*BAD_INPUTS, "empty_text", "schema_violation", "scored"]
    for outcome, value in zip(result.outcomes[:6], values[:6], strict=True):
        assert outcome.dead is not None
        assert outcome.dead.original == value
        assert (outcome.dead.source_topic, outcome.dead.offset) == (
            "t.raw.news",
            outcome.record.offset,
        )
        assert outcome.dead.stage == "score"


def test_over_long_documents_are_dead_lettered(tiny_classifier: Any, kit: Any) -> None:
    long_doc = kit.raw_doc(1).model_copy(update={"body": "profits fell sharply. " * 60})
    scorer = BatchScorer(tiny_classifier, clock=lambda: kit.T0, max_document_tokens=100)
    result = scorer.score(_records([encode(long_doc), encode(kit.raw_doc(2))]))
    assert result.outcomes[0].dead is not None
    assert result.outcomes[0].dead.reason == "too_large"
    assert result.outcomes[1].scored is not None


def test_big_originals_are_cut_and_say_where_the_full_record_is(
    tiny_classifier: Any, kit: Any
) -> None:
    scorer = BatchScorer(tiny_classifier, clock=lambda: kit.T0, max_original_bytes=1_024)
    (outcome,) = scorer.score(_records([b"{" * 5_000])).outcomes
    assert outcome.dead is not None
    assert outcome.dead.original == b"{" * 1_024
    assert "t.raw.news[0]@0" in outcome.dead.detail


class PoisonClassifier:
    """The real classifier, except that it fails on any batch holding the word 'poison'.

    A fake only for the failure: ONNX Runtime cannot be made to fail on demand.
    """

    def __init__(self, real: Any) -> None:
        self.real = real
        self.card = real.card
        self.poison_ids = set(real.tokenize(["poison"])[0].chunks[0][1:-1])
        self.calls = 0

    def tokenize(self, texts: Sequence[str]) -> Any:
        return self.real.tokenize(texts)

    def predict_encoded(self, encoded: Sequence[Any], *, batch_size: int = 64) -> Any:
        self.calls += 1
        if any(self.poison_ids & set(e.chunks[0]) for e in encoded):
            raise RuntimeError("simulated ONNX Runtime failure")
        return self.real.predict_encoded(encoded, batch_size=batch_size)


def test_a_model_failure_dead_letters_only_the_poison_record(
    tiny_classifier: Any, kit: Any
) -> None:
    poison = PoisonClassifier(tiny_classifier)
    docs = [kit.raw_doc(0), kit.raw_doc(1, title="poison pill headline"), kit.raw_doc(2)]
    scorer = BatchScorer(poison, clock=lambda: kit.T0)  # type: ignore[arg-type]
    result = scorer.score(_records([encode(d) for d in docs]))
    assert [o.scored is not None for o in result.outcomes] == [True, False, True]
    dead = result.outcomes[1].dead
    assert dead is not None and dead.reason == "processing_error"
    assert "simulated ONNX Runtime failure" in dead.detail
    assert poison.calls == 1 + len(docs)  # the batch, then each document once
