"""The shipped model in models/default classifies unambiguous headlines correctly."""

from __future__ import annotations

import pytest

from models.modeldir import DEFAULT_MODEL_DIR
from models.scoring import Classifier

pytestmark = pytest.mark.skipif(
    not (DEFAULT_MODEL_DIR / "model_card.json").is_file(),
    reason="models/default is absent; build it with `make model`",
)

CASES = [
    ("Acme shares soar after record quarterly profit beats estimates", "positive", None),
    ("Globex stock plunges after company slashes guidance and posts loss", "negative", None),
    ("Federal Reserve raises interest rates by 25 basis points", None, "Fed | Central Banks"),
    ("Initech declares quarterly dividend of $0.25 per share", None, "Dividend"),
    ("Oil prices climb as OPEC agrees to cut crude output", None, "Energy | Oil"),
]


@pytest.fixture(scope="module")
def shipped() -> Classifier:
    return Classifier.load(provider="cpu")


def test_card_of_shipped_model(shipped: Classifier) -> None:
    card = shipped.card
    assert card.sentiment_labels == ["negative", "neutral", "positive"]
    assert len(card.topic_labels) == 20
    assert shipped.variant == "int8"
    assert "validation" in card.metrics


@pytest.mark.parametrize(("text", "sentiment", "topic"), CASES)
def test_unambiguous_headlines(
    shipped: Classifier, text: str, sentiment: str | None, topic: str | None
) -> None:
    (pred,) = shipped.predict([text])
    if sentiment is not None:
        assert pred.sentiment == sentiment, pred.sentiment_probs
    if topic is not None:
        assert pred.topic == topic, sorted(pred.topic_probs.items(), key=lambda kv: -kv[1])[:3]


def test_scores_do_not_depend_on_the_batch(shipped: Classifier) -> None:
    """A document scores the same alone, in a batch, and next to a long text (replays and
    backtests reproduce live alerts). 0.3.0's dynamic int8 moved sentiment scores by up to
    0.15 here; the weight-only layout (0.3.1) moves them by ~1e-7."""
    texts = [text for text, _, _ in CASES]
    long_text = " ".join(["Regional lenders extend losses as deposit outflows accelerate"] * 12)
    together = shipped.predict([*texts, long_text], batch_size=64)[: len(texts)]
    alone = [shipped.predict([t], batch_size=1)[0] for t in texts]
    for a, b in zip(together, alone, strict=True):
        assert (a.sentiment, a.topic) == (b.sentiment, b.topic)
        assert abs(a.sentiment_score - b.sentiment_score) < 1e-5
        assert max(abs(a.topic_probs[k] - b.topic_probs[k]) for k in a.topic_probs) < 1e-5
