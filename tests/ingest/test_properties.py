"""Property tests: normalisation is idempotent, document building never raises."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.config import parse_sources
from ingest.documents import Built, build_document
from ingest.entities import EntityExtractor
from ingest.normalize import canonical_url, clean_text
from ingest.sources.base import Candidate, Rejected
from stream.contracts.schemas import RawDocument, decode, encode

SPEC = parse_sources({"sources": [{"name": "p", "kind": "files", "path": "."}]}).sources[0]
EX = EntityExtractor.default()
NOW = datetime(2026, 1, 5, tzinfo=UTC)

urls = st.builds(
    lambda host, path, q, frag: f"HTTPS://{host}.Test/{path}?{q}#{frag}",
    st.from_regex(r"[A-Za-z0-9]{1,12}", fullmatch=True),
    st.from_regex(r"[a-z0-9/._-]{0,20}", fullmatch=True),
    st.lists(st.sampled_from(["a=1", "utm_source=x", "b=2", "fbclid=z", "c="]), max_size=4).map(
        "&".join
    ),
    st.text(max_size=5),
)


@given(urls)
def test_canonical_url_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once and "utm_" not in once and "#" not in once


@given(st.text(max_size=300))
def test_clean_text_gives_single_spaced_printable_text(text: str) -> None:
    out = clean_text(text)
    assert out == out.strip() and "  " not in out
    assert all(ch.isprintable() or ch == " " for ch in out.replace("\t", " ").replace("\n", " "))


@settings(max_examples=60, deadline=None)
@given(
    st.text(max_size=200),
    st.text(max_size=400),
    st.one_of(st.none(), st.text(max_size=50)),
    st.lists(st.text(max_size=8), max_size=5),
    st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
)
def test_any_candidate_becomes_a_valid_document_or_a_rejection(
    title: str, body: str, url: str | None, tickers: list[str], published: datetime | None
) -> None:
    cand = Candidate(
        "k", title=title, body=body, url=url, tickers=tuple(tickers), published_at=published
    )
    out = build_document(cand, SPEC, EX, NOW)
    if isinstance(out, Built):
        assert decode(encode(out.doc), RawDocument) == out.doc
    else:
        assert isinstance(out, Rejected) and out.reason in ("empty_text", "schema_violation")
