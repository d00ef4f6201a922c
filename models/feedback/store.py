"""The feedback store: one SQLite file (WAL) holding every analyst correction.

Table ``corrections`` holds the current correction of each document, one row
per ``doc_id``. A later correction of the same document replaces the labels it
gives and keeps the others (a topic fix leaves an earlier sentiment fix in
place), so the store is idempotent on ``(doc_id, head)``: adding the same
correction twice changes nothing. Every change is appended to ``history`` with
its revision, so nothing an analyst said is lost. ``published_revision`` records
which revision reached the ``feedback`` topic; :meth:`FeedbackStore.pending`
lists the rest.

>>> from datetime import datetime, timezone
>>> t = datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc)
>>> store = FeedbackStore(":memory:")
>>> first = Correction("a1", "Acme misses", "negative", None, t, "cli")
>>> store.add(first).outcome, store.add(first).outcome
('added', 'unchanged')
>>> later = Correction("a1", "Acme misses", None, "Earnings", t, "cli")
>>> stored = store.add(later)
>>> stored.outcome, stored.correction.sentiment, stored.correction.topic
('updated', 'negative', 'Earnings')
>>> [(h.revision, h.sentiment, h.topic) for h in store.history("a1")]
[(1, 'negative', None), (2, None, 'Earnings')]
>>> store.mark_published("a1", 2); store.pending()
[]
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

from models.exceptions import FeedbackError
from models.feedback.corrections import Correction

__all__ = ["FeedbackStore", "Stored", "is_store"]

#: Bumped when the tables change; a newer file is refused rather than misread.
SCHEMA_VERSION: Final = 1
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"

# Literal statements (no SQL is ever built from values); columns in _row's order.
_SELECT_CURRENT: Final = (
    "SELECT doc_id, text, sentiment, topic, note, model_name, model_version, created_at, "
    "source, revision, published_revision FROM corrections"
)
_SELECT_ONE: Final = _SELECT_CURRENT + " WHERE doc_id=?"
_SELECT_ALL: Final = _SELECT_CURRENT + " ORDER BY created_at, doc_id"
_SELECT_PENDING: Final = (
    _SELECT_CURRENT + " WHERE published_revision < revision ORDER BY created_at, doc_id"
)
_SELECT_HISTORY: Final = (
    "SELECT doc_id, text, sentiment, topic, note, model_name, model_version, created_at, "
    "source, revision FROM history WHERE doc_id=? ORDER BY revision"
)
_UPSERT: Final = (
    "INSERT INTO corrections (doc_id, text, sentiment, topic, note, model_name, "
    "model_version, created_at, source, revision) VALUES (?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (doc_id) DO UPDATE SET text=excluded.text, "
    "sentiment=excluded.sentiment, topic=excluded.topic, note=excluded.note, "
    "model_name=excluded.model_name, model_version=excluded.model_version, "
    "created_at=excluded.created_at, source=excluded.source, revision=excluded.revision"
)
_APPEND_HISTORY: Final = (
    "INSERT INTO history (doc_id, text, sentiment, topic, note, model_name, model_version, "
    "created_at, source, revision) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS corrections (
    doc_id TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    sentiment TEXT,
    topic TEXT,
    note TEXT,
    model_name TEXT,
    model_version TEXT,
    created_at TEXT NOT NULL,
    source TEXT NOT NULL,
    revision INTEGER NOT NULL,
    published_revision INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    revision INTEGER NOT NULL,
    doc_id TEXT NOT NULL,
    text TEXT NOT NULL,
    sentiment TEXT,
    topic TEXT,
    note TEXT,
    model_name TEXT,
    model_version TEXT,
    created_at TEXT NOT NULL,
    source TEXT NOT NULL,
    UNIQUE (doc_id, revision)
);
"""

Outcome = Literal["added", "updated", "unchanged"]


def is_store(path: Path | str) -> bool:
    """Whether ``path`` is an SQLite file (a store) rather than an exported table."""
    try:
        with Path(path).open("rb") as fh:
            return fh.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:
        return False


@dataclass(frozen=True)
class Stored:
    """What :meth:`FeedbackStore.add` did with a correction, and the row as stored now."""

    outcome: Outcome
    correction: Correction


