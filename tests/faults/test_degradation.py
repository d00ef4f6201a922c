"""Graceful degradation: a stalled input marks series stale instead of firing; a notification
channel that is down queues alerts and delivers them, in order and signed, once it is back.

A stopped scorer looks to the alerting service like scored input that stops
arriving; the service is driven here with an injected clock (no Kafka loop) so
hours of silence take milliseconds. The scorer's own lag under faults is covered
by ``test_pipeline_faults.py``.
"""

from __future__ import annotations

import hmac
import http.server
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from prometheus_client import CollectorRegistry

from alerts.notify import Dispatcher, RetryPolicy, build_notifiers
from alerts.rules import parse_rules
from alerts.service import AlertService
from alerts.settings import AlertSettings
from alerts.testing import sample_alert, synthetic_stream
from stream.kafka import KafkaSettings
from tests.faults.harness import free_port

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SECRET = "degrade-hmac-2f7a"
RULES = """
rules:
  - {name: neg, series: {kind: topic}, min_history: 30m, hold: 2m, clear: 10m}
channels: []
"""


class _Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now


def test_stalled_input_fires_nothing_and_marks_series_stale(tmp_path: Path) -> None:
    clock = _Clock(T0)
    registry = CollectorRegistry()
    service = AlertService(
        AlertSettings(
            db_path=tmp_path / "a.sqlite",
            metrics_port=0,
            stale_after_s=3600,
            idle_watermark_after_s=60,
        ),
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),  # run() is not called here
        registry=registry,
        clock=clock,
        rules=parse_rules(RULES),
    )
    try:
        for doc in synthetic_stream(start=T0, hours=3.0, docs=900, seed=3):
            clock.now = max(clock.now, doc.published_at.timestamp() + 1)
            service.add(doc)
            service.evaluate_now()
        stale_before = registry.get_sample_value("finsentinel_alerts_stale_series")
        firing_before = service.stats["alerts"]["firing"]
        transitions = []
        for _ in range(4 * 60):  # the scorer is stopped: four hours without a document
            clock.now += 60
            transitions += service.evaluate_now()
        stale_after = registry.get_sample_value("finsentinel_alerts_stale_series")
    finally:
        service.close()
    assert [a for a in transitions if a.state == "firing"] == []
    assert service.stats["alerts"]["firing"] == firing_before
    assert stale_before == 0
    assert stale_after is not None and stale_after >= 1
    assert service.stats["buckets_closed"] >= 6 * 60  # buckets kept closing on the wall clock


def _hmac_v1(timestamp: str, body: bytes) -> str:
    """The receiver's own check, independent of ``alerts.notify.webhook``: the
    documented ``v1`` signature over ``<timestamp>.<body>``."""
    signed = timestamp.encode() + b"." + body
    return "v1=" + hmac.new(SECRET.encode(), signed, "sha256").hexdigest()


class _Receiver(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []
    verified: ClassVar[list[bool]] = []
    signatures: ClassVar[list[str]] = []
    timestamps: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        timestamp = self.headers.get("X-FinSentinel-Timestamp", "")
        signature = self.headers.get("X-FinSentinel-Signature", "")
        _Receiver.verified.append(
            timestamp.isdigit() and hmac.compare_digest(_hmac_v1(timestamp, body), signature)
        )
        _Receiver.bodies.append(body)
        _Receiver.signatures.append(signature)
        _Receiver.timestamps.append(timestamp)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def _wait(cond: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_alerts_queue_while_the_receiver_is_down_and_arrive_once_it_is_up() -> None:
    port = free_port()  # nothing listens yet: connections are refused
    rules = parse_rules(
        "rules: [{name: negative-spike-topic, series: {kind: topic}}]\nchannels:\n"
        f"  - {{name: hook, type: webhook, url: 'http://127.0.0.1:{port}/hook', "
        "secret_env: HOOK_SECRET, rate_limit_per_minute: 6000}\n"
    )
    outcomes: list[str] = []
    dispatcher = Dispatcher(
        rules,
        build_notifiers(rules.channels, env={"HOOK_SECRET": SECRET}, clock=time.time),
        clock=time.time,
        retry=RetryPolicy(initial_s=0.05, max_s=0.3),
        on_outcome=lambda _type, outcome: outcomes.append(outcome),
    ).start()
    _Receiver.bodies.clear()
    _Receiver.verified.clear()
    _Receiver.signatures.clear()
    _Receiver.timestamps.clear()
    server = None
    try:
        for i in range(5):
            dispatcher.submit(sample_alert(key=f"negative-spike-topic:topic:T{i}", series=f"T{i}"))
        _wait(lambda: outcomes.count("retried") >= 3)  # refused, retried, still queued
        assert dispatcher.pending >= 1 and _Receiver.bodies == []
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        _wait(lambda: len(_Receiver.bodies) == 5)
    finally:
        dispatcher.stop()
        if server is not None:
            server.shutdown()
            server.server_close()
    keys = [json.loads(b)["alerts"][0]["key"] for b in _Receiver.bodies]
    assert keys == [f"negative-spike-topic:topic:T{i}" for i in range(5)]  # in order, once each
    assert all(_Receiver.verified) and len(_Receiver.verified) == 5
    # A receiver verifying the signature would refuse a body or a timestamp altered on the
    # way (the timestamp is signed, so a captured request cannot be replayed as fresh).
    timestamp, signature = _Receiver.timestamps[0], _Receiver.signatures[0]
    tampered = _Receiver.bodies[0].replace(b"T0", b"T9")
    assert not hmac.compare_digest(_hmac_v1(timestamp, tampered), signature)
    later = str(int(timestamp) + 3600)
    assert not hmac.compare_digest(_hmac_v1(later, _Receiver.bodies[0]), signature)
