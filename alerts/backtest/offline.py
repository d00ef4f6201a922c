"""Offline detection over a historical series, causally (no look-ahead).

The same detector code as the live service (:func:`alerts.engine.build_detector`
and :class:`~alerts.hysteresis.Hysteresis`), fed one bucket at a time in time
order: the score and decision of a row depend only on that row and earlier
ones. Counts are summed into regular buckets (gaps become zero-count buckets,
so "nothing happened" counts as data); real values (a signed net-sentiment
index) are averaged per bucket. The output has one row per input row, in input
order, with the input's own columns and timestamps.

>>> import pandas as pd
>>> from alerts.rules import parse_rules
>>> rule = parse_rules("rules: [{name: r, series: {kind: all}, detectors: [surge],"
...                    " window: 1m, min_history: 30m, hold: 1m}]").rules[0]
>>> times = pd.date_range("2026-01-05", periods=90, freq="min", tz="UTC")
>>> counts = [3, 5, 4, 6] * 20 + [40] * 10
>>> out = detect_frame(pd.DataFrame({"t": times, "neg": counts}), time_column="t",
...                    value_column="neg", rule=rule)
>>> len(out), out["decision"].iloc[:80].any(), out["decision"].iloc[-5:].all()
(90, np.False_, np.True_)
>>> out["score"].iloc[80] > 0.5 > out["score"].iloc[85]  # highest at the onset
np.True_
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from alerts.detectors import SeriesFrame
from alerts.engine import build_detector
from alerts.exceptions import InputError
from alerts.hysteresis import Hysteresis
from alerts.rules import Rule

__all__ = [
    "DetectSummary",
    "ValueKind",
    "detect_csv",
    "detect_frame",
    "detect_matrix",
    "resolve_value_kind",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class DetectSummary:
    """What an offline run found."""

    rows: int
    firing_rows: int
    alerts: int  # rising edges of the decision


ValueKind = Literal["count", "real", "auto"]


def _read(
    df: pd.DataFrame, time_column: str, value_column: str, total_column: str | None
) -> tuple[pd.Series, pd.DataFrame]:
    """The input's times (UTC) and numeric value columns, validated."""
    for col in (time_column, value_column, total_column):
        if col is not None and col not in df.columns:
            raise InputError(f"column {col!r} is not in the input (have: {', '.join(df.columns)})")
    try:
        times = pd.to_datetime(df[time_column], utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise InputError(f"column {time_column!r} has values that are not times: {exc}") from exc
    cols = [value_column] + ([total_column] if total_column else [])
    values = df[cols].apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any():
        raise InputError(f"columns {cols} must hold numbers on every row")
    return times, values


def resolve_value_kind(values: pd.Series, kind: ValueKind) -> Literal["count", "real"]:
    """``auto``: counts when every value is a non-negative integer, else real values.

    >>> resolve_value_kind(pd.Series([0, 3, 1]), "auto")
    'count'
    >>> resolve_value_kind(pd.Series([-0.2, 0.1]), "auto")
    'real'
    """
    counts = bool((values >= 0).all() and (values == values.round()).all())
    if kind == "auto":
        return "count" if counts else "real"
    if kind == "count" and not (values >= 0).all():
        raise InputError(
            "negative values are not counts: use --value-kind real (or auto) for a signed series"
        )
    return kind


def _infer_bucket_s(df: pd.DataFrame, time_column: str) -> int:
    times = pd.to_datetime(df[time_column], utc=True, format="mixed").sort_values()
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
    real_values: FloatArray | None = None,
) -> dict[str, FloatArray]:
    """Run ``rule``'s detectors and hysteresis causally over regular buckets.

    ``values`` (and ``totals``) have shape ``(buckets, series)``: many series run at
    once, exactly as the live engine runs them. Returns arrays of that shape:
    ``score_<detector>``, ``score``, ``decision``, ``fired`` and ``resolved``.
    ``real_values`` feed real-valued detectors (``robust``; NaN = no value); the
    count guard ``min_negative`` does not apply to them.
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
        real = None if real_values is None else real_values[i]
        det.update(SeriesFrame(int(starts_s[i]), tot[i], values[i], None, real))
        for name, s in det.scores().items():
            out[f"score_{name}"][i] = s
        guard = (
            True if real is not None else _window_negative(det.get(), shape[1]) >= rule.min_negative
        )
        hyst.update(det.sustained(), np.broadcast_to(guard, (shape[1],)))
        out["score"][i] = det.score()
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
    value_kind: ValueKind = "count",
) -> pd.DataFrame:
    """Score ``df`` causally: one output row per input row, in input order.

    Rows are gathered into regular buckets internally (counts are summed, gaps are
    zero-count buckets; real values are averaged, gaps carry no value); every row
    gets its bucket's results: a score per detector, ``score`` (in [0, 1]; 0 while
    the detectors warm up), ``decision`` (bool) and ``state`` (``firing`` /
    ``resolved`` on the first row of the bucket where it changed, else empty).
    A real-valued series (``value_kind`` real, or auto on signed/fractional
    values) runs the ``robust`` detector with the rule's lifecycle.
    """
    if time_column not in df.columns:
        raise InputError(f"column {time_column!r} is not in the input")
    times, values = _read(df, time_column, value_column, total_column)
    kind = resolve_value_kind(values[value_column], value_kind)
    if total_column is not None and kind == "count" and (values[total_column] < 0).any():
        raise InputError(f"column {total_column!r} must hold non-negative counts")
    bucket_s = bucket_s or _infer_bucket_s(df, time_column)
    if kind == "real":
        detectors = ["robust"]
    else:
        detectors = [d for d in rule.detectors if d != "robust" and (total_column or d != "share")]
    if not detectors:
        raise InputError("the share detector needs --total-column; or use a count rule")
    rule = rule.model_copy(update={"detectors": detectors})
    if rule.window_s % bucket_s:
        rule = rule.model_copy(update={"window_s": max(1, rule.window_s // bucket_s) * bucket_s})
    epoch_s = ((times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy()
    origin = int(epoch_s.min()) // bucket_s * bucket_s
    slot = (epoch_s - origin) // bucket_s
    n_buckets = int(slot.max()) + 1
    starts = origin + np.arange(n_buckets, dtype=np.int64) * bucket_s
    vals = values[value_column].to_numpy(dtype=np.float64)
    summed = np.bincount(slot, weights=vals, minlength=n_buckets).astype(np.float64)
    if kind == "real":
        per = np.bincount(slot, minlength=n_buckets).astype(np.float64)
        v = np.divide(summed, per, out=np.full(n_buckets, np.nan), where=per > 0)
        res = detect_matrix(
            np.zeros((n_buckets, 1)),
            starts,
            rule=rule,
            bucket_s=bucket_s,
            totals=per[:, None],
            real_values=v[:, None],
        )
    else:
        tot: FloatArray | None = None
        if total_column:
            t = values[total_column].to_numpy(dtype=np.float64)
            tot = np.bincount(slot, weights=t, minlength=n_buckets).astype(np.float64)[:, None]
        res = detect_matrix(summed[:, None], starts, rule=rule, bucket_s=bucket_s, totals=tot)
    out = df.copy()
    for name, arr in res.items():
        if name.startswith("score"):
            out[name] = np.nan_to_num(arr[slot, 0], nan=0.0)
    out["decision"] = res["decision"][slot, 0] > 0
    first = _first_of_bucket(slot)
    fired, resolved = (res["fired"][slot, 0] > 0) & first, (res["resolved"][slot, 0] > 0) & first
    out["state"] = np.where(fired, "firing", np.where(resolved, "resolved", ""))
    return out


def _first_of_bucket(slot: NDArray[np.int64]) -> NDArray[np.bool_]:
    """True on the first input row (in input order) of each bucket."""
    first = np.zeros(slot.shape[0], dtype=bool)
    _, idx = np.unique(slot, return_index=True)
    first[idx] = True
    return first


def _window_negative(stats: dict[str, Any], n: int) -> FloatArray:
    count = stats.get("surge", stats.get("count"))
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
    value_kind: ValueKind = "count",
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
        value_kind=value_kind,
    )
    try:
        out.to_csv(output_path, index=False)
    except OSError as exc:
        raise InputError(f"{output_path}: cannot write: {exc}") from exc
    return DetectSummary(
        rows=len(out),
        firing_rows=int(out["decision"].sum()),
        alerts=int((out["state"] == "firing").sum()),
    )
