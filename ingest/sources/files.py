"""A local folder of JSONL, CSV, RSS and Atom files, for back-filling and air-gapped use.

The folder is polled: a file is read when it is new or its size or mtime
changed, and progress within a file is kept in the cursor state, so a large
back-fill spreads over several passes and a restart resumes where the last
acknowledged pass ended.

JSONL lines and CSV rows carry ``title`` and/or ``body`` (or ``text``), and
optionally ``id``, ``url``, ``published_at`` (ISO 8601 or epoch seconds),
``author``, ``tickers`` (a list, or a string separated by commas/spaces),
``kind`` (``news`` or ``comment``) and ``source`` (the publisher).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
from collections.abc import Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any

from ingest.config import FilesSpec
from ingest.exceptions import IngestError, SourceConfigError
from ingest.normalize import to_utc
from ingest.sources.base import Candidate, FetchContext, FetchResult, Rejected, Source
from ingest.sources.rss import parse_feed

__all__ = ["LocalFilesSource", "row_candidate"]

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
    for row in islice(csv.DictReader(io.StringIO(text)), start, None):
        clean = {k.strip(): v for k, v in row.items() if k}
        yield row_candidate(clean, json.dumps(clean).encode()[:_MAX_RAW])


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

    def fetch(self, ctx: FetchContext, state: Mapping[str, Any]) -> FetchResult:
        """Read new and changed files, up to ``max_items_per_pass`` records."""
        files: dict[str, dict[str, int]] = {k: dict(v) for k, v in state.get("files", {}).items()}
        result = FetchResult()
        budget = self.spec.max_items_per_pass
        for path in self._files():
            stat = path.stat()
            rel = str(path.relative_to(self.spec.path))
            prev = files.get(rel, {})
            unchanged = (
                prev.get("mtime_ns") == stat.st_mtime_ns and prev.get("size") == stat.st_size
            )
            if unchanged and prev.get("done") == -1:
                continue
            start = prev.get("done", 0) if unchanged else 0
            records = read_records(path, start)
            take = list(islice(records, max(0, budget - len(result.candidates))))
            for record in take:
                (result.rejected if isinstance(record, Rejected) else result.candidates).append(
                    record  # type: ignore[arg-type]
                )
            finished = next(records, None) is None
            files[rel] = {
                "mtime_ns": stat.st_mtime_ns,
                "size": stat.st_size,
                "done": -1 if finished else start + len(take),
            }
            if not finished:
                result.more = True
                break
        result.state = {"files": files}
        return result
