"""Exact and near-duplicate detection with state that survives restarts.

:class:`DedupStore` keeps every produced document's id, content hash,
canonical URL and MinHash signature in SQLite (WAL), bounded by age and
count. A candidate is an *exact* duplicate if its id, content hash or
canonical URL is known (the text only within the near window), a *near* duplicate if it is
long enough and a signature seen within the near window is at least
``near_min_similarity`` alike; otherwise it is new,
with novelty = 1 - the highest similarity found in the window.

The store also remembers which outlets carried each produced story
(:meth:`DedupStore.outlets`), for the breadth updates of :mod:`ingest.pipeline`.

Documents are written here only after the broker acknowledged them (see
:mod:`ingest.pipeline`), so a crash between produce and mark-seen re-produces
the same ids (downstream dedups by id) and never loses a story.

>>> from ingest.fingerprint import minhash
>>> store = DedupStore(None, near_min_similarity=0.6, near_window_s=3600,
...                    retention_s=86400, max_entries=1000, clock=lambda: 1000.0)
>>> text = "Acme Corp cuts its revenue forecast on weak demand in Europe and Asia"
>>> store.classify(Seen("a", "h1", None, minhash(text))).kind
'new'
>>> store.mark_seen([Seen("a", "h1", None, minhash(text))])
>>> store.classify(Seen("b", "h2", None, minhash("UPDATE 1-" + text))).kind
'near'
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from ingest.fingerprint import NUM_PERM, Signature, similarities

__all__ = ["DedupStore", "Seen", "Verdict"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    url TEXT,
    first_seen REAL NOT NULL,
    copies INTEGER NOT NULL DEFAULT 1,
    sig BLOB
);
CREATE INDEX IF NOT EXISTS seen_hash ON seen (content_hash);
CREATE INDEX IF NOT EXISTS seen_url ON seen (url);
CREATE INDEX IF NOT EXISTS seen_time ON seen (first_seen);
CREATE TABLE IF NOT EXISTS outlets (
    id TEXT NOT NULL,
    outlet TEXT NOT NULL,
    PRIMARY KEY (id, outlet)
);
"""


@dataclass(frozen=True)
class Seen:
    """What dedup needs to know about one document."""

    id: str
    content_hash: str
    url: str | None
    #: ``None`` for a duplicate recorded only so a re-crawl recognises its id.
    signature: Signature | None
    copies: int = 1
    #: False for texts too short for a meaningful similarity estimate: they are
    #: deduplicated exactly only (two templated headlines are not one story).
    near_eligible: bool = True


@dataclass(frozen=True)
class Verdict:
    """Classification of a candidate against what was already produced."""

    kind: Literal["new", "known", "exact", "near"]
    #: The produced document this one duplicates (``known``: this very id).
    match_id: str | None = None
    #: Highest MinHash similarity to a story in the near window (0 when none).
    similarity: float = 0.0

    @property
    def novelty(self) -> float:
        """1.0 for a story unlike anything recent, towards 0.0 for a rehash."""
        return round(1.0 - self.similarity, 4)


class _Window:
    """Signatures inside the near window, in arrival order, with amortised appends.

    Rows live in ``[lo, hi)`` of over-allocated arrays: appending copies only on
    growth, dropping old rows only moves ``lo`` (compacted when half is dead).
    """

    def __init__(self, ids: list[str], times: list[float], sigs: list[Signature]) -> None:
        n = len(ids)
        cap = max(1024, 2 * n)
        self._ids = list(ids)
        self._times = np.zeros(cap, dtype=np.float64)
        self._sigs = np.zeros((cap, NUM_PERM), dtype=np.uint32)
        if n:
            self._times[:n] = times
            self._sigs[:n] = np.vstack(sigs)
        self._lo, self._hi = 0, n

    def since(self, cutoff: float) -> tuple[int, npt.NDArray[np.uint32]]:
        """Offset and signatures of the rows at or after ``cutoff``."""
        start = self._lo + int(np.searchsorted(self._times[self._lo : self._hi], cutoff))
        return start, self._sigs[start : self._hi]

    def id_at(self, index: int) -> str:
        """The document id of row ``index`` (an offset from :meth:`since`)."""
        return self._ids[index]

    def append(self, ids: list[str], when: float, sigs: list[Signature]) -> None:
        """Add rows seen at ``when``."""
        k = len(ids)
        if self._hi + k > len(self._times):
            self._compact(extra=k)
        self._ids.extend(ids)
        self._times[self._hi : self._hi + k] = when
        self._sigs[self._hi : self._hi + k] = np.vstack(sigs)
        self._hi += k

    def drop_before(self, cutoff: float) -> None:
        """Forget rows older than ``cutoff``."""
        self._lo, _ = self.since(cutoff)
        if self._lo > (self._hi - self._lo):
            self._compact(extra=0)

    def _compact(self, *, extra: int) -> None:
        live = self._hi - self._lo
        cap = max(len(self._times), 2 * (live + extra))
        times = np.zeros(cap, dtype=np.float64)
        sigs = np.zeros((cap, NUM_PERM), dtype=np.uint32)
        times[:live] = self._times[self._lo : self._hi]
        sigs[:live] = self._sigs[self._lo : self._hi]
        self._ids = self._ids[self._lo : self._hi]
        self._times, self._sigs, self._lo, self._hi = times, sigs, 0, live


