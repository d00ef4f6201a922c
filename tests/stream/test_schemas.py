"""Message schemas: round trips and rejections with a clear reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from stream.contracts.errors import SchemaError
from stream.contracts.schemas import (
    MAX_MESSAGE_BYTES,
    Alert,
    AlertEvidence,
    DeadLetter,
    RawDocument,
    ScoredDocument,
    decode,
    encode,
    message_key,
)

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def raw(**kw: object) -> RawDocument:
    base: dict[str, object] = dict(
        id="d1",
        source="wire",
        kind="news",
        title="Acme cuts guidance",
        body="Shares fall.",
        tickers=["ACME"],
        published_at=T0,
        fetched_at=T0 + timedelta(seconds=5),
    )
    base.update(kw)
    return RawDocument(**base)  # type: ignore[arg-type]


def scored() -> ScoredDocument:
    return ScoredDocument(
        **raw().model_dump(),
        topic="Earnings",
        topic_probs={"Earnings": 0.9, "Macro": 0.1},
        sentiment="negative",
        sentiment_probs={"negative": 0.8, "neutral": 0.15, "positive": 0.05},
        sentiment_score=-0.75,
        model_name="m",
        model_version="1",
        scored_at=T0,
    )


def test_raw_round_trip() -> None:
    doc = raw()
    assert decode(encode(doc), RawDocument) == doc
    assert doc.text == "Acme cuts guidance. Shares fall."


def test_scored_round_trip_and_confidence() -> None:
    doc = scored()
    back = decode(encode(doc), ScoredDocument)
    assert back == doc
    assert back.confidence == 0.8


def test_scored_document_is_not_a_raw_document_on_the_wire() -> None:
    with pytest.raises(SchemaError) as info:
        decode(encode(raw()), ScoredDocument)
    assert info.value.reason == "schema_violation"
    assert "topic" in info.value.detail


def test_alert_round_trip() -> None:
    alert = Alert(
        key="neg-spike:topic:Earnings",
        rule="neg-spike",
        series_kind="topic",
        series="Earnings",
        state="firing",
        severity="warning",
        score=0.97,
        observed=0.8,
        baseline=0.2,
        window_start=T0,
        window_end=T0,
        started_at=T0,
        updated_at=T0,
        summary="spike",
        evidence=[
            AlertEvidence(
                id="d1",
                title="t",
                source="wire",
                published_at=T0,
                sentiment="negative",
                sentiment_score=-0.9,
                confidence=0.95,
            )
        ],
    )
    assert decode(encode(alert), Alert) == alert


def test_timestamps_are_normalised_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    doc = raw(published_at=datetime(2026, 3, 2, 15, 30, tzinfo=paris))
    assert doc.published_at == T0
    assert doc.published_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("payload", "reason", "needle"),
    [
        (b"\xff\xfe not utf8", "undecodable", "UTF-8"),
        (b"{not json", "malformed_json", "Expecting"),
        (b"[1, 2]", "schema_violation", "JSON object"),
        (b'{"schema_version": 2}', "unsupported_version", "schema_version 2"),
        (b'{"id": "x"}', "schema_violation", "source"),
        (b"x" * (MAX_MESSAGE_BYTES + 1), "too_large", "limit"),
    ],
)
def test_rejections_carry_a_reason(payload: bytes, reason: str, needle: str) -> None:
    with pytest.raises(SchemaError) as info:
        decode(payload, RawDocument)
    assert info.value.reason == reason
    assert needle in str(info.value)


def test_naive_and_absurd_timestamps_are_rejected() -> None:
    obj = json.loads(encode(raw()))
    obj["published_at"] = "2026-03-02T14:30:00"
    with pytest.raises(SchemaError, match="published_at"):
        decode(json.dumps(obj).encode(), RawDocument)
    obj["published_at"] = "1700-01-01T00:00:00Z"
    with pytest.raises(SchemaError, match="outside"):
        decode(json.dumps(obj).encode(), RawDocument)


def test_empty_text_and_bad_tickers_are_rejected() -> None:
    with pytest.raises(SchemaError) as info:
        decode(encode(raw(title=" ", body="")), RawDocument)
    assert info.value.reason == "empty_text"
    obj = json.loads(encode(raw()))
    obj["tickers"] = ["not a ticker"]
    with pytest.raises(SchemaError, match="tickers"):
        decode(json.dumps(obj).encode(), RawDocument)


def test_unknown_fields_are_rejected() -> None:
    obj = json.loads(encode(raw()))
    obj["surprise"] = 1
    with pytest.raises(SchemaError, match="surprise"):
        decode(json.dumps(obj).encode(), RawDocument)


def test_dead_letter_keeps_original_bytes() -> None:
    original = b"\x00\xffbroken"
    err = SchemaError("undecodable", "bad bytes")
    dl = DeadLetter.wrap(
        original,
        err,
        stage="score",
        failed_at=T0,
        source_topic="raw",
        partition=2,
        offset=41,
        key=b"ACME",
    )
    back = decode(encode(dl), DeadLetter)
    assert back.original == original
    assert (back.reason, back.source_topic, back.partition, back.offset) == (
        "undecodable",
        "raw",
        2,
        41,
    )


def test_message_key_prefers_most_relevant_ticker() -> None:
    doc = raw(tickers=["AAA", "BBB"], ticker_relevance={"AAA": 0.2, "BBB": 0.9})
    assert message_key(doc) == b"BBB"
    assert message_key(raw(tickers=[])) == b"wire"
