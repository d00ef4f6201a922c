"""The HTML report: self-contained, every figure embedded, rendered by headless Chromium."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pytest

from alerts.backtest.core import BacktestResult
from alerts.backtest.report import write_report


@pytest.fixture(scope="module")
def result(backtest_result: BacktestResult) -> BacktestResult:
    return backtest_result


@pytest.fixture(scope="module")
def report(result: BacktestResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(result, tmp_path_factory.mktemp("report"), title="planted bursts")


def test_report_is_self_contained_with_every_figure(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    pngs = sorted((report.parent / "figures").glob("*.png"))
    names = {p.name for p in pngs}
    # A sweep curve for the rule whose series carry labeled events (the topic rule has
    # none: the page says so); per ticker with a planted burst a series figure.
    assert "neg-ticker__sweep.png" in names and "neg-topic__sweep.png" not in names
    assert "No labeled event is on a series this rule watches" in page
    assert {f"neg-ticker__ticker_{t}.png" for t in ("T002", "T003", "T004")} <= names
    assert page.count('src="data:image/png;base64,') == len(pngs)
    assert not re.search(r'src="(?!data:)', page) and "<link" not in page, "no external assets"
    assert "threshold sweep" in page and "false alarms/day" in page


def test_report_shows_each_firings_headlines_and_the_score_against_the_threshold(
    result: BacktestResult, report: Path
) -> None:
    page = report.read_text(encoding="utf-8")
    fired = [a for a in result.alerts if a.rule == "neg-ticker" and a.state == "firing"]
    assert fired and all(a.evidence for a in fired)
    for a in fired:  # every firing on a plotted series lists the headlines it carried
        if a.series in ("T002", "T003", "T004"):
            assert f"score {a.score:.2f}: " in page
            assert all(html.escape(e.title) in page for e in a.evidence)
    assert "T002 shares slide" in page
    # The trace: the rule's detector score per plot point, crossing the threshold
    # around each planted burst.
    plots = result.plots["neg-ticker"]
    score = plots.matrix("score", len(result.series))
    assert score.shape == (len(plots.start_s), len(result.series))
    row = result.series.index(("ticker", "T002"))
    assert np.nanmax(score[:, row]) >= 0.5 > np.nanmin(score[:, row])


def test_zoom_panel_stays_within_the_history_and_legends_sit_beside_the_plots(
    result: BacktestResult,
) -> None:
    from alerts.backtest.report import _series_figure

    rule = next(r for r in result.rules.rules if r.name == "neg-ticker")
    fig = _series_figure(result, rule, ("ticker", "T002"))
    plots = result.plots["neg-ticker"]
    first, last = plots.start_s[0], plots.start_s[-1] + result.config.bucket_s
    zoom = fig.axes[3]
    lo, hi = (mdates.num2date(x).timestamp() for x in zoom.get_xlim())
    assert first <= lo < hi <= last
    for ax in fig.axes:
        anchor = ax.get_legend().get_bbox_to_anchor().transformed(ax.transAxes.inverted())
        assert anchor.x0 >= 1.0  # the legend starts right of the axes: it hides no data
    plt.close(fig)


def test_report_bytes_are_deterministic(
    result: BacktestResult, report: Path, tmp_path: Path
) -> None:
    again = write_report(result, tmp_path, title="planted bursts")
    assert again.read_bytes() == report.read_bytes()


@pytest.mark.integration
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    shot = tmp_path / "report.png"
    profile = tempfile.mkdtemp(prefix="chromium-")
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", f"--screenshot={shot}",
        "--window-size=1280,2000", report.as_uri(),
    ]  # fmt: skip
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A blank page is a few kB; the report's text, tables and plots are far larger.
    assert shot.stat().st_size > 100_000
