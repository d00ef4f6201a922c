"""``python -m alerts`` exits 0 on SIGTERM and 2 on bad settings; metric labels stay bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from alerts.engine import AlertEngine
from alerts.metrics import AlertMetrics
from alerts.rules import load_rules
from alerts.settings import DEFAULT_RULES_PATH
from alerts.testing import synthetic_stream


@pytest.mark.integration
@pytest.mark.slow
def test_python_m_alerts_runs_and_exits_zero_on_sigterm(broker: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker,
        "FINSENTINEL_ALERTS_DB_PATH": str(tmp_path / "alerts.sqlite"),
        "FINSENTINEL_ALERTS_METRICS_PORT": "0",
        "FINSENTINEL_ALERTS_GROUP_ID": f"entry-{time.time_ns()}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "alerts"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        db = tmp_path / "alerts.sqlite"
        deadline = time.monotonic() + 90
        while not db.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.2)
        time.sleep(3)  # let it join and assign partitions
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert "alerting service stopped" in out


def test_python_m_alerts_rejects_bad_settings_with_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "FINSENTINEL_ALERTS_BUCKET_S": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "alerts"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "FINSENTINEL_ALERTS_" in proc.stderr


def test_trend_gauges_only_for_configured_topics_and_watch_list() -> None:
    registry = CollectorRegistry()
    metrics = AlertMetrics(registry, topics=["Earnings"], tickers=["T01"], windows_s=[300, 3600])
    engine = AlertEngine(load_rules(DEFAULT_RULES_PATH), windows_s=(300, 3600))
    for d in synthetic_stream(start=datetime(2026, 1, 5, tzinfo=UTC), hours=1, docs=200, seed=9):
        engine.add(d)
    engine.flush()
    metrics.export_trends(engine.index, {w: engine.trend(w) for w in (300, 3600)})
    samples = {
        (s.labels.get("kind"), s.labels.get("series"))
        for m in registry.collect()
        if m.name == "finsentinel_alerts_series_documents"
        for s in m.samples
    }
    assert samples == {("topic", "Earnings"), ("topic", "other"), ("ticker", "T01")}
    row = engine.index.find(("topic", "Earnings"))
    assert row is not None
    got = registry.get_sample_value(
        "finsentinel_alerts_series_documents",
        {"kind": "topic", "series": "Earnings", "sentiment": "negative", "window": "1h"},
    )
    assert got == engine.trend(3600).negative[row]
