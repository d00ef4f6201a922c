"""SIGKILL the alerting service around its notifications; a receiver de-duplicating by the
idempotency key sees every transition exactly once and misses none.

``python -m alerts`` runs as a real subprocess on a private embedded broker and
notifies a signed webhook receiver on 127.0.0.1 that counts deliveries by their
``Idempotency-Key``. Whenever a transition's key arrives for the first time the
receiver kills the service, alternately

* **before acknowledging** (the process dies between sending and recording the
  delivery, and usually before the checkpoint of the evaluation that fired): the
  restarted service sends that one again, with the same key;
* **after the delivery is recorded** (the outbox row says ``sent``; the checkpoint
  of the evaluation may or may not be saved): the restarted service re-derives the
  transition from its checkpoint and must not send it again.

While a kill is under way, requests are not answered (their sender is dying): only
such cut-off deliveries may arrive twice.

The harness restarts the service after each kill (a supervisor's part). After
the input is consumed, one in-process start flushes the remaining buckets (end
of a back-fill). The keys received must equal those of a fault-free run of the
pure engine over the same documents.
"""

from __future__ import annotations

import http.server
import json
import sqlite3
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.engine import AlertEngine
from alerts.notify.keys import HEADER, idempotency_key
from alerts.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from alerts.rules import load_rules
from alerts.service import AlertService
from alerts.settings import AlertSettings
from alerts.testing import synthetic_stream
from stream.contracts.schemas import ScoredDocument, encode, message_key
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, make_producer
from stream.runtime import StopFlag
from tests.faults.harness import PYTHON, Service, service_env
from tests.faults.workload import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(900)]

SECRET = "fault-secret"
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
RULES = """
version: 1
rules:
  - name: negative-spike-topic
    series: {{kind: topic, values: ["*"]}}
    detectors: [count, share]
    window: 5m
    min_volume: 8
    min_negative: 5
    hold: 2m
    clear: 10m
  - name: negative-spike-ticker
    series: {{kind: ticker, values: ["*"]}}
    detectors: [count, share]
    window: 5m
    min_volume: 8
    min_negative: 5
    hold: 2m
    clear: 10m
channels:
  - {{name: hook, type: webhook, url: "{url}", secret_env: HOOK_SECRET,
      rate_limit_per_minute: 6000}}
"""


def _docs() -> list[ScoredDocument]:
    """Two 4-hour stretches with one burst each: several firing and resolved transitions."""
    first = synthetic_stream(start=T0, hours=4, docs=480, seed=5, burst_topic="Legal")
    second = synthetic_stream(
        start=T0 + timedelta(hours=4),
        hours=4,
        docs=480,
        seed=6,
        burst_topic="Earnings",
        burst_ticker="ACME",
    )
    return first + second


class KillingReceiver:
    """A webhook receiver that counts deliveries by key and kills the service on new keys."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.service: Service | None = None
        self.killing = True
        self.keys: list[str] = []
        self.verified: list[bool] = []
        self.killed_before_ack: list[str] = []
        self.killed_after_record: list[str] = []
        self.cut_off: list[str] = []  # received, never answered: the sender died
        self.errors: list[BaseException] = []
        self.busy = False  # a kill is under way (until the supervisor restarted the service)
        self.kill_pending = threading.Event()
        self.restarted = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    receiver.received(self, body)
                except BaseException as exc:  # the server thread would swallow it
                    receiver.errors.append(exc)
                    raise

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def received(self, handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        key = handler.headers.get(HEADER, "")
        ok = verify(
            SECRET.encode(),
            body,
            handler.headers.get(TIMESTAMP_HEADER, ""),
            handler.headers.get(SIGNATURE_HEADER, ""),
        )
        mode = None
        with self.lock:
            new = key not in self.keys
            self.keys.append(key)
            self.verified.append(ok and json.loads(body)["idempotency_key"] == key)
            waiting = self.busy
            if not waiting and self.killing and new:
                self.busy = True
                self.restarted.clear()
                before = len(self.killed_before_ack) <= len(self.killed_after_record)
                mode = "before" if before else "after"
        if waiting:  # the sender is being killed: never answer it
            self.restarted.wait(120)
            self.cut_off.append(key)
            return
        if mode == "before":
            self.cut_off.append(key)
            self._kill(key, self.killed_before_ack)
            return  # the sender dies waiting for the answer
        handler.send_response(200)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        if mode == "after":
            wait_for("the delivery to be recorded", lambda: self._recorded(key), 60, lambda: None)
            self._kill(key, self.killed_after_record)

    def _recorded(self, key: str) -> bool:
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10) as conn:
            row = conn.execute("SELECT status FROM outbox WHERE key = ?", (key,)).fetchone()
        return row is not None and row[0] == "sent"

    def _kill(self, key: str, into: list[str]) -> None:
        assert self.service is not None and self.service.proc is not None
        self.service.proc.kill()
        into.append(key)
        self.kill_pending.set()

    def supervise(self) -> None:
        """Restart the service this receiver killed (the supervisor's part)."""
        service = self.service
        assert service is not None and service.proc is not None
        if self.kill_pending.is_set():
            service.proc.wait(timeout=30)
            service.kills += 1
            with self.lock:  # nothing is in flight now: the killed process is gone
                self.kill_pending.clear()
                self.busy = False
                self.restarted.set()
            service.start()
        service.supervise()

    def delivered(self, keys: set[str]) -> bool:
        """Every key in ``keys`` arrived, no kill is under way and the outbox is empty."""
        with self.lock:
            if self.busy or not keys <= set(self.keys):
                return False
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10) as conn:
            row = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()
        return int(row[0]) == 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _produce(kafka: KafkaSettings, topic: str, docs: list[ScoredDocument]) -> None:
    producer = make_producer(kafka)
    futures = [producer.send(topic, key=message_key(d), value=encode(d)) for d in docs]
    producer.flush(timeout=60)
    for f in futures:
        f.get(timeout=60)
    producer.close()


