"""``decode`` turns every hostile byte string into a message or a ``SchemaError``, never a crash.

Regression: JSON nested deeper than the interpreter's recursion limit made
``json.loads`` raise ``RecursionError``, which escaped ``decode``; the scorer and
the alerting service only catch ``SchemaError``, so one such record was a
poison pill that crash-looped them. It is now rejected as ``malformed_json``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.contracts.errors import SchemaError
from stream.contracts.schemas import REJECT_REASONS, RawDocument, ScoredDocument, decode


@pytest.mark.parametrize(
    "data",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000],
    ids=["arrays", "objects"],
)
@pytest.mark.parametrize("model", [RawDocument, ScoredDocument])
def test_deep_nesting_is_a_reject_not_a_crash(data: bytes, model: type[RawDocument]) -> None:
    with pytest.raises(SchemaError) as info:
        decode(data, model)
    assert info.value.reason == "malformed_json"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=2_000), st.text(max_size=2_000).map(str.encode)))
def test_arbitrary_bytes_decode_or_reject_with_a_known_reason(data: bytes) -> None:
    try:
        decode(data, RawDocument)
    except SchemaError as exc:
        assert exc.reason in REJECT_REASONS
