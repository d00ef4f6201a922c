"""Fault-injection harness: real service subprocesses on a private embedded broker.

Nothing here is faked: the scorer (``python -m stream``), the alerting service
(``python -m alerts``) and the crawler (``python -m ingest``) run as separate
processes against their own Tansu broker (:class:`~stream.broker.EmbeddedBroker`),
so SIGSTOP on the broker and SIGKILL on a service hurt nobody else's tests.

The harness plays the part of a process supervisor (systemd ``Restart=always``,
a Kubernetes kubelet): it restarts what it killed and measures how long each
fresh process takes to answer ``/healthz`` with 200 by itself.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from kafka import KafkaConsumer, TopicPartition

from stream.kafka import KafkaSettings, make_consumer

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A free loopback port (the service binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """One supervised service subprocess with its own /healthz port per start."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port_env: str
    log_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    starts: int = 0
    kills: int = 0
    unexpected_exits: list[int] = field(default_factory=list)
    #: Seconds from spawn to the first 200 on /healthz, for every start that got there.
    ready_s: list[float] = field(default_factory=list)
    _spawned_at: float = 0.0
    _ready: bool = False

    def start(self) -> None:
        """Spawn a fresh process on a fresh metrics port."""
        self.port = free_port()
        env = {**self.env, self.port_env: str(self.port)}
        log = (self.log_dir / f"{self.name}.{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            self.argv,
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.starts += 1
        self._spawned_at = time.monotonic()
        self._ready = False

    @property
    def ready(self) -> bool:
        """True once this start answered /healthz with 200 (checked on each call until then)."""
        if self._ready or self.proc is None:
            return self._ready
        try:
            ok = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            ok = False
        if ok:
            self._ready = True
            self.ready_s.append(time.monotonic() - self._spawned_at)
        return self._ready

    def supervise(self) -> None:
        """Restart the process if it died by itself (recorded: that is a failure)."""
        if self.proc is not None and self.proc.poll() is not None:
            self.unexpected_exits.append(self.proc.returncode)
            self.start()

    def kill(self) -> None:
        """SIGKILL the process (no clean-up possible) and start a new one."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.kills += 1
        self.start()

    def terminate(self, timeout_s: float = 90.0) -> int:
        """SIGTERM and wait; the exit code (a clean stop is 0)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return -9

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the latest start's log, for assertion messages."""
        path = self.log_dir / f"{self.name}.{self.starts - 1}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


class TopicTail:
    """A background reader of whole topics (no group): first arrival time of every key id."""

    def __init__(self, kafka: KafkaSettings, topics: Iterable[str]) -> None:
        self._consumer: KafkaConsumer = make_consumer(kafka, group_id=None, fetch_max_wait_ms=200)
        parts = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(self._consumer.partitions_for_topic(t) or [])
        ]
        self._consumer.assign(parts)
        self._consumer.seek_to_beginning(*parts)
        self.first_seen: dict[str, float] = {}
        self.records = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tail", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            batch = self._consumer.poll(timeout_ms=500)
            now = time.monotonic()
            with self._lock:
                for records in batch.values():
                    for r in records:
                        self.records += 1
                        self.first_seen.setdefault(doc_id(r.value), now)

    def ids(self) -> set[str]:
        """Ids seen so far."""
        with self._lock:
            return set(self.first_seen)

    def close(self) -> None:
        """Stop reading and close the consumer."""
        self._stop.set()
        self._thread.join(timeout=30)
        self._consumer.close()


def read_all(
    kafka: KafkaSettings, topics: Iterable[str], idle_s: float = 8.0
) -> list[tuple[str, int, int, bytes]]:
    """Every record of ``topics`` as ``(topic, partition, offset, value)``, in partition order.

    Read by a fresh consumer until ``idle_s`` of silence: Tansu under-reports the
    high watermark, so "the end" is a quiet period, not ``end_offsets``.
    """
    consumer = make_consumer(kafka, group_id=None, fetch_max_wait_ms=200)
    try:
        parts = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(t) or [])
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: list[tuple[str, int, int, bytes]] = []
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < idle_s:
            for tp, records in consumer.poll(timeout_ms=500).items():
                out.extend((tp.topic, tp.partition, r.offset, r.value) for r in records)
                if records:
                    quiet_since = time.monotonic()
        out.sort(key=lambda r: (r[0], r[1], r[2]))
        return out
    finally:
        consumer.close()


def doc_id(value: bytes) -> str:
    """The ``id`` of a JSON document record (a placeholder for anything else)."""
    try:
        obj = json.loads(value)
    except ValueError:
        return "<not json>"
    return str(obj.get("id")) if isinstance(obj, dict) else "<not an object>"


def service_env(kafka: KafkaSettings, **extra: str) -> dict[str, str]:
    """The environment of a service subprocess: this one, minus FinSentinel/Kafka settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FINSENTINEL_", "KAFKA_", "PYTEST_"))
    }
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers or "",
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1",
            **extra,
        }
    )
    return env


PYTHON = sys.executable