def _row(values: Sequence[Any], published_revision: int | None = None) -> Correction:
    (doc_id, text, sentiment, topic, note, name, version, created, source, revision) = values[:10]
    return Correction(
        doc_id=doc_id,
        text=text,
        sentiment=sentiment,
        topic=topic,
        note=note,
        model_name=name,
        model_version=version,
        created_at=datetime.fromisoformat(created),
        source=source,
        revision=int(revision),
        published=published_revision is not None and published_revision >= revision,
    )


def _values(c: Correction) -> tuple[Any, ...]:
    return (
        c.doc_id,
        c.text,
        c.sentiment,
        c.topic,
        c.note,
        c.model_name,
        c.model_version,
        c.created_at.isoformat(),
        c.source,
    )


class FeedbackStore:
    """Durable corrections in one SQLite file (``":memory:"`` for a throw-away store).

    Every method wraps :mod:`sqlite3` errors in :class:`FeedbackError` with the
    file's name. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = path
        try:
            if str(path) != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), timeout=30)
        except sqlite3.Error as exc:
            raise FeedbackError(f"cannot open the feedback store {path}: {exc}") from exc
        try:
            self._prepare()
        except BaseException:
            self._conn.close()
            raise

    def _prepare(self) -> None:
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a correction reported as stored survives a power cut.
            self._conn.execute("PRAGMA synchronous=FULL")
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise FeedbackError(
                    f"feedback store {self.path} has schema {version}, newer than this "
                    f"FinSentinel reads ({SCHEMA_VERSION}); upgrade FinSentinel"
                )
            with self._conn:
                self._conn.executescript(_SCHEMA)
                self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise FeedbackError(f"cannot open the feedback store {self.path}: {exc}") from exc

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._conn:
                yield self._conn
        except sqlite3.Error as exc:
            raise FeedbackError(f"feedback store {self.path}: {exc}") from exc

    def add(self, correction: Correction) -> Stored:
        """Store one correction (see :meth:`add_many`)."""
        return self.add_many([correction])[0]

    def add_many(self, corrections: Sequence[Correction]) -> list[Stored]:
        """Store ``corrections`` in order, all in one transaction (all or none)."""
        with self._transaction() as conn:
            return [self._add(conn, c) for c in corrections]

    def _add(self, conn: sqlite3.Connection, new: Correction) -> Stored:
        current = self._get(conn, new.doc_id)
        if current is not None:
            merged = current.merged(new)
            if merged.same_content(current):
                return Stored("unchanged", current)
        else:
            merged = new
        revision = (current.revision if current else 0) + 1
        conn.execute(_UPSERT, (*_values(merged), revision))
        # History keeps each correction as it was given, not as merged.
        conn.execute(_APPEND_HISTORY, (*_values(new), revision))
        stored = replace(merged, revision=revision, published=False)
        return Stored("updated" if current else "added", stored)

    def _get(self, conn: sqlite3.Connection, doc_id: str) -> Correction | None:
        row = conn.execute(_SELECT_ONE, (doc_id,)).fetchone()
        return None if row is None else _row(row, row[10])

    def get(self, doc_id: str) -> Correction | None:
        """The current correction of ``doc_id`` (``None``: never corrected)."""
        with self._transaction() as conn:
            return self._get(conn, doc_id)

    def corrections(self, *, pending_only: bool = False) -> list[Correction]:
        """Every current correction, oldest change first."""
        with self._transaction() as conn:
            rows = conn.execute(_SELECT_PENDING if pending_only else _SELECT_ALL).fetchall()
        return [_row(r, r[10]) for r in rows]

    def pending(self) -> list[Correction]:
        """Current corrections whose revision has not reached the ``feedback`` topic."""
        return self.corrections(pending_only=True)

    def history(self, doc_id: str) -> list[Correction]:
        """Every correction of ``doc_id`` as it was given, first one first."""
        with self._transaction() as conn:
            rows = conn.execute(_SELECT_HISTORY, (doc_id,)).fetchall()
        return [_row(r) for r in rows]

    def mark_published(self, doc_id: str, revision: int) -> None:
        """Record that ``revision`` of ``doc_id``'s correction reached the topic."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE corrections SET published_revision=MAX(published_revision, ?) "
                "WHERE doc_id=?",
                (revision, doc_id),
            )

    def __len__(self) -> int:
        with self._transaction() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM corrections").fetchone()[0])
