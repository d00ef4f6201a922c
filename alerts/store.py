"""Persistent alerts (with their evidence and history) and silences.

>>> from datetime import datetime, timezone
>>> from alerts.db import Database
>>> store = AlertStore(Database(":memory:"))
>>> sid = store.add_silence("neg:ticker:*", until_s=2_000.0, reason="earnings day", now_s=1_000.0)
>>> store.silenced("neg:ticker:ACME", now_s=1_500.0).reason
'earnings day'
>>> store.silenced("neg:ticker:ACME", now_s=2_500.0) is None
True
"""

from __future__ import annotations

import builtins
import fnmatch
from dataclasses import dataclass

from alerts.db import Database
from stream.contracts.schemas import Alert

__all__ = ["AlertStore", "Silence", "StoredAlert"]


@dataclass(frozen=True)
class StoredAlert:
    """One alert (rule + series + start) in its latest state."""

    id: int
    silenced: bool
    alert: Alert


@dataclass(frozen=True)
class Silence:
    """Notifications for keys matching ``pattern`` (a glob) are muted until ``until_s``."""

    id: int
    pattern: str
    until_s: float
    reason: str
    created_s: float

    def matches(self, key: str) -> bool:
        """Whether this silence covers the alert ``key``."""
        return fnmatch.fnmatchcase(key, self.pattern)


class AlertStore:
    """Alerts and silences in the service's SQLite database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, alert: Alert, *, silenced: bool = False) -> int:
        """Insert or update the alert ``(key, started_at)``; append the transition."""
        payload = alert.model_dump_json()
        started = alert.started_at.isoformat()
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO alerts (key, started_at, state, rule, severity, series_kind, series,"
                " score, updated_at, resolved_at, silenced, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (key, started_at) DO UPDATE SET state = excluded.state,"
                " score = excluded.score, updated_at = excluded.updated_at,"
                " resolved_at = excluded.resolved_at, silenced = excluded.silenced,"
                " payload = excluded.payload",
                (
                    alert.key,
                    started,
                    alert.state,
                    alert.rule,
                    alert.severity,
                    alert.series_kind,
                    alert.series,
                    alert.score,
                    alert.updated_at.isoformat(),
                    alert.resolved_at.isoformat() if alert.resolved_at else None,
                    int(silenced),
                    payload,
                ),
            )
            row = conn.execute(
                "SELECT id FROM alerts WHERE key = ? AND started_at = ?", (alert.key, started)
            ).fetchone()
            conn.execute(
                "INSERT OR IGNORE INTO alert_events (alert_id, state, at, payload)"
                " VALUES (?, ?, ?, ?)",
                (row[0], alert.state, alert.updated_at.isoformat(), payload),
            )
        return int(row[0])

    def list(self, *, state: str | None = None, limit: int = 50) -> builtins.list[StoredAlert]:
        """The most recently updated alerts, optionally only in ``state``."""
        sql = "SELECT id, silenced, payload FROM alerts"
        args: tuple[object, ...] = ()
        if state:
            sql, args = sql + " WHERE state = ?", (state,)
        sql += " ORDER BY updated_at DESC, id DESC LIMIT ?"
        with self.db.transaction() as conn:
            rows = conn.execute(sql, (*args, limit)).fetchall()
        return [StoredAlert(r[0], bool(r[1]), Alert.model_validate_json(r[2])) for r in rows]

    def unresolved(self) -> builtins.list[Alert]:
        """Latest state of every alert not resolved yet."""
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT payload FROM alerts WHERE state != 'resolved'").fetchall()
        return [Alert.model_validate_json(r[0]) for r in rows]

    def get(self, alert_id: int) -> StoredAlert | None:
        """One alert by id."""
        with self.db.transaction() as conn:
            r = conn.execute(
                "SELECT id, silenced, payload FROM alerts WHERE id = ?", (alert_id,)
            ).fetchone()
        return StoredAlert(r[0], bool(r[1]), Alert.model_validate_json(r[2])) if r else None

    def history(self, alert_id: int) -> builtins.list[Alert]:
        """Every transition of one alert, oldest first."""
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT payload FROM alert_events WHERE alert_id = ? ORDER BY at, rowid",
                (alert_id,),
            ).fetchall()
        return [Alert.model_validate_json(r[0]) for r in rows]

    def add_silence(self, pattern: str, *, until_s: float, reason: str, now_s: float) -> int:
        """Mute notifications for keys matching ``pattern`` until ``until_s``."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO silences (pattern, until_s, reason, created_s) VALUES (?, ?, ?, ?)",
                (pattern, until_s, reason, now_s),
            )
        return int(cur.lastrowid or 0)

    def remove_silence(self, pattern_or_id: str) -> int:
        """Delete silences by id or by exact pattern; the number removed."""
        with self.db.transaction() as conn:
            if pattern_or_id.isdigit():
                cur = conn.execute("DELETE FROM silences WHERE id = ?", (int(pattern_or_id),))
            else:
                cur = conn.execute("DELETE FROM silences WHERE pattern = ?", (pattern_or_id,))
        return cur.rowcount

    def silences(self, *, now_s: float) -> builtins.list[Silence]:
        """Silences still in force at ``now_s``."""
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT id, pattern, until_s, reason, created_s FROM silences WHERE until_s > ?"
                " ORDER BY until_s",
                (now_s,),
            ).fetchall()
        return [Silence(*r) for r in rows]

    def silenced(self, key: str, *, now_s: float) -> Silence | None:
        """The silence covering ``key`` at ``now_s``, if any."""
        return next((s for s in self.silences(now_s=now_s) if s.matches(key)), None)
