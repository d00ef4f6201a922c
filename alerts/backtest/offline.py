"""Offline detection over a historical count series, causally (no look-ahead).

The same detector code as the live service (:func:`alerts.engine.build_detector`
and :class:`~alerts.hysteresis.Hysteresis`), fed one bucket at a time in time
order: the score and decision of a row depend only on that row and earlier
ones. Rows are summed into regular buckets (gaps become zero-count buckets, so
"nothing happened" counts as data); the output has one row per bucket.

>>> import pandas as pd
>>> from alerts.rules import parse_rules
>>> rule = parse_rules("rules: [{name: r, series: {kind: all}, detectors: [count],"
...                    " min_history: 30m, hold: 1m}]").rules[0]
>>> times = pd.date_range("2026-01-05", periods=90, freq="min", tz="UTC")
>>> counts = [1] * 80 + [12] * 10
>>> out = detect_frame(pd.DataFrame({"t": times, "neg": counts}), time_column="t",
...                    value_column="neg", rule=rule)
>>> out["decision"].iloc[:80].any(), out["decision"].iloc[-5:].all()
(np.False_, np.True_)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from alerts.detectors import SeriesFrame
from alerts.engine import build_detector
from alerts.exceptions import InputError
from alerts.hysteresis import Hysteresis
from alerts.rules import Rule

__all__ = ["DetectSummary", "detect_csv", "detect_frame"]


@dataclass(frozen=True)
class DetectSummary:
    """What an offline run found."""

    buckets: int
    firing_buckets: int
    alerts: int  # rising edges of the decision


def _regular(
    df: pd.DataFrame, time_column: str, value_column: str, total_column: str | None, bucket_s: int
) -> pd.DataFrame:
    for col in (time_column, value_column, total_column):
        if col is not None and col not in df.columns:
            raise InputError(f"column {col!r} is not in the input (have: {', '.join(df.columns)})")
    try:
        times = pd.to_datetime(df[time_column], utc=True)
    except (ValueError, TypeError) as exc:
        raise InputError(f"column {time_column!r} has values that are not times: {exc}") from exc
    cols = [value_column] + ([total_column] if total_column else [])
    values = df[cols].apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any() or (values < 0).any().any():
        raise InputError(f"columns {cols} must hold non-negative numbers on every row")
    frame = values.set_index(times).sort_index()
    return frame.resample(f"{bucket_s}s").sum()


def _infer_bucket_s(df: pd.DataFrame, time_column: str) -> int:
    times = pd.to_datetime(df[time_column], utc=True).sort_values()
    deltas = times.diff().dropna().dt.total_seconds()
    deltas = deltas[deltas > 0]
    if deltas.empty:
        raise InputError("need at least two distinct times to infer the bucket; pass --bucket")
    return int(deltas.mode().iloc[0])  # the regular step; gaps are longer


def detect_frame(
    df: pd.DataFrame,
    *,
    time_column: str,
    value_column: str,
    rule: Rule,
    total_column: str | None = None,
    bucket_s: int | None = None,
) -> pd.DataFrame:
    """Score every bucket of ``df`` causally; columns: time, value[, total], score per
    detector, ``score``, ``decision`` (bool) and ``state`` (firing/resolved/empty)."""
    if time_column not in df.columns:
        raise InputError(f"column {time_column!r} is not in the input")
    bucket_s = bucket_s or _infer_bucket_s(df, time_column)
    series = _regular(df, time_column, value_column, total_column, bucket_s)
    detectors = [d for d in rule.detectors if total_column or d != "share"]
    if not detectors:
        raise InputError("the share detector needs --total-column; or use a count rule")
    rule = rule.model_copy(update={"detectors": detectors})
    if rule.window_s % bucket_s:
        rule = rule.model_copy(update={"window_s": max(1, rule.window_s // bucket_s) * bucket_s})
    det = build_detector(rule, bucket_s=bucket_s, seasonal=True)
    hyst = Hysteresis(
        threshold=rule.threshold,
        hold_buckets=-(-rule.hold_s // bucket_s),
        clear_buckets=-(-rule.clear_s // bucket_s),
    )
    neg = series[value_column].to_numpy(dtype=np.float64)
    tot = series[total_column].to_numpy(dtype=np.float64) if total_column else neg
    starts = (series.index.asi8 // 10**9).astype(np.int64)
    rows: dict[str, list[float]] = {f"score_{d}": [] for d in detectors}
    rows |= {"score": [], "decision": [], "fired": [], "resolved": []}
    for i in range(len(series)):
        det.update(SeriesFrame.of(start_s=int(starts[i]), total=[tot[i]], negative=[neg[i]]))
        for name, s in det.scores().items():
            rows[f"score_{name}"].append(float(s[0]))
        score = det.score()
        window_neg = _window_negative(det.get())
        hyst.update(score, np.array([window_neg >= rule.min_negative]))
        rows["score"].append(float(score[0]))
        rows["decision"].append(bool(hyst.active[0]))
        rows["fired"].append(bool(hyst.fired[0]))
        rows["resolved"].append(bool(hyst.resolved[0]))
    out = series.reset_index(names=time_column)
    for name, values in rows.items():
        if name not in ("fired", "resolved"):
            out[name] = values
    out["state"] = np.where(rows["fired"], "firing", np.where(rows["resolved"], "resolved", ""))
    return out


def _window_negative(stats: dict[str, object]) -> float:
    count = stats.get("count")
    if isinstance(count, dict):
        return float(count["observed"][0])
    share = stats.get("share")
    if isinstance(share, dict):
        return float(np.nan_to_num(share["observed"][0]) * share["volume"][0])
    return float("inf")


def detect_csv(
    input_path: Path,
    output_path: Path,
    *,
    time_column: str,
    value_column: str,
    rule: Rule,
    total_column: str | None = None,
    bucket_s: int | None = None,
) -> DetectSummary:
    """Run :func:`detect_frame` on a CSV file and write the scored CSV."""
    try:
        df = pd.read_csv(input_path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{input_path}: cannot read CSV: {exc}") from exc
    out = detect_frame(
        df,
        time_column=time_column,
        value_column=value_column,
        rule=rule,
        total_column=total_column,
        bucket_s=bucket_s,
    )
    try:
        out.to_csv(output_path, index=False)
    except OSError as exc:
        raise InputError(f"{output_path}: cannot write: {exc}") from exc
    return DetectSummary(
        buckets=len(out),
        firing_buckets=int(out["decision"].sum()),
        alerts=int((out["state"] == "firing").sum()),
    )
