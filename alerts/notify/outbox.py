"""The notification outbox: intents to notify, kept in the alert database until delivered.

The service writes a notification's intent (one row per channel) in the same
SQLite transaction as the alert transition it announces; each channel's
worker delivers its rows oldest first and records the outcome. So:

* a transition is never stored without its notification, nor notified without
  being stored;
* after a crash, what was not delivered yet is delivered, and what was is not
  sent again: a transition the restarted service re-derives from its last
  checkpoint carries the same idempotency key, and the row ``(channel, key)``
  exists already (``INSERT OR IGNORE``);
* a crash between a delivery and its record sends that one again, with the
  same key: delivery is at-least-once, receivers de-duplicate by the key.

Rows end as ``sent``, ``rejected`` (the receiver refused it for good),
``expired`` (older than the channel's ``max_age``) or ``dropped`` (more than
``max_pending`` waiting on one channel: the oldest goes). Finished rows are
deleted after the retention, which must be longer than any replay of
transitions after a restart (the checkpoint interval; the default is 7 days).
Re-sends of open alerts to Alertmanager (keep-alives) wait at most once per
alert and channel and are deleted as soon as they are finished. Rows of a
channel no longer in the rules file are dropped at start.

>>> from alerts.db import Database
>>> from alerts.testing import sample_alert
>>> from alerts.notify.base import Notification
>>> box = Outbox(Database(":memory:"), max_pending=100)
>>> n = Notification((sample_alert(),), created_s=10.0)
>>> box.add(n, ["ops", "desk"]), box.add(n, ["ops"])  # the same intent twice: one row
((2, {}), (0, {}))
>>> d = box.next_pending("ops")
>>> d.notification.key == n.key, d.attempts
(True, 0)
>>> box.finish(d, "sent", now_s=11.0)
>>> box.next_pending("ops") is None, box.pending("desk")
(True, 1)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from alerts.db import Database
from alerts.notify.base import Notification

__all__ = ["FINAL_STATUSES", "Delivery", "Outbox"]

logger = logging.getLogger(__name__)

#: How a row ends (``pending`` until then).
FINAL_STATUSES: Final = ("sent", "rejected", "expired", "dropped")
#: Default retention of finished rows.
DEFAULT_RETENTION_S: Final = 7 * 86_400.0
#: Row key prefix of keep-alives (one pending per alert and channel; deleted when finished).
KEEP_ALIVE: Final = "keep-alive:"


@dataclass(frozen=True)
class Delivery:
    """One pending row: a notification for one channel."""

    id: int
    channel: str
    key: str
    notification: Notification
    attempts: int

    @property
    def keep_alive(self) -> bool:
        """A re-send of an open alert, not a transition."""
        return self.key.startswith(KEEP_ALIVE)


class Outbox:
    """Notification intents of one service (``name``: its checkpoint name) in ``db``."""

    def __init__(
        self,
        db: Database,
        *,
        name: str = "alerts",
        max_pending: int = 1000,
        retention_s: float = DEFAULT_RETENTION_S,
    ) -> None:
        if max_pending < 1 or retention_s <= 0:
            raise ValueError("max_pending must be >= 1 and retention_s > 0")
        self.db = db
        self.name = name
        self.max_pending = max_pending
        self.retention_s = retention_s

    def add(
        self, notification: Notification, channels: Iterable[str], *, keep_alive: bool = False
    ) -> tuple[int, dict[str, int]]:
        """Record the intent to send ``notification`` to each channel, in the caller's
        transaction if there is one. Returns the rows added and the rows dropped per
        channel: a row whose ``(channel, key)`` exists is not added again, and a channel
        with more than ``max_pending`` waiting rows drops its oldest. Keep-alives get
        the key with the prefix :data:`KEEP_ALIVE`."""
        key = KEEP_ALIVE + notification.key if keep_alive else notification.key
        body = notification.dumps()
        added, dropped = 0, {}
        with self.db.transaction() as conn:
            for channel in channels:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO outbox (name, channel, key, status, created_s,"
                    " notification) VALUES (?, ?, ?, 'pending', ?, ?)",
                    (self.name, channel, key, notification.created_s, body),
                )
                if cur.rowcount:
                    added += 1
                    if excess := self._bound(conn, channel, notification.created_s):
                        dropped[channel] = excess
        return added, dropped

    def _bound(self, conn: Any, channel: str, now_s: float) -> int:
        excess = self._count(conn, channel) - self.max_pending
        if excess <= 0:
            return 0
        conn.execute(
            "UPDATE outbox SET status = 'dropped', done_s = ?, error = 'outbox full'"
            " WHERE id IN (SELECT id FROM outbox WHERE name = ? AND channel = ?"
            " AND status = 'pending' ORDER BY id LIMIT ?)",
            (now_s, self.name, channel, excess),
        )
        logger.warning("channel %s: outbox full, dropped the %d oldest", channel, excess)
        return excess

    def _count(self, conn: Any, channel: str) -> int:
        row = conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE name = ? AND channel = ? AND status = 'pending'",
            (self.name, channel),
        ).fetchone()
        return int(row[0])

    def next_pending(self, channel: str) -> Delivery | None:
        """The oldest row waiting for ``channel`` (an unreadable row is marked rejected)."""
        while True:
            with self.db.transaction() as conn:
                row = conn.execute(
                    "SELECT id, key, notification, attempts, created_s FROM outbox"
                    " WHERE name = ? AND channel = ? AND status = 'pending' ORDER BY id LIMIT 1",
                    (self.name, channel),
                ).fetchone()
                if row is None:
                    return None
                try:
                    notification = Notification.loads(row[2])
                except (KeyError, TypeError, ValueError) as exc:
                    logger.error("outbox row %s for %s is unreadable: %s", row[0], channel, exc)
                    conn.execute(
                        "UPDATE outbox SET status = 'rejected', done_s = ?, error = ? WHERE id = ?",
                        (float(row[4]), f"unreadable: {exc}"[:1000], row[0]),
                    )
                    continue
            return Delivery(int(row[0]), channel, row[1], notification, int(row[3]))

    def attempted(self, delivery: Delivery, error: str) -> None:
        """Record a failed attempt (the row stays pending)."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, error = ? WHERE id = ?",
                (error[:1000], delivery.id),
            )

    def finish(
        self, delivery: Delivery, status: str, *, now_s: float, error: str | None = None
    ) -> None:
        """Record how ``delivery`` ended; a keep-alive row is deleted instead."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {FINAL_STATUSES}, not {status!r}")
        with self.db.transaction() as conn:
            if delivery.keep_alive:
                conn.execute("DELETE FROM outbox WHERE id = ?", (delivery.id,))
                return
            tried = int(status in ("sent", "rejected"))
            conn.execute(
                "UPDATE outbox SET status = ?, done_s = ?, error = ?,"
                " attempts = attempts + ? WHERE id = ?",
                (status, now_s, error[:1000] if error else None, tried, delivery.id),
            )

    def drop_unknown(self, channels: Iterable[str], *, now_s: float) -> int:
        """Mark rows waiting for a channel not in ``channels`` dropped; the number."""
        known = set(channels)
        dropped = 0
        with self.db.transaction() as conn:
            waiting = conn.execute(
                "SELECT DISTINCT channel FROM outbox WHERE name = ? AND status = 'pending'",
                (self.name,),
            ).fetchall()
            for (channel,) in waiting:
                if channel not in known:
                    dropped += conn.execute(
                        "UPDATE outbox SET status = 'dropped', done_s = ?,"
                        " error = 'channel removed' WHERE name = ? AND channel = ?"
                        " AND status = 'pending'",
                        (now_s, self.name, channel),
                    ).rowcount
        return dropped

    def pending(self, channel: str | None = None) -> int:
        """Rows waiting, for one channel or all of them."""
        with self.db.transaction() as conn:
            if channel is not None:
                return self._count(conn, channel)
            row = conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE name = ? AND status = 'pending'", (self.name,)
            ).fetchone()
        return int(row[0])

    def prune(self, *, now_s: float) -> int:
        """Delete finished rows older than the retention; the number deleted."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM outbox WHERE name = ? AND status != 'pending' AND done_s < ?",
                (self.name, now_s - self.retention_s),
            )
        return cur.rowcount

    def save_groups(self, state: list[dict[str, Any]]) -> None:
        """Store the notification groups still waiting (in the checkpoint's transaction)."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO notify_groups (name, state) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET state = excluded.state",
                (self.name, json.dumps(state, separators=(",", ":"))),
            )

    def load_groups(self) -> list[dict[str, Any]]:
        """The groups :meth:`save_groups` stored (empty if none)."""
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT state FROM notify_groups WHERE name = ?", (self.name,)
            ).fetchone()
        return list(json.loads(row[0])) if row else []
