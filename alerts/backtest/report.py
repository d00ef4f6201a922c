"""The backtest report: one self-contained HTML file plus its figures as PNGs.

Per rule: the metrics at the rule's threshold, the threshold sweep (table and
precision/recall curve), alert counts, the first firings, and per watched
series with labeled events or alerts (at most ``max_series``) a two-panel
figure: the window negative count against the expected count with its band,
and the negative share against the baseline share; firing alerts are
markers, labeled events shaded spans. Images are embedded as base64 PNGs, so
the HTML needs no other file; the same PNGs are written to ``figures/``.
Matplotlib runs with the Agg backend; output bytes are deterministic.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from alerts.backtest.core import BacktestResult
from alerts.backtest.evaluate import RuleMetrics, events_for
from alerts.rules import Rule
from alerts.view import evidence_html
from stream.contracts.schemas import Alert

__all__ = ["write_report"]

_TEMPLATE = Path(__file__).with_name("report_template.html")
_PNG_META = {"Software": None}
plt.rcParams.update({"font.size": 10, "axes.titlesize": 12, "figure.dpi": 100})


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata=_PNG_META)
    plt.close(fig)
    return buf.getvalue()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80]


def _series_to_plot(result: BacktestResult, rule: Rule, max_series: int) -> list[tuple[str, str]]:
    labeled = sorted({(e.kind, e.value) for e in events_for(rule, result.events)})
    fired: dict[tuple[str, str], int] = {}
    for a in result.alerts:
        if a.rule == rule.name and a.state == "firing":
            key = (a.series_kind, a.series)
            fired[key] = fired.get(key, 0) + 1
    by_count = sorted(fired, key=lambda k: (-fired[k], k))
    picked = list(dict.fromkeys([*labeled, *by_count]))
    known = set(result.series)
    return [k for k in picked if k in known][:max_series]


def _count_panel(ax: Any, times: list[datetime], obs: np.ndarray, exp: np.ndarray) -> None:
    ax.step(times, obs, where="post", color="#c0392b", lw=1.2, label="window negatives")
    if not np.isnan(exp).all():
        sd = np.sqrt(np.maximum(exp, 0))
        ax.plot(times, exp, color="#2c3e50", lw=1.0, label="expected")
        ax.fill_between(
            times, np.maximum(exp - 2 * sd, 0), exp + 2 * sd,
            color="#95a5a6", alpha=0.35, lw=0, label="baseline band",
        )  # fmt: skip
    ax.set_ylabel("negative docs / window")


def _share_panel(
    ax: Any, times: list[datetime], share: np.ndarray, base: np.ndarray, vol: np.ndarray, rule: Rule
) -> None:
    enough = np.nan_to_num(vol) >= rule.min_volume  # the share test ignores thinner windows
    label = f"negative share (windows of {rule.min_volume}+ docs)"
    ax.plot(times, np.where(enough, share, np.nan), color="#c0392b", lw=1.0, label=label)
    if not np.isnan(base).all():
        with np.errstate(all="ignore"):
            # The band of a window of the test's minimum volume, so it stays continuous.
            sd = np.sqrt(base * (1 - base) / np.maximum(np.nan_to_num(vol), rule.min_volume))
        ax.plot(times, base, color="#2c3e50", lw=1.0, label="baseline share")
        ax.fill_between(
            times, np.clip(base - 2 * sd, 0, 1), np.clip(base + 2 * sd, 0, 1),
            color="#95a5a6", alpha=0.35, lw=0, label="baseline band",
        )  # fmt: skip
    ax.set_ylabel("negative share")
    ax.set_ylim(0, 1)


def _focus_s(result: BacktestResult, rule: Rule, key: tuple[str, str]) -> int | None:
    """When the zoom panel is centred: the first labeled event, else the first firing."""
    starts = [e.start_s for e in events_for(rule, result.events) if (e.kind, e.value) == key]
    starts += [
        int(a.started_at.timestamp())
        for a in result.alerts
        if a.rule == rule.name and (a.series_kind, a.series) == key and a.state == "firing"
    ]
    return min(starts) if starts else None


def _score_panel(ax: Any, times: list[datetime], score: np.ndarray, rule: Rule) -> None:
    ax.step(times, score, where="post", color="#8e44ad", lw=1.2, label="detector score")
    ax.axhline(
        rule.threshold, color="#c0392b", ls="--", lw=1, label=f"threshold {rule.threshold:g}"
    )
    ax.fill_between(
        times, rule.threshold, score, where=np.nan_to_num(score) >= rule.threshold,
        step="post", color="#e74c3c", alpha=0.2, lw=0, label="above threshold",
    )  # fmt: skip
    ax.set_ylabel("score")
    ax.set_ylim(0, 1.08)


def _zoom(ax: Any, plots: Any, obs: np.ndarray, focus: int, bucket_s: int) -> None:
    """4 h either side of ``focus``, cut to the history, the peak under the legend-free top."""
    first, last = plots.start_s[0], plots.start_s[-1] + bucket_s
    lo, hi = max(focus - 4 * 3600, first), min(focus + 4 * 3600, last)
    ax.set_xlim(mdates.date2num(_dt(lo)), mdates.date2num(_dt(hi)))
    inside = [o for t, o in zip(plots.start_s, obs, strict=True) if lo <= t <= hi]
    top = np.nanmax(inside) if inside and not np.isnan(inside).all() else 1.0
    ax.set_ylim(0, max(1.0, float(top)) * 1.15)  # room for the alert markers at 1.05
    span = f"{(focus - lo) / 3600:.3g} h before, {(hi - focus) / 3600:.3g} h after"
    ax.set_title(f"zoom on the first event or firing ({span}, within the history)", fontsize=10)


def _series_figure(result: BacktestResult, rule: Rule, key: tuple[str, str]) -> Figure:
    row = result.series.index(key)
    plots = result.plots[rule.name]
    n = len(result.series)
    times = [_dt(t) for t in plots.start_s]
    obs, exp = plots.matrix("observed", n)[:, row], plots.matrix("expected", n)[:, row]
    share, base = plots.matrix("share", n)[:, row], plots.matrix("baseline_share", n)[:, row]
    vol = plots.matrix("volume", n)[:, row]
    score = plots.matrix("score", n)[:, row]
    fig = plt.figure(figsize=(11, 10.5), layout="constrained")
    ax1 = fig.add_subplot(4, 1, 1)
    ax2 = fig.add_subplot(4, 1, 2, sharex=ax1)
    ax3 = fig.add_subplot(4, 1, 3, sharex=ax1)
    ax4 = fig.add_subplot(4, 1, 4)
    _count_panel(ax1, times, obs, exp)
    _share_panel(ax2, times, share, base, vol, rule)
    _score_panel(ax3, times, score, rule)
    _count_panel(ax4, times, obs, exp)
    _mark(ax1, ax2, result, rule, key, times, obs)
    _mark(ax3, None, result, rule, key, times, np.ones(1))  # markers at 1.05 of the score
    _mark(ax4, None, result, rule, key, times, obs)
    focus = _focus_s(result, rule, key)
    if focus is not None and plots.start_s:
        _zoom(ax4, plots, obs, focus, result.config.bucket_s)
    ax1.set_title(f"{rule.name}: {key[0]} {key[1]}")
    for ax in (ax1, ax2, ax3, ax4):
        ax.grid(alpha=0.3)
        # Beside the plot, never over it: a legend inside hid the peak it explains.
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    return fig


def _mark(
    ax1: Any,
    ax2: Any | None,
    result: BacktestResult,
    rule: Rule,
    key: tuple[str, str],
    times: list[datetime],
    obs: np.ndarray,
) -> None:
    for i, e in enumerate(
        ev for ev in events_for(rule, result.events) if (ev.kind, ev.value) == key
    ):
        for ax in (ax1, ax2) if ax2 is not None else (ax1,):
            ax.axvspan(
                _dt(e.start_s),
                _dt(e.end_s),
                color="#f39c12",
                alpha=0.25,
                lw=0,
                label="labeled event" if i == 0 and ax is ax1 else None,
            )
    top = float(np.nanmax(obs)) if times and not np.isnan(obs).all() else 1.0
    for state, marker, color in (("firing", "^", "#e74c3c"), ("resolved", "v", "#27ae60")):
        at = [
            (a.resolved_at or a.updated_at) if state == "resolved" else a.started_at
            for a in result.alerts
            if a.rule == rule.name and (a.series_kind, a.series) == key and a.state == state
        ]
        if at:
            ax1.scatter(
                at,
                [top * 1.05] * len(at),
                marker=marker,
                color=color,
                s=60,
                zorder=5,
                label=f"{state} alert",
            )


def _sweep_figure(rule: Rule, sweep: Sequence[tuple[float, RuleMetrics]]) -> Figure:
    th = [t for t, _ in sweep]
    fig, ax = plt.subplots(figsize=(7.5, 4), layout="constrained")
    ax.plot(th, [m.precision for _, m in sweep], "o-", color="#2980b9", label="precision")
    ax.plot(th, [m.recall for _, m in sweep], "s-", color="#c0392b", label="recall")
    ax.axvline(
        rule.threshold, color="#7f8c8d", ls="--", lw=1, label=f"rule threshold {rule.threshold:g}"
    )
    ax.set_xlabel("threshold (detector score)")
    ax.set_ylabel("precision / recall")
    ax.set_ylim(-0.02, 1.05)
    ax.set_title(f"{rule.name}: threshold sweep")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=9)
    return fig


def _num(v: float | int) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return str(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    text = {i for r in rows for i, v in enumerate(r) if isinstance(v, str)}
    th = "".join(
        f'<th class="{"l" if i < left or i in text else ""}">{html.escape(h)}</th>'
        for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>" + "".join(_cell(i, v, left) for i, v in enumerate(r)) + "</tr>" for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def _cell(i: int, v: Any, left: int) -> str:
    text = v if isinstance(v, str) else _num(v)
    cls = "l" if i < left or isinstance(v, str) else ""
    return f'<td class="{cls}">{html.escape(text)}</td>'


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


_METRIC_HEAD = (
    "alerts",
    "events",
    "detected",
    "precision",
    "recall",
    "mean delay (s)",
    "false alarms",
    "false alarms/day",
)


def _rule_section(result: BacktestResult, rule: Rule, fig_dir: Path, max_series: int) -> str:
    parts = [f"<h2>Rule {html.escape(rule.name)}</h2>"]
    about = (
        f"{rule.description or ''} Series: {rule.series.kind} {', '.join(rule.series.values)}; "
        f"detectors {', '.join(rule.detectors)} ({rule.combine}); window {rule.window_s}s; "
        f"threshold {rule.threshold:g}."
    )
    parts.append(f'<p class="muted">{html.escape(about)}</p>')
    mine = [a for a in result.alerts if a.rule == rule.name]
    counts = [sum(1 for a in mine if a.state == s) for s in ("firing", "updated", "resolved")]
    parts.append(
        _table(
            ("", "firing", "updated", "resolved", "series alerted"),
            [("alerts", *counts, len({a.key for a in mine}))],
        )
    )
    if result.events and not events_for(rule, result.events):
        parts.append(
            '<p class="note">No labeled event is on a series this rule watches: precision, '
            "recall and the threshold sweep are not defined for it.</p>"
        )
    elif result.events:
        m = result.metrics(rule)
        parts.append("<h3>Against the labeled events</h3>")
        parts.append(_table(("", *_METRIC_HEAD), [("at the rule threshold", *m.row().values())]))
        sweep = result.sweep(rule)
        parts.append(
            _table(
                ("threshold", *_METRIC_HEAD), [(f"{t:g}", *mm.row().values()) for t, mm in sweep]
            )
        )
        png = _png(_sweep_figure(rule, sweep))
        (fig_dir / f"{_slug(rule.name)}__sweep.png").write_bytes(png)
        parts.append(_img(png, f"{rule.name} threshold sweep"))
    firings = [a for a in mine if a.state == "firing"][:25]
    if firings:
        parts.append("<h3>First firings</h3>")
        rows = [
            (
                a.started_at.strftime("%Y-%m-%d %H:%M"),
                f"{a.series_kind}:{a.series}",
                a.score,
                a.observed,
                a.summary,
            )
            for a in firings
        ]
        parts.append(
            _table(("fired at (UTC)", "series", "score", "negatives", "summary"), rows, left=2)
        )
    for key in _series_to_plot(result, rule, max_series):
        png = _png(_series_figure(result, rule, key))
        (fig_dir / f"{_slug(rule.name)}__{_slug(key[0] + '_' + key[1])}.png").write_bytes(png)
        parts.append(f"<h3>{html.escape(key[0])} {html.escape(key[1])}</h3>")
        parts.append(_img(png, f"{rule.name} {key[0]} {key[1]}"))
        parts.append(_evidence_section(rule, key, mine))
    return "\n".join(parts)


def _evidence_section(rule: Rule, key: tuple[str, str], alerts: Sequence[Alert]) -> str:
    """The headlines that drove each firing on ``key`` (the evidence the alert carried)."""
    firings = [a for a in alerts if (a.series_kind, a.series) == key and a.state == "firing"]
    if not firings:
        return (
            '<p class="muted">No alert fired on this series: the detector score panel shows '
            f"how close it came to the threshold {rule.threshold:g}.</p>"
        )
    out = []
    for a in firings[:_MAX_FIRINGS_SHOWN]:
        when = a.started_at.strftime("%Y-%m-%d %H:%M UTC")
        head = f"Fired {when}, score {a.score:.2f}: {a.summary}"
        items = "".join(evidence_html(e) for e in a.evidence)
        body = f"<ol>{items}</ol>" if items else '<p class="muted">no evidence kept</p>'
        out.append(f'<div class="evidence"><p>{html.escape(head)}</p>{body}</div>')
    if len(firings) > _MAX_FIRINGS_SHOWN:
        more = len(firings) - _MAX_FIRINGS_SHOWN
        out.append(f'<p class="muted">{more} later firings: see alerts.json.</p>')
    return "\n".join(out)


#: Firings per series whose headlines the report lists (all are in alerts.json).
_MAX_FIRINGS_SHOWN = 5


def write_report(
    result: BacktestResult, out_dir: Path, *, title: str = "", max_series: int = 8
) -> Path:
    """Write ``report.html`` and ``figures/*.png`` under ``out_dir``; returns the HTML path."""
    out = Path(out_dir)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)

    def iso(ts: int | None) -> str:
        return "–" if ts is None else _dt(ts).strftime("%Y-%m-%d %H:%M UTC")

    summary = {
        "from": iso(result.first_bucket_s),
        "to": iso(result.end_s),
        "documents": f"{result.documents:,}",
        "buckets": f"{result.buckets:,} × {result.config.bucket_s}s",
        "series": f"{len(result.series):,}",
        "alert events": f"{len(result.alerts):,}",
        "labeled events": f"{len(result.events):,}",
        "rules": f"{len(result.rules.rules)}",
    }
    sections = [_rule_section(result, r, fig_dir, max_series) for r in result.rules.rules]
    page = Template(_TEMPLATE.read_text(encoding="utf-8")).substitute(
        title=html.escape(title or "alert rules"),
        subtitle=html.escape(title or "Alert rules replayed on history"),
        summary="".join(
            f"<div><b>{html.escape(k)}</b> {html.escape(v)}</div>" for k, v in summary.items()
        ),
        sections="\n".join(sections),
    )
    path = out / "report.html"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8", newline="\n")
    tmp.replace(path)
    return path
