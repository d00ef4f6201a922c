"""The end-to-end demo: crawl -> score -> alerts through the real embedded broker.

These run the shipped model (``models/default``), so the sentiment of the
bundled corpus is real: the planted burst must raise alerts and a flat stream
of the same kind must not.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from finsentinel.demo import DemoOptions, run_demo
from finsentinel.demo_corpus import DEMO_ALIASES, DEMO_DATA_DIR, generate, write_corpus
from models.modeldir import DEFAULT_MODEL_DIR

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DEFAULT_MODEL_DIR / "model_card.json").exists(),
        reason="the shipped model models/default is missing (make model builds it)",
    ),
]

BURST_NAMES = ("Crescent Regional Bank", "Meridian Savings Bancorp", "$CRBK", "$MSBC")


def test_bundled_corpus_matches_its_generator(tmp_path: Path) -> None:
    write_corpus(tmp_path, aliases_path=tmp_path / "aliases.csv")
    for name in ("news.rss", "wire.jsonl", "comments.jsonl"):
        assert (tmp_path / name).read_bytes() == (DEMO_DATA_DIR / name).read_bytes(), name
    assert (tmp_path / "aliases.csv").read_bytes() == DEMO_ALIASES.read_bytes()


def test_demo_scores_everything_and_alerts_on_the_burst(broker: str) -> None:
    summary = run_demo(DemoOptions(metrics_port=0))
    rows = generate()
    assert summary.documents_in + summary.duplicates == len(rows)
    assert summary.scored == summary.documents_in
    assert summary.dead_lettered == 2  # the two broken rows in comments.jsonl
    firing = summary.firing
    assert firing, "the planted burst raised no alert"
    burst_start = min(r["published_at"] for r in rows if r["burst"])
    for alert in firing:
        assert alert.window_end.isoformat() >= burst_start.replace("Z", "+00:00")
        titles = " ".join(ev.title for ev in alert.evidence)
        assert any(name in titles for name in BURST_NAMES), titles
    assert {a.series for a in firing} & {"CRBK", "MSBC"}, [a.key for a in firing]


def test_flat_stream_raises_no_alert(tmp_path: Path) -> None:
    write_corpus(tmp_path, aliases_path=None, burst=0, seed=11)
    summary = run_demo(DemoOptions(corpus_dir=tmp_path, metrics_port=0))
    assert summary.scored == summary.documents_in > 300
    assert summary.firing == []


def test_cli_demo_exits_zero_with_a_summary(tmp_path: Path) -> None:
    write_corpus(tmp_path, aliases_path=None, n_docs=150, burst=30)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "finsentinel.cli",
            "demo",
            "--corpus",
            str(tmp_path),
            "--metrics-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for needle in ("documents in", "scored", "dead-lettered", "alerts (firing)", "/metrics"):
        assert needle in proc.stdout
