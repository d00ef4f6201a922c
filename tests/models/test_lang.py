"""Texts the model cannot read are flagged, not silently scored neutral (finding 9)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.engine import AlertEngine
from alerts.metrics import AlertMetrics
from alerts.rules import parse_rules
from alerts.testing import scored
from models.documents import DocumentScorer
from models.lang import check_text
from models.scoring import Classifier
from stream.contracts.schemas import RawDocument, ScoredDocument, decode, encode
from stream.history.schema import from_row, to_row

T = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
GERMAN = "Deutsche Bank übertrifft die Erwartungen und hebt die Prognose an"
ROCKETS = "🚀🚀 $GME to the moon"
ENGLISH = [
    "Acme beats estimates",
    "Fed hikes rates",
    "Bank warns",
    "IPO soars",
    "Oil slides",
    "Gold steady",
    "Tesla recalls 2 million vehicles",
    "CRBK misses, guides lower",
    "Nikkei climbs 2%",
    "Wall St. ends higher; Nasdaq up 1.2%",
    "Downgrades 11/25: $AEO $COLM $DGII $EQT",
    "LOL this stock is going to zero",
]


def test_a_german_headline_is_another_language_and_rockets_are_no_text() -> None:
    assert check_text(GERMAN).unsupported_reason == "language"
    assert check_text(GERMAN).language == "de"
    assert (
        check_text("BNP Paribas annonce un chiffre d'affaires en hausse de 32 %").language == "fr"
    )
    assert check_text(ROCKETS).unsupported_reason == "no_text"
    assert check_text("🚀🚀🚀").unsupported_reason == "no_text"
    assert check_text("$AAPL $MSFT https://t.co/x").unsupported_reason == "no_text"


@pytest.mark.parametrize("text", ENGLISH)
def test_short_english_headlines_stay_supported(text: str) -> None:
    # Wrong low-confidence guesses on short English (ca, jv, ro ...) must not drop them.
    assert check_text(text).unsupported_reason is None


def _raw(doc_id: str, title: str) -> RawDocument:
    return RawDocument(
        id=doc_id, source="wire", kind="news", title=title, published_at=T, fetched_at=T
    )


def test_the_scorer_flags_unsupported_documents_and_keeps_the_model_output(
    tiny_model_dir: Path,
) -> None:
    scorer = DocumentScorer(Classifier.load(tiny_model_dir, provider="cpu"), clock=lambda: T)
    docs = [
        _raw("de", GERMAN),
        _raw("gme", ROCKETS),
        _raw("en", "Apple shares fall after weak sales"),
    ]
    german, rockets, english = scorer.score_documents(docs)
    assert isinstance(german, ScoredDocument) and isinstance(rockets, ScoredDocument)
    assert isinstance(english, ScoredDocument)
    assert (german.detected_language, german.unsupported_reason) == ("de", "language")
    assert rockets.unsupported_reason == "no_text" and not rockets.supported
    assert english.supported and english.detected_language == "en"
    assert german.sentiment in ("negative", "neutral", "positive")  # the model's, kept
    # One contract: the fields survive Kafka and the archive.
    assert decode(encode(german), ScoredDocument) == german
    assert from_row(to_row(german), ScoredDocument) == german


def test_alerts_leave_unsupported_documents_out_of_sentiment() -> None:
    from prometheus_client import CollectorRegistry

    rules = parse_rules("rules: [{name: neg, series: {kind: topic}, min_history: 10m}]")
    engine = AlertEngine(rules, bucket_s=60, allowed_lateness_s=0, windows_s=(300,))
    kept = scored("a", T, sentiment="negative")
    foreign = scored("b", T, sentiment="neutral").model_copy(
        update={"unsupported_reason": "language", "detected_language": "de"}
    )
    assert engine.add(kept) == "accepted" and engine.add(foreign) == "unsupported"
    assert engine.add(foreign) == "duplicate"  # still de-duplicated
    engine.flush()
    trend = engine.trend(300)
    row = engine.index.find(("topic", "Markets"))
    assert row is not None
    assert trend.total[row] == 1 and trend.negative_share[row] == 1.0
    assert engine.stats.unsupported == 1
    registry = CollectorRegistry()
    AlertMetrics(registry, topics=(), tickers=(), windows_s=(300,))
    labels = {"outcome": "unsupported"}  # a label value from start-up, like the others
    assert registry.get_sample_value("finsentinel_alerts_documents_total", labels) == 0
