"""Backtest alert rules on history with the live engine, deterministically.

The history (archive days or an input file, see :mod:`alerts.backtest.inputs`)
is aggregated into final buckets by the vectorised
:class:`~alerts.backtest.frames.BucketBuilder`; each bucket goes through the
live :class:`~alerts.engine.AlertEngine` (the same detectors, hysteresis and
lifecycle as ``finsentinel alerts``), so time is simulated by the buckets
themselves: no clock, no Kafka, no model inference. Same input, same rules,
same config: the same alerts, byte for byte in the output files.

Alongside the live decision, per rule:

* a threshold sweep replays the recorded scores through the live
  :class:`~alerts.hysteresis.Hysteresis` and
  :class:`~alerts.lifecycle.RuleTracker` at every sweep threshold at once
  (series x thresholds as rows), so precision/recall per threshold cost one
  pass;
* :class:`PlotSeries` keeps the window count, expected count, negative share
  and baseline share per series, downsampled to about ``plot_points`` points,
  for the report.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from alerts.aggregate import FinalBucket
from alerts.backtest.evaluate import Firing, LabeledEvent, RuleMetrics, events_for, score_rule
from alerts.backtest.frames import BucketBuilder
from alerts.engine import AlertEngine
from alerts.hysteresis import Hysteresis
from alerts.lifecycle import Observation, RuleTracker
from alerts.rules import Rule, RulesFile
from alerts.series import SeriesIndex
from stream.contracts.schemas import Alert

__all__ = ["DEFAULT_THRESHOLDS", "Backtest", "BacktestConfig", "BacktestResult", "PlotSeries"]

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class BacktestConfig:
    """How the history is bucketed and scored (the engine's own settings included)."""

    bucket_s: int = 60
    seasonal: bool = True
    top_k: int = 5
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    #: A firing up to this long after an event's end still detects it.
    tolerance_s: int = 1800
    #: Bucket of history per plotted point (1 = every bucket).
    plot_bin_buckets: int = 1
    #: The live engine's memory bound on series (new series past it are not tracked).
    max_series: int = 100_000


class _RecordingHysteresis(Hysteresis):
    """The live hysteresis, remembering the scores and mask of the last bucket."""

    def __init__(self, *, threshold: float, hold_buckets: int, clear_buckets: int) -> None:
        super().__init__(
            threshold=threshold, hold_buckets=hold_buckets, clear_buckets=clear_buckets
        )
        self.last_score: FloatArray = np.zeros(0)
        self.last_mask: NDArray[np.bool_] | None = None

    def update(self, score: FloatArray, mask: NDArray[np.bool_] | None = None) -> Any:
        self.last_score, self.last_mask = score, mask
        return super().update(score, mask)


class _Sweep:
    """The live hysteresis and lifecycle at many thresholds: rows are (series, threshold)."""

    def __init__(
        self, rule: Rule, thresholds: tuple[float, ...], hyst: Hysteresis, index: SeriesIndex
    ):
        self.rule = rule
        self.th = np.asarray(thresholds, dtype=np.float64)
        self.lowest = float(self.th.min())
        self.t = len(thresholds)
        # A 0/1 input against threshold 0.5 reproduces "score >= t_j" for each j.
        self.hyst = Hysteresis(
            threshold=0.5, hold_buckets=hyst.hold_buckets, clear_buckets=hyst.clear_buckets
        )
        self.index = index
        self.tracker = RuleTracker(
            rule,
            key_of=lambda row: index.key(row // self.t),
            labels_of=lambda kind, value: {},
            evidence_of=lambda row, since: [],
        )
        self.firings: list[list[Firing]] = [[] for _ in thresholds]

    def step(self, end_s: int, score: FloatArray, mask: NDArray[np.bool_] | None) -> None:
        s = np.where(np.isnan(score), -1.0, score)  # scores are finite or NaN
        if mask is not None:
            s = np.where(mask, s, -1.0)
        hit = s >= self.lowest
        if not hit.any() and not self.hyst.active.any() and not self.hyst.above.any():
            # Nothing is over the lowest threshold, firing or building up: the update
            # would only count quiet buckets of inactive rows, which never matters.
            return
        cond = (s[:, None] >= self.th[None, :]).ravel().astype(np.float64)
        self.hyst.update(cond)
        n = cond.shape[0]
        before = set(self.tracker.open)
        nan = np.full(n, np.nan)
        rep = np.repeat(np.clip(np.nan_to_num(score), 0.0, 1.0), self.t)
        self.tracker.step(Observation(end_s, self.hyst.active, rep, np.zeros(n), nan, nan, nan))
        for row in sorted(set(self.tracker.open) - before):
            kind, value = self.index.key(row // self.t)
            self.firings[row % self.t].append(Firing(kind, value, end_s))


@dataclass
class PlotSeries:
    """Downsampled per-series statistics of one rule (rows as in the engine's index)."""

    start_s: list[int] = field(default_factory=list)
    observed: list[FloatArray] = field(default_factory=list)  # window negatives (max in bin)
    expected: list[FloatArray] = field(default_factory=list)  # expected negatives (mean)
    share: list[FloatArray] = field(default_factory=list)  # window negative share (max)
    baseline_share: list[FloatArray] = field(default_factory=list)  # (mean)
    volume: list[FloatArray] = field(default_factory=list)  # window documents (mean)
    score: list[FloatArray] = field(default_factory=list)  # combined detector score (max)

    def matrix(self, name: str, n_rows: int) -> FloatArray:
        """``[point, row]`` array of one statistic, NaN where a series did not exist yet."""
        arrays = getattr(self, name)
        out = np.full((len(arrays), n_rows), np.nan)
        for i, a in enumerate(arrays):
            out[i, : a.shape[0]] = a
        return out


class _Binner:
    """Accumulates one rule's statistics per plot bin."""

    def __init__(self, bin_buckets: int) -> None:
        self.bin = max(1, bin_buckets)
        self.data = PlotSeries()
        self._acc: list[dict[str, FloatArray]] = []
        self._start: int | None = None

    def add(self, start_s: int, stats: dict[str, FloatArray]) -> None:
        if self._start is None:
            self._start = start_s
        self._acc.append(stats)
        if len(self._acc) >= self.bin:
            self.close()

    def close(self) -> None:
        if not self._acc or self._start is None:
            return
        if len(self._acc) == 1:  # one bucket per point: no reduction needed
            only = self._acc[0]
            self.data.start_s.append(self._start)
            for name in ("observed", "expected", "share", "baseline_share", "volume", "score"):
                getattr(self.data, name).append(np.array(only[name], dtype=np.float64))
            self._acc, self._start = [], None
            return
        n = max(a.shape[0] for s in self._acc for a in s.values())
        stack = {k: np.stack([_pad(s[k], n) for s in self._acc]) for k in self._acc[0]}
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bins: young series
            self.data.start_s.append(self._start)
            self.data.observed.append(np.nanmax(stack["observed"], axis=0))
            self.data.expected.append(np.nanmean(stack["expected"], axis=0))
            self.data.share.append(np.nanmax(stack["share"], axis=0))
            self.data.baseline_share.append(np.nanmean(stack["baseline_share"], axis=0))
            self.data.volume.append(np.nanmean(stack["volume"], axis=0))
            self.data.score.append(np.nanmax(stack["score"], axis=0))
        self._acc, self._start = [], None


def _pad(a: FloatArray, n: int) -> FloatArray:
    if a.shape[0] >= n:
        return a.astype(np.float64)
    return np.concatenate([a.astype(np.float64), np.full(n - a.shape[0], np.nan)])


def _plot_stats(detector_stats: dict[str, Any], score: FloatArray, n: int) -> dict[str, FloatArray]:
    nan = np.full(n, np.nan)
    count = detector_stats.get("count") or {}
    share = detector_stats.get("share") or {}
    observed = count.get("observed", None)
    if observed is None and share:
        observed = np.nan_to_num(share["observed"]) * share["volume"]
    return {
        "observed": nan if observed is None else observed,
        "expected": count.get("expected", nan),
        "share": share.get("observed", nan),
        "baseline_share": share.get("expected", nan),
        "volume": share.get("volume", nan),
        "score": _pad(np.asarray(score, dtype=np.float64), n)[:n],
    }


@dataclass
class BacktestResult:
    """Everything a backtest produced (see :func:`alerts.backtest.outputs.write_outputs`)."""

    rules: RulesFile
    config: BacktestConfig
    alerts: list[Alert]
    series: list[tuple[str, str]]
    plots: dict[str, PlotSeries]
    sweep_firings: dict[str, list[list[Firing]]]
    events: list[LabeledEvent]
    documents: int
    duplicates: int
    buckets: int
    first_bucket_s: int | None
    end_s: int | None

    @property
    def days(self) -> float:
        """Length of the history in days (from the first bucket to the last bucket's end)."""
        if self.first_bucket_s is None or self.end_s is None:
            return 0.0
        return (self.end_s - self.first_bucket_s) / 86_400

    def firings(self, rule: str) -> list[Firing]:
        """The live decision's firing alerts of ``rule``."""
        return [
            Firing(a.series_kind, a.series, int(a.started_at.timestamp()))
            for a in self.alerts
            if a.rule == rule and a.state == "firing"
        ]

    def metrics(self, rule: Rule) -> RuleMetrics:
        """The rule's metrics against the labels."""
        return score_rule(
            self.firings(rule.name),
            events_for(rule, self.events),
            days=self.days,
            tolerance_s=self.config.tolerance_s,
        )

    def sweep(self, rule: Rule) -> list[tuple[float, RuleMetrics]]:
        """``(threshold, metrics)`` for each sweep threshold."""
        events = events_for(rule, self.events)
        return [
            (t, score_rule(f, events, days=self.days, tolerance_s=self.config.tolerance_s))
            for t, f in zip(self.config.thresholds, self.sweep_firings[rule.name], strict=True)
        ]


class Backtest:
    """Run rules over history tables (sorted by ``published_at``), one day at a time."""

    def __init__(
        self,
        rules: RulesFile,
        config: BacktestConfig | None = None,
        *,
        events: Iterable[LabeledEvent] = (),
    ) -> None:
        self.rules = rules
        self.config = config or BacktestConfig()
        self.events = list(events)
        cfg = self.config
        self.engine = AlertEngine(
            rules,
            bucket_s=cfg.bucket_s,
            seasonal=cfg.seasonal,
            top_k=cfg.top_k,
            max_series=cfg.max_series,
        )
        # The engine has no public per-rule hook; the backtest records through its rule states.
        self._states = list(self.engine._rules)
        for rs in self._states:
            h = rs.hysteresis
            rs.hysteresis = _RecordingHysteresis(
                threshold=h.threshold, hold_buckets=h.hold_buckets, clear_buckets=h.clear_buckets
            )
        self._sweeps = [
            _Sweep(rs.rule, cfg.thresholds, rs.hysteresis, self.engine.index) for rs in self._states
        ]
        self._bins = [_Binner(cfg.plot_bin_buckets) for _ in self._states]
        self.builder = BucketBuilder(
            self.engine.index, bucket_s=cfg.bucket_s, top_k=cfg.top_k, max_series=cfg.max_series
        )
        self.alerts: list[Alert] = []
        self.buckets = 0
        self._first: int | None = None
        self._end: int | None = None

    def feed(self, table: pa.Table, progress: Callable[[int], None] = lambda n: None) -> None:
        """Process one chunk (a day) of history."""
        for bucket in self.builder.feed(table):
            self._step(bucket)
        progress(table.num_rows)

    def _step(self, bucket: FinalBucket) -> None:
        # The engine's bucket entry point; documents were aggregated by the builder.
        self.alerts.extend(self.engine.evaluate([bucket]))
        self.buckets += 1
        self._first = bucket.start_s if self._first is None else self._first
        self._end = bucket.end_s
        for rs, sweep, binner in zip(self._states, self._sweeps, self._bins, strict=True):
            rec = rs.hysteresis
            assert isinstance(rec, _RecordingHysteresis)
            if self.events:  # the sweep only serves the metrics against labels
                sweep.step(bucket.end_s, rec.last_score, rec.last_mask)
            stats = _plot_stats(rs.detector.get(), rec.last_score, bucket.stats.shape[0])
            binner.add(bucket.start_s, stats)

    def finish(self) -> BacktestResult:
        """Close the last bucket and collect the result."""
        for bucket in self.builder.finish():
            self._step(bucket)
        for b in self._bins:
            b.close()
        return BacktestResult(
            rules=self.rules,
            config=self.config,
            alerts=self.alerts,
            series=self.engine.index.keys(),
            plots={rs.rule.name: b.data for rs, b in zip(self._states, self._bins, strict=True)},
            sweep_firings={s.rule.name: s.firings for s in self._sweeps},
            events=self.events,
            documents=self.builder.documents,
            duplicates=self.builder.duplicates,
            buckets=self.buckets,
            first_bucket_s=self._first,
            end_s=self._end,
        )


def plot_bin_for(span_s: float, bucket_s: int, points: int = 1500) -> int:
    """Buckets per plotted point so ``span_s`` of history gives at most ``points`` points.

    >>> plot_bin_for(86_400, 60), plot_bin_for(30 * 86_400, 60)
    (1, 29)
    """
    return max(1, math.ceil(span_s / bucket_s / points))
