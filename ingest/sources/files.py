"""A local folder of JSONL, CSV, RSS and Atom files, for back-filling and air-gapped use.

The folder is polled: a file is read when it is new or its size or mtime
changed, and progress within a file is kept in the cursor state, so a large
back-fill spreads over several passes and a restart resumes where the last
acknowledged pass ended.

Records leave in **event-time order across files**: every pending file's
records are sorted by ``published_at`` (stable, so ties keep file order) and
the files are merged, so a back-fill split into several files (or an RSS file,
newest first) reaches the alerts service as a live stream would have, not one
file's hours after another's. Rows without ``published_at`` are stamped at
fetch time downstream, so they come last; rejected rows first. The cursor
counts, per file, the records emitted in that order. A pending folder is held
parsed in memory until it drains (split very large back-fills into runs).

JSONL lines and CSV rows carry ``title`` and/or ``body`` (or ``text``), and
optionally ``id``, ``url``, ``published_at`` (ISO 8601 or epoch seconds),
``author``, ``tickers`` (a list, or a string separated by commas/spaces),
``kind`` (``news`` or ``comment``) and ``source`` (the publisher).
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import io
import json
import logging
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from ingest.config import FilesSpec
from ingest.exceptions import IngestError, SourceConfigError
from ingest.normalize import to_utc
from ingest.sources.base import Candidate, FetchContext, FetchResult, Rejected, Source
from ingest.sources.rss import parse_feed

__all__ = ["LocalFilesSource", "event_order", "row_candidate"]

logger = logging.getLogger(__name__)

_FEED_SUFFIXES = (".rss", ".atom", ".xml")
_SPLIT = re.compile(r"[\s,;]+")
_MAX_RAW = 64_000

Record = Candidate | Rejected


def row_candidate(row: Any, raw: bytes) -> Record:
    """A JSONL/CSV row as a candidate, or the reason it cannot be one.

    >>> c = row_candidate({"title": "Acme up", "tickers": "ACME, XYZ", "kind": "news"}, b"")
    >>> c.title, c.tickers, c.kind
    ('Acme up', ('ACME', 'XYZ'), 'news')
    >>> row_candidate({"title": "x", "kind": "tweet"}, b"").reason
    'schema_violation'
    """
    if not isinstance(row, dict):
        return Rejected("schema_violation", f"row is {type(row).__name__}, not an object", raw)
    title = str(row.get("title") or "")
    body = str(row.get("body") or row.get("text") or "")
    if not (title.strip() or body.strip()):
        return Rejected("empty_text", "row has no title, body or text", raw)
    kind = row.get("kind") or None
    if kind not in (None, "news", "comment"):
        return Rejected("schema_violation", f"kind must be news or comment, not {kind!r}", raw)
    published = to_utc(row.get("published_at"))
    if row.get("published_at") not in (None, "") and published is None:
        return Rejected(
            "schema_violation", f"unparseable published_at {row['published_at']!r}", raw
        )
    tickers = row.get("tickers") or ()
    if isinstance(tickers, str):
        tickers = [t for t in _SPLIT.split(tickers) if t]
    elif not isinstance(tickers, list | tuple):
        return Rejected("schema_violation", f"tickers is {type(tickers).__name__}, not a list", raw)
    url = row.get("url") or None
    key = row.get("id") or url or hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()
    return Candidate(
        key=str(key),
        title=title,
        body=body,
        url=str(url) if url else None,
        author=str(row["author"]) if row.get("author") else None,
        published_at=published,
        tickers=tuple(str(t) for t in tickers),
        kind=kind,
        source=str(row["source"]) if row.get("source") else None,
        raw=raw,
    )


def _jsonl_records(data: bytes, start: int) -> Iterator[Record]:
    lines = (
        (lineno, line) for lineno, line in enumerate(data.splitlines(), start=1) if line.strip()
    )
    # Records before ``start`` were produced by earlier passes: skip them unparsed.
    for lineno, line in islice(lines, start, None):
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            yield Rejected("malformed_json", f"line {lineno}: {exc}", line[:_MAX_RAW])
            continue
        except RecursionError:  # "[[[[...": a reject, not a crash that stalls the folder
            yield Rejected("malformed_json", f"line {lineno}: nested too deeply", line[:_MAX_RAW])
            continue
        yield row_candidate(row, line[:_MAX_RAW])


def _csv_records(data: bytes, start: int) -> Iterator[Record]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if start == 0:
            yield Rejected("undecodable", f"CSV file is not UTF-8: {exc}", data[:_MAX_RAW])
        return
    # newline="": the csv module reads line ends itself (a lone "\r" ends a row too).
    rows = csv.DictReader(io.StringIO(text, newline=""))
    index = 0  # records so far, rejects included, so a resumed pass skips the same ones
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a NUL or a stray quote: this row only, read on
            if index >= start:
                detail = f"CSV record {index + 1}: {exc}"
                yield Rejected("schema_violation", detail, detail.encode()[:_MAX_RAW])
            index += 1
            continue
        if index >= start:
            clean = {k.strip(): v for k, v in row.items() if k}
            yield row_candidate(clean, json.dumps(clean).encode()[:_MAX_RAW])
        index += 1


def _feed_records(data: bytes, path: Path, start: int) -> Iterator[Record]:
    try:
        records: list[Record] = list(parse_feed(data))
    except IngestError as exc:
        records = [Rejected("schema_violation", f"{path.name}: {exc}", data[:_MAX_RAW])]
    yield from records[start:]


def read_records(path: Path, start: int = 0) -> Iterator[Record]:
    """The records of one file from record number ``start`` on, lazily, by suffix."""
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl_records(data, start)
    if suffix == ".csv":
        return _csv_records(data, start)
    if suffix in _FEED_SUFFIXES:
        return _feed_records(data, path, start)
    unsupported = Rejected("schema_violation", f"{path.name}: unsupported file type", b"")
    return iter([unsupported] if start == 0 else [])


def _event_key(record: Record) -> float:
    if isinstance(record, Rejected):
        return -math.inf  # dead letters carry no event time: out of the way first
    if record.published_at is None:
        return math.inf  # stamped with the fetch time downstream: the newest
    return record.published_at.timestamp()


def event_order(records: Iterator[Record] | list[Record]) -> list[Record]:
    """``records`` sorted by event time (stable; rejects first, undated last).

    >>> from datetime import datetime, timezone
    >>> day = lambda d: datetime(2026, 1, d, tzinfo=timezone.utc)
    >>> rows = [Candidate("b", "b", published_at=day(2)), Candidate("u", "u"),
    ...         Candidate("a", "a", published_at=day(1))]
    >>> [r.key for r in event_order(rows)]
    ['a', 'b', 'u']
    """
    return sorted(records, key=_event_key)


@dataclass
class _Pending:
    """A file with records left: those after ``skip`` (file order), in event-time order."""

    rel: str
    mtime_ns: int
    size: int
    skip: int  # records a cursor from before event-time ordering had done, in file order
    taken: int  # records already emitted, in event-time order
    records: list[Record]

    def keyed(self, n: int) -> Iterator[tuple[float, int, int, Record]]:
        """The records not yet emitted as ``(event key, file n, position, record)``."""
        for j in range(self.taken, len(self.records)):
            record = self.records[j]
            yield _event_key(record), n, j, record

    def state(self, taken: int) -> dict[str, int]:
        if taken >= len(self.records):
            return {"mtime_ns": self.mtime_ns, "size": self.size, "done": -1}
        return {"mtime_ns": self.mtime_ns, "size": self.size, "skip": self.skip, "taken": taken}


class LocalFilesSource(Source):
    """Polls a folder; remembers per file its size, mtime and how many records are done."""

    spec: FilesSpec

    def _files(self) -> list[Path]:
        root = self.spec.path
        if not root.is_dir():
            raise SourceConfigError(f"{self.name}: folder {root} does not exist")
        found: set[Path] = set()
        for pattern in self.spec.patterns:
            matches = root.rglob(pattern) if self.spec.recursive else root.glob(pattern)
            found.update(p for p in matches if p.is_file() and not p.name.startswith("."))
        return sorted(found, key=lambda p: (p.stat().st_mtime_ns, str(p)))

    def __init__(self, spec: FilesSpec) -> None:
        super().__init__(spec)
        # Parsed, sorted records of pending files, by (path, mtime, size, skip): a back-fill
        # spanning many passes is parsed once per process, not once per pass.
        self._parsed: dict[str, tuple[tuple[int, int, int], list[Record]]] = {}

    def _pending(self, files: dict[str, dict[str, int]]) -> list[_Pending]:
        out: list[_Pending] = []
        for path in self._files():
            stat = path.stat()
            rel = str(path.relative_to(self.spec.path))
            prev = files.get(rel, {})
            unchanged = (
                prev.get("mtime_ns") == stat.st_mtime_ns and prev.get("size") == stat.st_size
            )
            if unchanged and prev.get("done") == -1:
                continue
            # A cursor written before event-time ordering says "done" in file order.
            skip = prev.get("skip", prev.get("done", 0)) if unchanged else 0
            taken = prev.get("taken", 0) if unchanged else 0
            version = (stat.st_mtime_ns, stat.st_size, skip)
            cached = self._parsed.get(rel)
            if cached is None or cached[0] != version:
                cached = self._parsed[rel] = (version, event_order(read_records(path, skip)))
            pending = _Pending(rel, stat.st_mtime_ns, stat.st_size, skip, taken, cached[1])
            out.append(pending)
        return out

    def fetch(self, ctx: FetchContext, state: Mapping[str, Any]) -> FetchResult:
        """Read new and changed files, up to ``max_items_per_pass`` records, oldest first."""
        files: dict[str, dict[str, int]] = {k: dict(v) for k, v in state.get("files", {}).items()}
        result = FetchResult()
        pending = self._pending(files)
        merged = heapq.merge(*(p.keyed(n) for n, p in enumerate(pending)), key=lambda i: i[:3])
        taken = [p.taken for p in pending]
        for _key, n, _j, record in islice(merged, self.spec.max_items_per_pass):
            (result.rejected if isinstance(record, Rejected) else result.candidates).append(
                record  # type: ignore[arg-type]
            )
            taken[n] += 1
        for p, n_taken in zip(pending, taken, strict=True):
            files[p.rel] = p.state(n_taken)
            if n_taken < len(p.records):
                result.more = True
            else:
                self._parsed.pop(p.rel, None)
        result.state = {"files": files}
        return result
