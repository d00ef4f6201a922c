"""A seeded generator of hostile Kafka records for the raw topics.

Every record is either a valid :class:`~stream.contracts.schemas.RawDocument` with nasty
but legal content (HTML with scripts, control characters, bidi and zero-width
characters, long bodies) or something a consumer must reject: malformed JSON,
XML and HTML, wrong types, oversized fields and messages, invalid UTF-8 and
other encodings, absurd timestamps, unknown schema versions, deep nesting.

>>> recs = hostile_records(200, seed=1)
>>> len(recs), len({r.kind for r in recs}) > 10
(200, True)
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["HostileRecord", "hostile_records", "valid_doc"]

_NASTY = [
    "<script>alert(document.cookie)</script>",
    "<img src=x onerror=fetch('http://169.254.169.254/')>",
    "\u202eevil\u202c",
    "zero\u200bwidth\u200djoin\ufeff",
    "\x00\x01\x07\x1b[31mred\x1b[0m",
    "Ω≈ç√∫˜µ≤≥÷ 田中さん 𝕬𝖈𝖒𝖊 🚀💥",
    "' OR 1=1; DROP TABLE alerts; --",
    "{{7*7}} ${jndi:ldap://x/a}",
    "\ud7ff\ue000\U0010ffff",
]


@dataclass(frozen=True)
class HostileRecord:
    """One record: its bytes, its kind (the generator's intent) and the doc id if valid."""

    kind: str
    key: bytes | None
    value: bytes
    valid_id: str | None = None


def valid_doc(rng: random.Random, i: int) -> dict[str, Any]:
    """A valid raw document (as a JSON-able dict) with hostile-looking but legal text."""
    text = " ".join(rng.choice(_NASTY) for _ in range(rng.randint(1, 4)))
    body = text * rng.choice((1, 1, 1, 5, 20))
    return {
        "schema_version": 1,
        "id": f"fuzz-{i}-{rng.getrandbits(32):08x}",
        "source": rng.choice(["wire", "social", "src<script>"]),
        "kind": rng.choice(["news", "comment"]),
        "title": rng.choice(["", "Acme beats estimates", text[:1_900]]),
        "body": body[:190_000] if body.strip() else "x",
        "tickers": rng.sample(["ACME", "BRK.B", "X", "RDS-A"], rng.randint(0, 3)),
        "published_at": rng.choice(
            ["2026-01-05T14:30:00Z", "1990-01-01T00:00:00+00:00", "2199-06-30T23:59:59-05:00"]
        ),
        "fetched_at": "2026-01-05T14:31:00Z",
    }


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _mutate(rng: random.Random, i: int, **changes: Any) -> bytes:
    doc = valid_doc(rng, i)
    doc.update(changes)
    return _json(doc)


def _drop(rng: random.Random, i: int) -> bytes:
    doc = valid_doc(rng, i)
    doc.pop(rng.choice(["id", "source", "kind", "published_at", "fetched_at"]))
    return _json(doc)


_XML_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (k, (b"&lol%d;" % (k - 1) if k > 1 else b"&lol;") * 10)
        for k in range(1, 10)
    )
    + b"]><lolz>&lol9;</lolz>"
)

_WRONG_TYPES: list[dict[str, Any]] = [
    {"id": 7},
    {"tickers": "ACME"},
    {"kind": "video"},
    {"title": ["a"]},
    {"tickers": ["acme lower"]},
    {"copies": 0},
    {"novelty": 2},
]
_HUGE: list[dict[str, Any]] = [{"title": "A" * 5_000}, {"id": "i" * 300}, {"tickers": ["A"] * 65}]

#: Generators of invalid records by kind.
_INVALID: dict[str, Callable[[random.Random, int], bytes]] = {
    "truncated_json": lambda r, i: (b := _json(valid_doc(r, i)))[: r.randint(1, len(b) - 2)],
    "random_bytes": lambda r, i: r.randbytes(r.randint(1, 3_000)),
    "latin1": lambda r, i: (
        _mutate(r, i, title="café résumé").decode().encode("latin-1").replace(b"\\u00e9", b"\xe9")
    ),
    "utf16": lambda r, i: _json(valid_doc(r, i)).decode().encode("utf-16"),
    "xml_bomb": lambda r, i: _XML_BOMB,
    "html": lambda r, i: b"<html><script>while(1){}</script><body>Acme</body></html>",
    "not_an_object": lambda r, i: r.choice([b"[]", b"null", b"42", b'"doc"', b"true", b"[{}]"]),
    "deep_nesting": lambda r, i: b"[" * 5_000 + b"]" * 5_000,
    "version": lambda r, i: _mutate(r, i, schema_version=r.choice([0, 2, 99, "1", None, -1])),
    "wrong_types": lambda r, i: _mutate(
        r,
        i,
        **r.choice(_WRONG_TYPES),
    ),
    "missing_field": _drop,
    "extra_field": lambda r, i: _mutate(r, i, __proto__={"admin": True}),
    "huge_field": lambda r, i: _mutate(r, i, **r.choice(_HUGE)),
    "too_large": lambda r, i: _mutate(r, i, body="C" * 1_000_100),
    "absurd_time": lambda r, i: _mutate(
        r,
        i,
        published_at=r.choice(
            [
                "0001-01-01T00:00:00Z",
                "9999-12-31T23:59:59Z",
                "1969-12-31T23:59:59Z",
                "yesterday",
                "2026-13-45T99:00:00Z",
                "2026-01-05T14:30:00",
                -1e18,
                "NaN",
            ]
        ),
    ),
    "empty_text": lambda r, i: _mutate(r, i, title="", body=r.choice(["", "   ", "\n\t "])),
    "nul_and_bom": lambda r, i: b"\xef\xbb\xbf" + _json(valid_doc(r, i)) + b"\x00",
}


def hostile_records(n: int, *, seed: int, valid_share: float = 0.25) -> list[HostileRecord]:
    """``n`` records, about ``valid_share`` of them valid, the rest spread over the invalid kinds.

    Oversized records (``too_large``) are capped at 12 so the corpus stays a few MB.
    """
    rng = random.Random(seed)
    kinds = list(_INVALID)
    out: list[HostileRecord] = []
    big = 0
    for i in range(n):
        key = rng.choice([None, b"ACME", rng.randbytes(8)])
        if rng.random() < valid_share:
            doc = valid_doc(rng, i)
            out.append(HostileRecord("valid", key, _json(doc), doc["id"]))
            continue
        kind = rng.choice(kinds)
        if kind == "too_large":
            big += 1
            kind = kind if big <= 12 else "truncated_json"
        out.append(HostileRecord(kind, key, _INVALID[kind](rng, i)))
    return out
