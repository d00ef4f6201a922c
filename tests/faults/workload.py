"""Workload and faults for the fault-injection suite: steady producers, a file drop for the
crawler, and a seeded schedule of SIGKILLs and one broker freeze."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stream.broker import EmbeddedBroker
from stream.contracts.schemas import RawDocument, encode, message_key
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, make_producer
from tests.faults.harness import Service


def raw_document(d: dict[str, Any], fetched: datetime) -> RawDocument:
    return RawDocument(
        id=d["id"],
        source=d["source"],
        kind=d["kind"],
        url=d["url"],
        title=d["title"],
        body=d["body"],
        author=d["author"],
        tickers=d["tickers"],
        published_at=datetime.fromisoformat(d["published_at"]),
        fetched_at=fetched,
    )


class Producer(threading.Thread):
    """Produces raw documents at a steady rate; records each id's send time and any error."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: TopicNames,
        docs: list[dict[str, Any]],
        rate_per_s: float,
    ) -> None:
        super().__init__(name="producer", daemon=True)
        self.kafka, self.topics, self.docs, self.rate_per_s = kafka, topics, docs, rate_per_s
        self.sent_at: dict[str, float] = {}
        self.errors: list[BaseException] = []
        self.done = threading.Event()

    def run(self) -> None:
        producer = make_producer(self.kafka)
        t0 = time.monotonic()
        try:
            for i, d in enumerate(self.docs):
                delay = t0 + i / self.rate_per_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                doc = raw_document(d, datetime.now(UTC))
                future = producer.send(
                    self.topics.raw_for(doc.kind), key=message_key(doc), value=encode(doc)
                )
                future.add_errback(self.errors.append)
                self.sent_at[doc.id] = time.monotonic()
            producer.flush(timeout=180)
        except BaseException as exc:  # surfaced by the test, not swallowed
            self.errors.append(exc)
        finally:
            producer.close(timeout=30)
            self.done.set()


class FileWriter(threading.Thread):
    """Drops a new JSONL file into the crawler's folder every few seconds."""

    def __init__(
        self, folder: Path, rows: list[dict[str, Any]], *, files: int, gap_s: float
    ) -> None:
        super().__init__(name="files", daemon=True)
        self.folder, self.rows, self.files, self.gap_s = folder, rows, files, gap_s
        self.done = threading.Event()

    def run(self) -> None:
        per_file = len(self.rows) // self.files
        for k in range(self.files):
            part = self.rows[k * per_file : (k + 1) * per_file]
            tmp = self.folder / f".part-{k}.tmp"
            tmp.write_text("".join(json.dumps(_file_row(d)) + "\n" for d in part), encoding="utf-8")
            tmp.rename(self.folder / f"part-{k:02d}.jsonl")  # atomic: never half a file
            time.sleep(self.gap_s)
        self.done.set()


def _file_row(d: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in d.items() if k != "burst" and v is not None}
    row["id"] = f"file-{d['id']}"
    return row


def wait_for(
    what: str, cond: Callable[[], bool], timeout_s: float, tick: Callable[[], None]
) -> float:
    """Wait for ``cond`` while supervising; the seconds it took."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        tick()
        time.sleep(0.25)
    return time.monotonic() - t0


class Chaos:
    """Seeded random kills of ready services, and one broker freeze, while input flows."""

    def __init__(
        self,
        services: dict[str, Service],
        broker: EmbeddedBroker,
        *,
        seed: int,
        kills: dict[str, int],
        freeze_s: float,
    ) -> None:
        self.rng = random.Random(seed)
        self.services = services
        self.broker = broker
        self.budget = dict(kills)
        self.freeze_s = freeze_s
        self.next_kill: dict[str, float] = {}
        self.freeze_at: float | None = None
        self.resumed_at: float | None = None

    def tick(self) -> None:
        """Restart what died by itself; kill what is due; freeze the broker once."""
        for s in self.services.values():
            s.supervise()
            _ = s.ready  # polls /healthz until this start answers, so its time is measured
        now = time.monotonic()
        if self.freeze_at is not None and self.resumed_at is None and now >= self.freeze_at:
            self._freeze()
            return
        for name, s in self.services.items():
            if self.budget[name] <= 0 or not s.ready:
                continue
            due = self.next_kill.setdefault(name, now + self.rng.uniform(0.5, 6.0))
            if now >= due:
                s.kill()
                self.budget[name] -= 1
                del self.next_kill[name]

    def _freeze(self) -> None:
        os.kill(self.broker.pid, signal.SIGSTOP)
        try:
            t_end = time.monotonic() + self.freeze_s
            while time.monotonic() < t_end:  # producers and consumers keep running meanwhile
                for s in self.services.values():
                    s.supervise()
                time.sleep(0.25)
        finally:
            os.kill(self.broker.pid, signal.SIGCONT)
        self.resumed_at = time.monotonic()

    @property
    def finished(self) -> bool:
        """Every kill done and the broker thawed."""
        return not any(self.budget.values()) and self.resumed_at is not None
