"""Checkpoints: engine state and consumed Kafka offsets in one SQLite transaction.

The offsets stored here are the source of truth: on start the service seeks
to them, so state and position can never disagree (exactly-once aggregation
without Kafka transactions). Kafka group offsets are committed afterwards only
so lag monitoring works.

>>> from alerts.db import Database
>>> cp = Checkpointer(Database(":memory:"), name="alerts")
>>> cp.save({"x": 1}, {("scored", 0): 42}, new_ids=[("d1", 60)], evict_before_s=0, now_s=1.0)
>>> cp.load()
({'x': 1}, {('scored', 0): 42}, [('d1', 60)])
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from alerts.db import Database

__all__ = ["Checkpointer", "Offsets"]

Offsets = dict[tuple[str, int], int]


class Checkpointer:
    """Save and load one named checkpoint (engine state, offsets, de-duplication ids)."""

    def __init__(self, db: Database, *, name: str) -> None:
        self.db = db
        self.name = name

    def save(
        self,
        state: dict[str, Any],
        offsets: Offsets,
        *,
        new_ids: list[tuple[str, int]],
        evict_before_s: int | None,
        now_s: float,
    ) -> None:
        """Atomically replace the state and offsets; add new ids and evict old ones."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO checkpoint (name, state, saved_s) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET state = excluded.state,"
                " saved_s = excluded.saved_s",
                (self.name, _compress(state), now_s),
            )
            conn.executemany(
                "INSERT INTO offsets (name, topic, partition, next_offset) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name, topic, partition) DO UPDATE SET"
                " next_offset = excluded.next_offset",
                [(self.name, t, p, o) for (t, p), o in offsets.items()],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO seen_ids (name, doc_id, bucket_s) VALUES (?, ?, ?)",
                [(self.name, i, b) for i, b in new_ids],
            )
            if evict_before_s is not None:
                conn.execute(
                    "DELETE FROM seen_ids WHERE name = ? AND bucket_s < ?",
                    (self.name, evict_before_s),
                )

    def load(self) -> tuple[dict[str, Any], Offsets, list[tuple[str, int]]] | None:
        """The last checkpoint, or None if there is none."""
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT state FROM checkpoint WHERE name = ?", (self.name,)
            ).fetchone()
            if row is None:
                return None
            offsets = {
                (t, p): o
                for t, p, o in conn.execute(
                    "SELECT topic, partition, next_offset FROM offsets WHERE name = ?",
                    (self.name,),
                )
            }
            seen = [
                (i, b)
                for i, b in conn.execute(
                    "SELECT doc_id, bucket_s FROM seen_ids WHERE name = ?", (self.name,)
                )
            ]
        return json.loads(zlib.decompress(row[0])), offsets, seen


def _compress(state: dict[str, Any]) -> bytes:
    # Level 1: the state is mostly zeros and repeated keys; speed matters more than size.
    return zlib.compress(json.dumps(state, separators=(",", ":")).encode(), 1)
