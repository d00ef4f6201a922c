"""The SQLite database of the alerting service: alerts, silences, the checkpoint and
the notification outbox.

One file (WAL mode, so the CLI can read and write silences while the service
runs). Every public function wraps :mod:`sqlite3` errors in
:class:`~alerts.exceptions.StoreError`. Transactions nest: an inner
:meth:`Database.transaction` joins the outer one, so an alert transition and its
notification intents (or the checkpoint and the pending notification groups)
commit together or not at all.

>>> db = Database(":memory:")
>>> try:
...     with db.transaction() as conn:
...         _ = conn.execute("INSERT INTO silences (pattern, until_s, reason, created_s)"
...                          " VALUES ('x', 1, 'r', 0)")
...         with db.transaction() as inner:  # joins the outer transaction
...             _ = inner.execute("INSERT INTO no_such_table VALUES (1)")
... except Exception as exc:
...     print(type(exc).__name__)
StoreError
>>> with db.transaction() as conn:
...     conn.execute("SELECT COUNT(*) FROM silences").fetchone()[0]  # rolled back together
0
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from alerts.exceptions import StoreError

__all__ = ["Database"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    started_at TEXT NOT NULL,
    state TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    series_kind TEXT NOT NULL,
    series TEXT NOT NULL,
    score REAL NOT NULL,
    updated_at TEXT NOT NULL,
    resolved_at TEXT,
    silenced INTEGER NOT NULL DEFAULT 0,
    payload TEXT NOT NULL,
    UNIQUE (key, started_at)
);
CREATE TABLE IF NOT EXISTS alert_events (
    alert_id INTEGER NOT NULL REFERENCES alerts(id),
    state TEXT NOT NULL,
    at TEXT NOT NULL,
    payload TEXT NOT NULL,
    UNIQUE (alert_id, state, at)
);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pattern TEXT NOT NULL,
    until_s REAL NOT NULL,
    reason TEXT NOT NULL,
    created_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoint (
    name TEXT PRIMARY KEY,
    state BLOB NOT NULL,
    saved_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS offsets (
    name TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (name, topic, partition)
);
CREATE TABLE IF NOT EXISTS seen_ids (
    name TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    bucket_s INTEGER NOT NULL,
    PRIMARY KEY (name, doc_id)
);
CREATE INDEX IF NOT EXISTS seen_ids_bucket ON seen_ids (name, bucket_s);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    channel TEXT NOT NULL,
    key TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_s REAL NOT NULL,
    done_s REAL,
    error TEXT,
    notification TEXT NOT NULL,
    UNIQUE (name, channel, key)
);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox (name, channel, status, id);
CREATE TABLE IF NOT EXISTS notify_groups (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
"""


class Database:
    """A thread-safe SQLite connection with the alerting schema."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the alert database {path}: {exc}") from exc
        self._lock = threading.RLock()
        self._depth = 0  # transactions open in the thread holding the lock

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (committed on success, rolled back on error).

        Called inside another transaction (same thread), it joins that one: nothing
        is committed before the outermost block ends.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                except sqlite3.Error as exc:
                    raise StoreError(f"alert database {self.path}: {exc}") from exc
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            try:
                with self._conn:
                    yield self._conn
            except sqlite3.Error as exc:
                raise StoreError(f"alert database {self.path}: {exc}") from exc
            finally:
                self._depth = 0

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
