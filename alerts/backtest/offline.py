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
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from alerts.detectors import SeriesFrame
from alerts.engine import build_detector
from alerts.exceptions import InputError
from alerts.hysteresis import Hysteresis
from alerts.rules import Rule

__all__ = ["DetectSummary", "detect_csv", "detect_frame", "detect_matrix"]

FloatArray = NDArray[np.float64]


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


def detect_matrix(
    values: FloatArray,
    starts_s: NDArray[np.int64],
    *,
    rule: Rule,
    bucket_s: int,
    totals: FloatArray | None = None,
) -> dict[str, FloatArray]:
    """Run ``rule``'s detectors and hysteresis causally over regular buckets.

    ``values`` (and ``totals``) have shape ``(buckets, series)``: many series run at
    once, exactly as the live engine runs them. Returns arrays of that shape:
    ``score_<detector>``, ``score``, ``decision``, ``fired`` and ``resolved``.
    """
    det = build_detector(rule, bucket_s=bucket_s, seasonal=True)
    hyst = Hysteresis(
        threshold=rule.threshold,
        hold_buckets=-(-rule.hold_s // bucket_s),
        clear_buckets=-(-rule.clear_s // bucket_s),
    )
    tot = values if totals is None else totals
    shape = values.shape
    out = {f"score_{d}": np.zeros(shape) for d in det.detectors}
    out |= {k: np.zeros(shape) for k in ("score", "decision", "fired", "resolved")}
    for i in range(shape[0]):
        det.update(SeriesFrame(int(starts_s[i]), tot[i], values[i]))
        for name, s in det.scores().items():
            out[f"score_{name}"][i] = s
        score = det.score()
        hyst.update(score, _window_negative(det.get(), shape[1]) >= rule.min_negative)
        out["score"][i] = score
        out["decision"][i] = hyst.active
        out["fired"][i] = hyst.fired
        out["resolved"][i] = hyst.resolved
    return out


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
    neg = series[value_column].to_numpy(dtype=np.float64)[:, None]
    tot = series[total_column].to_numpy(dtype=np.float64)[:, None] if total_column else None
    starts = (series.index.asi8 // 10**9).astype(np.int64)
    res = detect_matrix(neg, starts, rule=rule, bucket_s=bucket_s, totals=tot)
    out = series.reset_index(names=time_column)
    for name, values in res.items():
        if name not in ("fired", "resolved"):
            out[name] = values[:, 0]
    out["decision"] = out["decision"].astype(bool)
    fired, resolved = res["fired"][:, 0] > 0, res["resolved"][:, 0] > 0
    out["state"] = np.where(fired, "firing", np.where(resolved, "resolved", ""))
    return out


def _window_negative(stats: dict[str, Any], n: int) -> FloatArray:
    count = stats.get("count")
    if isinstance(count, dict):
        return np.asarray(count["observed"])
    share = stats.get("share")
    if isinstance(share, dict):
        return np.asarray(np.nan_to_num(share["observed"]) * share["volume"])
    return np.full(n, np.inf)


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
