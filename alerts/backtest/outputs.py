"""Write a backtest's results: timeline, per-rule counts, metrics and the threshold sweep.

Files under the output directory (all deterministic: sorted keys, fixed
float formatting, no wall-clock times, LF line endings):

* ``alerts.csv`` / ``alerts.json`` -- every alert transition in event-time order;
* ``rule_counts.csv`` -- firing/updated/resolved counts and alerted series per rule;
* ``metrics.csv`` -- precision, recall, mean delay, false alarms/day per rule
  (only with labels);
* ``sweep.csv`` -- the same metrics per rule and threshold;
* ``summary.json`` -- input size, time range and configuration.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alerts.backtest.core import BacktestResult
from alerts.backtest.evaluate import RuleMetrics

__all__ = ["write_outputs"]

_ALERT_COLUMNS = (
    "rule",
    "key",
    "series_kind",
    "series",
    "state",
    "severity",
    "score",
    "observed",
    "baseline",
    "window_start",
    "window_end",
    "started_at",
    "updated_at",
    "resolved_at",
    "summary",
    "evidence_ids",
)
_METRIC_COLUMNS = tuple(RuleMetrics.__dataclass_fields__)


def _fmt(value: Any) -> str:
    """One CSV cell: floats with 6 significant digits, NaN empty, times ISO-8601 UTC."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_fmt(v) for v in row] for row in rows)
    _atomic(path, buf.getvalue())


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _write_json(path: Path, data: Any) -> None:
    _atomic(path, json.dumps(_json_safe(data), indent=1, sort_keys=True) + "\n")


def _alert_rows(result: BacktestResult) -> list[list[Any]]:
    rows = []
    for a in result.alerts:
        rows.append(
            [
                a.rule,
                a.key,
                a.series_kind,
                a.series,
                a.state,
                a.severity,
                a.score,
                a.observed,
                a.baseline,
                a.window_start,
                a.window_end,
                a.started_at,
                a.updated_at,
                a.resolved_at,
                a.summary,
                ";".join(e.id for e in a.evidence),
            ]
        )
    return rows


def _counts(result: BacktestResult) -> list[list[Any]]:
    rows = []
    for rule in result.rules.rules:
        mine = [a for a in result.alerts if a.rule == rule.name]
        by_state = {
            s: sum(1 for a in mine if a.state == s) for s in ("firing", "updated", "resolved")
        }
        series = len({a.key for a in mine})
        rows.append(
            [rule.name, by_state["firing"], by_state["updated"], by_state["resolved"], series]
        )
    return rows


def write_outputs(result: BacktestResult, out_dir: Path) -> list[Path]:
    """Write every output file; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "alerts.csv", out / "alerts.json", out / "rule_counts.csv", out / "summary.json"]
    _write_csv(paths[0], _ALERT_COLUMNS, _alert_rows(result))
    _write_json(paths[1], [a.model_dump(mode="json") for a in result.alerts])
    _write_csv(
        paths[2], ("rule", "firing", "updated", "resolved", "series_alerted"), _counts(result)
    )
    _write_json(paths[3], _summary(result))
    if result.events:
        paths += [out / "metrics.csv", out / "sweep.csv"]
        metrics = [[r.name, *result.metrics(r).row().values()] for r in result.rules.rules]
        _write_csv(paths[-2], ("rule", *_METRIC_COLUMNS), metrics)
        sweep = [
            [r.name, t, *m.row().values()] for r in result.rules.rules for t, m in result.sweep(r)
        ]
        _write_csv(paths[-1], ("rule", "threshold", *_METRIC_COLUMNS), sweep)
    return paths


def _summary(result: BacktestResult) -> dict[str, Any]:
    def iso(ts: int | None) -> str | None:
        return None if ts is None else _fmt(datetime.fromtimestamp(ts, tz=UTC))

    return {
        "documents": result.documents,
        "duplicates_dropped": result.duplicates,
        "buckets": result.buckets,
        "series": len(result.series),
        "from": iso(result.first_bucket_s),
        "to": iso(result.end_s),
        "days": round(result.days, 6),
        "alerts": len(result.alerts),
        "labeled_events": len(result.events),
        "config": asdict(result.config),
        "rules": [r.model_dump(mode="json", by_alias=False) for r in result.rules.rules],
    }
