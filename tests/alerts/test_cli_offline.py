"""The CLI (list, show, silence, check-rules, detect, test-notify) and offline detection."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from alerts.backtest.offline import detect_frame
from alerts.cli import register
from alerts.db import Database
from alerts.engine import build_detector
from alerts.rules import parse_rules
from alerts.store import AlertStore
from alerts.testing import sample_alert

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """FinSentinel (test root)."""

    register(app)
    return app


def test_list_show_silence_unsilence(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite"
    store = AlertStore(Database(db))
    alert_id = store.record(sample_alert())
    app = _app()
    out = runner.invoke(app, ["alerts", "list", "--db", str(db)])
    assert out.exit_code == 0, out.output
    assert (
        "negative-spike-topic:topic:Earnings" in out.output.replace("\n", "")
        or "Earnings" in out.output
    )
    out = runner.invoke(app, ["alerts", "show", str(alert_id), "--db", str(db)])
    assert out.exit_code == 0 and "https://news.example/e0" in out.output
    out = runner.invoke(
        app,
        [
            "alerts",
            "silence",
            "negative-spike-topic:*",
            "--for",
            "2h",
            "--reason",
            "earnings season",
            "--db",
            str(db),
        ],
    )
    assert out.exit_code == 0, out.output
    assert store.silenced("negative-spike-topic:topic:Earnings", now_s=time.time()) is not None
    out = runner.invoke(app, ["alerts", "unsilence", "negative-spike-topic:*", "--db", str(db)])
    assert out.exit_code == 0 and "removed 1" in out.output


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    app = _app()
    out = runner.invoke(
        app,
        [
            "alerts",
            "silence",
            "k",
            "--for",
            "soon",
            "--reason",
            "x",
            "--db",
            str(tmp_path / "a.sqlite"),
        ],
    )
    assert out.exit_code == 2 and "not a duration" in out.output
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - name: r\n    series: {kind: topic}\n    threshold: 2\n")
    out = runner.invoke(app, ["alerts", "check-rules", str(bad)])
    assert out.exit_code == 2
    assert f"{bad}: line 4: rules.0.threshold" in out.output
    out = runner.invoke(app, ["alerts", "show", "1", "--db", str(tmp_path / "none.sqlite")])
    assert out.exit_code == 2 and "no alert database" in out.output


def test_silence_without_a_unit_is_refused(tmp_path: Path) -> None:
    out = runner.invoke(
        _app(),
        ["alerts", "silence", "k", "--for", "2", "--reason", "x", "--db", str(tmp_path / "a.db")],
    )
    assert out.exit_code == 2 and "give a unit, e.g. 2m, 2h or 2d" in out.output
    assert not (tmp_path / "a.db").exists()


def test_check_rules_fails_on_a_channel_secret_the_service_would_refuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FS_TEST_UNSET_SECRET", raising=False)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - {name: r, series: {kind: topic}}\n"
        "channels:\n  - {name: ops, type: webhook, url: 'http://127.0.0.1:9/x',"
        " secret_env: FS_TEST_UNSET_SECRET}\n"
    )
    out = runner.invoke(_app(), ["alerts", "check-rules", str(rules)])
    assert out.exit_code == 2, out.output
    assert "ops" in out.output and "FS_TEST_UNSET_SECRET" in out.output
    monkeypatch.setenv("FS_TEST_UNSET_SECRET", "s3cret")
    out = runner.invoke(_app(), ["alerts", "check-rules", str(rules)])
    assert out.exit_code == 0 and "ok: 1 rules, 1 channels" in out.output


def test_check_default_rules_ok() -> None:
    out = runner.invoke(_app(), ["alerts", "check-rules"])
    assert out.exit_code == 0 and "ok: 2 rules" in out.output


def test_test_notify_reports_unknown_channel() -> None:
    out = runner.invoke(_app(), ["alerts", "test-notify", "nope"])
    assert out.exit_code == 2 and "no channel 'nope'" in out.output


def test_detect_cli_writes_scores_and_decisions(tmp_path: Path) -> None:
    times = pd.date_range("2026-01-05", periods=200, freq="min", tz="UTC")
    rng = np.random.default_rng(0)
    total = rng.poisson(8, 200)
    neg = rng.binomial(total, 0.2)
    neg[150:165] += 12
    total[150:165] += 12
    src = tmp_path / "in.csv"
    pd.DataFrame({"ts": times, "neg": neg, "all": total}).to_csv(src, index=False)
    dst = tmp_path / "out.csv"
    out = runner.invoke(
        _app(),
        [
            "alerts",
            "detect",
            "--input",
            str(src),
            "--time-column",
            "ts",
            "--value-column",
            "neg",
            "--total-column",
            "all",
            "--output",
            str(dst),
        ],
    )
    assert out.exit_code == 0, out.output
    scored = pd.read_csv(dst)
    assert len(scored) == 200 and set(scored.columns) >= {"score", "decision", "state"}
    assert scored["score"].between(0, 1).all()
    assert not scored["decision"].iloc[:150].any() and scored["decision"].iloc[152:165].any()
    out = runner.invoke(
        _app(),
        [
            "alerts",
            "detect",
            "--input",
            str(src),
            "--time-column",
            "x",
            "--value-column",
            "neg",
            "--output",
            str(dst),
        ],
    )
    assert out.exit_code == 2 and "column 'x'" in out.output


def test_offline_is_causal_and_matches_the_live_detector() -> None:
    rule = parse_rules(
        "rules: [{name: r, series: {kind: all}, detectors: [count], min_history: 20m}]"
    ).rules[0]
    times = pd.date_range("2026-01-05", periods=120, freq="min", tz="UTC")
    counts = np.random.default_rng(1).poisson(2, 120)
    full = detect_frame(
        pd.DataFrame({"t": times, "v": counts}), time_column="t", value_column="v", rule=rule
    )
    head = detect_frame(
        pd.DataFrame({"t": times[:80], "v": counts[:80]}),
        time_column="t",
        value_column="v",
        rule=rule,
    )
    assert np.allclose(full["score"].iloc[:80], head["score"], equal_nan=True)  # no look-ahead
    from alerts.detectors import SeriesFrame

    live = build_detector(rule, bucket_s=60)
    for i, c in enumerate(counts):
        live.update(SeriesFrame.of(start_s=int(times[i].timestamp()), total=[c], negative=[c]))
    assert math.isclose(float(live.score()[0]), float(full["score"].iloc[-1]), abs_tol=1e-12)


def test_offline_fills_gaps_with_zero_buckets() -> None:
    # One output row per input row (issue 15); the gap 00:02-00:04 is scored internally
    # as zero-count buckets, exactly as if those rows had been given with 0.
    rule = parse_rules("rules: [{name: r, series: {kind: all}, detectors: [count]}]").rules[0]
    df = pd.DataFrame(
        {"t": ["2026-01-05T00:00Z", "2026-01-05T00:01Z", "2026-01-05T00:05Z"], "v": [1, 2, 3]}
    )
    out = detect_frame(df, time_column="t", value_column="v", rule=rule)
    assert out["v"].tolist() == [1, 2, 3]
    full = pd.DataFrame(
        {"t": pd.date_range("2026-01-05", periods=6, freq="min", tz="UTC"), "v": [1, 2, 0, 0, 0, 3]}
    )
    dense = detect_frame(full, time_column="t", value_column="v", rule=rule)
    assert out["score"].iloc[-1] == dense["score"].iloc[-1]