def _flush_rest(rules: Path, db_path: Path, kafka: KafkaSettings) -> None:
    """End of the back-fill: one in-process start consumes nothing new, flushes every bucket
    and delivers what that raises."""
    settings = AlertSettings(
        db_path=db_path, rules_path=rules, group_id="notify-faults", metrics_port=0
    )
    service = AlertService(settings, kafka=kafka, env={"HOOK_SECRET": SECRET})
    stop = StopFlag()
    thread = threading.Thread(target=service.run, args=(stop,), name="alerts-final")
    thread.start()
    try:
        wait_for("the final start to be ready", lambda: service.ready, 120, lambda: None)
        service.flush()
        wait_for(
            "the flush's notifications", lambda: service.dispatcher.pending == 0, 60, lambda: None
        )
    finally:
        stop.set()
        thread.join(timeout=120)
        service.close()


def test_kills_around_notifications_deliver_each_transition_once_by_key(
    fault_kafka: KafkaSettings, fault_topics: TopicNames, tmp_path: Path
) -> None:
    docs = _docs()
    db_path = tmp_path / "alerts.sqlite"
    receiver = KillingReceiver(db_path)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.format(url=receiver.url), encoding="utf-8")
    (tmp_path / "logs").mkdir()
    env = service_env(
        fault_kafka,
        FINSENTINEL_ALERTS_DB_PATH=str(db_path),
        FINSENTINEL_ALERTS_RULES_PATH=str(rules),
        FINSENTINEL_ALERTS_EVALUATE_INTERVAL_S="0.5",
        FINSENTINEL_ALERTS_CHECKPOINT_INTERVAL_S="0.5",
        FINSENTINEL_ALERTS_GROUP_ID="notify-faults",
        HOOK_SECRET=SECRET,
    )
    service = Service(
        "alerts",
        [PYTHON, "-m", "alerts"],
        env,
        "FINSENTINEL_ALERTS_METRICS_PORT",
        tmp_path / "logs",
    )
    receiver.service = service
    engine = AlertEngine(load_rules(rules))  # the fault-free run
    for doc in docs:
        engine.add(doc)
    reference = engine.flush()
    expected = [idempotency_key(a) for a in reference]
    # Transitions an hour before the end of the input are raised while the service runs
    # (later ones may wait for the end-of-input flush).
    cutoff = max(d.published_at for d in docs) - timedelta(hours=1)
    live = {idempotency_key(a) for a in reference if a.updated_at <= cutoff}
    _produce(fault_kafka, fault_topics.scored, docs)
    service.start()
    try:
        wait_for(
            "every transition of the input to be notified",
            lambda: receiver.delivered(live),
            600,
            receiver.supervise,
        )
        with receiver.lock:
            receiver.killing = False
        # The last kill's restart may still be importing: a supervisor stops a service
        # that is up, and a SIGTERM before Python installed its handler is a -15.
        wait_for("the last start to be ready", lambda: service.ready, 120, receiver.supervise)
        exit_code = service.terminate()
        _flush_rest(rules, db_path, fault_kafka)
    finally:
        receiver.close()
        if service.proc is not None and service.proc.poll() is None:
            service.proc.kill()

    counts = Counter(receiver.keys)
    print(
        "\nnotify faults:",
        json.dumps(
            {
                "transitions": len(expected),
                "raised_live": len(live),
                "deliveries": len(receiver.keys),
                "kills_before_ack": len(receiver.killed_before_ack),
                "kills_after_record": len(receiver.killed_after_record),
                "cut_off": len(receiver.cut_off),
                "unexpected_exits": service.unexpected_exits,
            }
        ),
    )
    assert not receiver.errors, receiver.errors
    assert exit_code == 0, service.log_tail()
    assert not service.unexpected_exits, service.log_tail()
    assert len(live) >= 4 and len(set(expected)) == len(expected)
    assert receiver.killed_before_ack and receiver.killed_after_record
    # De-duplicated by key: every transition exactly once, none missing, none invented.
    assert set(counts) == set(expected)
    # A delivery cut off before its answer is sent again, once; a recorded one never is.
    assert {k for k, n in counts.items() if n > 1} == set(receiver.cut_off)
    assert all(counts[k] == 2 for k in receiver.cut_off)
    assert all(counts[k] == 1 for k in receiver.killed_after_record)
    assert all(receiver.verified)