class DedupStore:
    """SQLite-backed memory of produced documents; ``path=None`` keeps it in memory."""

    def __init__(
        self,
        path: Path | None,
        *,
        near_min_similarity: float,
        near_window_s: float,
        retention_s: float,
        max_entries: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._near_min = near_min_similarity
        self._window_s = near_window_s
        self._retention_s = retention_s
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.RLock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            ":memory:" if path is None else str(path), check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._since_evict = 0
        self._load_window()

    def _load_window(self) -> None:
        cutoff = self._clock() - self._window_s
        rows = self._db.execute(
            "SELECT id, first_seen, sig FROM seen WHERE first_seen >= ? AND sig IS NOT NULL "
            "ORDER BY first_seen",
            (cutoff,),
        ).fetchall()
        self._window = _Window(
            [r[0] for r in rows],
            [r[1] for r in rows],
            [np.frombuffer(r[2], dtype=np.uint32) for r in rows],
        )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])

    def classify(self, item: Seen) -> Verdict:
        """Known (same id), exact, near or new, against everything already marked seen."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM seen WHERE id = ?", (item.id,)).fetchone():
                return Verdict("known", item.id, 1.0)
            cutoff = self._clock() - self._window_s
            # Same text is one story only inside the window: a recurring headline
            # ("Oil steady ahead of OPEC meeting") weeks later is a new story.
            row = self._db.execute(
                "SELECT id FROM seen WHERE content_hash = ? AND copies > 0 AND first_seen >= ? "
                "UNION ALL SELECT id FROM seen WHERE url = ? AND copies > 0 LIMIT 1",
                (item.content_hash, cutoff, item.url),
            ).fetchone()
            if row is not None:
                return Verdict("exact", row[0], 1.0)
            if item.signature is None:
                return Verdict("new")
            start, window = self._window.since(cutoff)
            sims = similarities(window, item.signature)
        if sims.size == 0:
            return Verdict("new")
        best = int(np.argmax(sims))
        score = float(sims[best])
        if score >= self._near_min and item.near_eligible:
            return Verdict("near", self._window.id_at(start + best), score)
        return Verdict("new", None, score)

    def mark_seen(self, items: Iterable[Seen]) -> None:
        """Remember produced documents (call only after the broker acknowledged them)."""
        now = self._clock()
        fresh: list[Seen] = []
        with self._lock:
            for item in items:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO seen (id, content_hash, url, first_seen, copies, sig) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        item.id,
                        item.content_hash,
                        item.url,
                        now,
                        item.copies,
                        None if item.signature is None else item.signature.tobytes(),
                    ),
                )
                if cur.rowcount and item.signature is not None:
                    fresh.append(item)
            if fresh:
                self._window.append(
                    [i.id for i in fresh],
                    now,
                    [i.signature for i in fresh if i.signature is not None],
                )
            self._since_evict += len(fresh)
            if self._since_evict >= max(100, self._max_entries // 100):
                self.evict()

    def add_copies(self, doc_id: str, count: int = 1) -> None:
        """Count ``count`` more syndicated copies of an already produced document."""
        with self._lock:
            self._db.execute("UPDATE seen SET copies = copies + ? WHERE id = ?", (count, doc_id))

    def add_outlets(self, doc_id: str, outlets: Iterable[str]) -> None:
        """Remember the outlets that carried ``doc_id`` (each once, in first-seen order)."""
        with self._lock:
            self._db.executemany(
                "INSERT OR IGNORE INTO outlets (id, outlet) VALUES (?, ?)",
                [(doc_id, o) for o in outlets],
            )

    def outlets(self, doc_id: str) -> list[str]:
        """The outlets that carried ``doc_id`` so far, first one first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT outlet FROM outlets WHERE id = ? ORDER BY rowid", (doc_id,)
            ).fetchall()
        return [r[0] for r in rows]

    def copies(self, doc_id: str) -> int:
        """Copies seen of ``doc_id`` so far (0 if unknown)."""
        with self._lock:
            row = self._db.execute("SELECT copies FROM seen WHERE id = ?", (doc_id,)).fetchone()
        return int(row[0]) if row else 0

    def evict(self) -> int:
        """Drop entries past retention, then the oldest beyond ``max_entries``."""
        now = self._clock()
        with self._lock:
            self._since_evict = 0
            removed = self._db.execute(
                "DELETE FROM seen WHERE first_seen < ?", (now - self._retention_s,)
            ).rowcount
            removed += self._db.execute(
                "DELETE FROM seen WHERE id IN (SELECT id FROM seen ORDER BY first_seen DESC "
                "LIMIT -1 OFFSET ?)",
                (self._max_entries,),
            ).rowcount
            # Signatures are only needed inside the near window.
            self._db.execute(
                "UPDATE seen SET sig = NULL WHERE first_seen < ? AND sig IS NOT NULL",
                (now - self._window_s,),
            )
            if removed:
                self._db.execute("DELETE FROM outlets WHERE id NOT IN (SELECT id FROM seen)")
                self._load_window()
            else:
                self._window.drop_before(now - self._window_s)
        return removed

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
