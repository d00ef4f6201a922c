"""The pure alerting core: aggregation, trend windows, detectors and lifecycle.

:class:`AlertEngine` has no Kafka, no thread and no clock: documents go in
with :meth:`~AlertEngine.add`, event time moves with
:meth:`~AlertEngine.advance` (or :meth:`~AlertEngine.flush` at the end of a
finite input) and alert transitions come out. Detectors update on final
buckets in bucket order, so the live service, a 1000x replay and a backtest
driven by a simulated clock make the same decisions.

>>> from datetime import datetime, timedelta, timezone
>>> from alerts.rules import parse_rules
>>> from alerts.testing import scored
>>> rules = parse_rules("rules: [{name: neg, series: {kind: topic}, min_history: 10m}]")
>>> engine = AlertEngine(rules, bucket_s=60, allowed_lateness_s=0)
>>> t0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
>>> for i in range(60):  # one neutral story a minute, then a negative burst
...     _ = engine.add(scored(f"d{i}", t0 + timedelta(minutes=i)))
>>> for i in range(20):
...     _ = engine.add(scored(f"n{i}", t0 + timedelta(minutes=60 + i / 4), sentiment="negative"))
>>> [(a.state, a.series) for a in engine.flush()]
[('firing', 'Markets')]
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from alerts.aggregate import CONF, NEG, TOTAL, WSCORE, Aggregator, FinalBucket, Outcome
from alerts.baseline import pack, unpack
from alerts.detectors import (
    Combined,
    CountSpike,
    CountSurge,
    Cusum,
    Detector,
    RobustLevel,
    SeriesFrame,
    ShareSpike,
)
from alerts.hysteresis import Hysteresis
from alerts.lifecycle import Observation, RuleTracker
from alerts.rules import Rule, RulesFile
from alerts.series import SeriesIndex
from alerts.windows import Trend, TrendWindows
from stream.contracts.errors import ConfigError
from stream.contracts.schemas import Alert, ScoredDocument

__all__ = ["AlertEngine", "EngineStats", "build_detector"]

logger = logging.getLogger(__name__)


#: Bumped when a detector's state layout or meaning changes: checkpoints of an older
#: layout restart their detectors (with a WARNING) instead of failing to load.
DETECTOR_STATE_VERSION = 2


def _fingerprint(rule: Rule) -> str:
    """Identity of a rule's configuration: a changed rule restarts its detectors."""
    ident = f"{DETECTOR_STATE_VERSION}:{rule.model_dump_json()}"
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


@dataclass
class EngineStats:
    """Counters since start (or since the restored checkpoint)."""

    accepted: int = 0
    duplicate: int = 0
    late: int = 0
    future: int = 0
    unsupported: int = 0
    buckets_closed: int = 0
    alerts: dict[str, int] = field(
        default_factory=lambda: {"firing": 0, "updated": 0, "resolved": 0}
    )


def _buckets(seconds: int, bucket_s: int, what: str) -> int:
    if seconds % bucket_s:
        raise ConfigError(f"{what} {seconds}s is not a multiple of the {bucket_s}s bucket")
    return seconds // bucket_s


def _detector_key(rule: Rule) -> tuple[Any, ...]:
    """Everything :func:`build_detector` reads: rules with equal keys get equal detectors."""
    return (
        tuple(sorted(set(rule.detectors))),
        rule.combine,
        rule.window_s,
        rule.min_history_s,
        rule.baseline_half_life_s,
        rule.full_at_p,
        rule.min_volume,
        rule.cusum_drift,
        rule.cusum_threshold,
        rule.min_negative,
        rule.season_half_life_s,
        rule.dispersion_half_life_s,
        rule.onset_half_life_s,
        rule.likelihood_half_life_s,
    )


def _state_digest(state: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def build_detector(rule: Rule, *, bucket_s: int, seasonal: bool = True) -> Combined:
    """The combined detector a rule describes (also used by offline detection)."""
    w = max(1, _buckets(rule.window_s, bucket_s, f"rule {rule.name!r}: window"))
    history = max(1, rule.min_history_s // bucket_s)
    half_life = max(1.0, rule.baseline_half_life_s / bucket_s)
    parts: dict[str, Detector] = {}
    likelihood = max(1.0, rule.likelihood_half_life_s / bucket_s)
    onset = max(1.0, rule.onset_half_life_s / bucket_s)
    half_surprise = -math.log10(rule.full_at_p) / 2
    if "surge" in rule.detectors:
        parts["surge"] = CountSurge(
            window_buckets=w,
            level_half_life_buckets=half_life,
            min_history_buckets=history,
            bucket_s=bucket_s,
            seasonal=seasonal,
            season_half_life_days=rule.season_half_life_s / 86_400,
            dispersion_half_life_buckets=max(1.0, rule.dispersion_half_life_s / bucket_s),
            shift_half_life_buckets=max(1.0, rule.shift_baseline_half_life_s / bucket_s),
            min_count=rule.min_negative,
            half_surprise=half_surprise,
            onset_half_life_buckets=onset,
            likelihood_half_life_buckets=likelihood,
        )
    if "robust" in rule.detectors:
        parts["robust"] = RobustLevel(
            window_buckets=w,
            half_life_buckets=half_life,
            min_history_buckets=history,
            bucket_s=bucket_s,
            half_surprise=half_surprise,
            onset_half_life_buckets=onset,
            likelihood_half_life_buckets=likelihood,
        )
    if "count" in rule.detectors:
        parts["count"] = CountSpike(
            window_buckets=w,
            half_life_buckets=half_life,
            min_history_buckets=history,
            full_at_p=rule.full_at_p,
            seasonal_min_days=2.0 if seasonal else None,
            bucket_s=bucket_s,
        )
    if "share" in rule.detectors:
        parts["share"] = ShareSpike(
            window_buckets=w,
            half_life_buckets=half_life,
            min_history_buckets=history,
            min_volume=rule.min_volume,
            full_at_p=rule.full_at_p,
        )
    if "cusum" in rule.detectors:
        parts["cusum"] = Cusum(
            drift=rule.cusum_drift,
            threshold=rule.cusum_threshold,
            half_life_buckets=half_life * 4,
            min_history_buckets=history,
        )
    return Combined(parts, mode=rule.combine)


class _RuleState:
    """Detectors, hysteresis and lifecycle of one rule over every series."""

    def __init__(self, rule: Rule, engine: AlertEngine) -> None:
        self.rule = rule
        self.detector = build_detector(rule, bucket_s=engine.bucket_s, seasonal=engine.seasonal)
        self.hysteresis = Hysteresis(
            threshold=rule.threshold,
            hold_buckets=-(-rule.hold_s // engine.bucket_s),
            clear_buckets=-(-rule.clear_s // engine.bucket_s),
        )
        self.tracker = RuleTracker(
            rule,
            key_of=engine.index.key,
            labels_of=engine.rules.labels_of,
            evidence_of=lambda row, since: engine.windows.top_documents(row, since, engine.top_k),
        )
        self._mask = np.zeros(0, dtype=bool)
        self._index = engine.index
        self._bucket_s = engine.bucket_s

    def selected(self) -> NDArray[np.bool_]:
        """Rows this rule watches (cached; extended as new series appear)."""
        n = len(self._index)
        if self._mask.shape[0] < n:
            extra = [
                self.rule.series.matches(*self._index.key(r)) for r in range(self._mask.shape[0], n)
            ]
            self._mask = np.concatenate([self._mask, np.array(extra, dtype=bool)])
        return self._mask

    def step(self, frame: SeriesFrame) -> list[Alert]:
        """Decide on ``frame``, which :attr:`detector` has already consumed."""
        det = self.detector
        # The hysteresis follows the sustained surprise (onset-scoring detectors score a
        # burst once; the alert lasts as long as the burst), alerts report it too.
        score = det.sustained()
        stats = det.get()
        count = stats.get("surge", stats.get("count", {}))
        share = stats.get("share", {})
        negative = count["observed"] if count else self._window_negative(frame)
        volume_ok = negative >= self.rule.min_negative
        self.hysteresis.update(score, self.selected() & volume_ok)
        if not self.tracker.open and not self.hysteresis.active.any():
            return []  # nothing firing and nothing open: the tracker has nothing to do
        nan = np.full(frame.n, np.nan)
        obs = Observation(
            end_s=frame.start_s + self._bucket_s,
            active=self.hysteresis.active,
            score=score,
            negative=negative,
            expected=count.get("expected", nan) if count else nan,
            share=share.get("observed", nan) if share else nan,
            baseline_share=share.get("expected", nan) if share else nan,
        )
        return self.tracker.step(obs)

    def _window_negative(self, frame: SeriesFrame) -> NDArray[np.float64]:
        share = self.detector.detectors.get("share")
        if isinstance(share, ShareSpike):
            s = share.get()
            return np.nan_to_num(s["observed"]) * s["volume"]
        return frame.negative  # CUSUM alone: the bucket's own count

    def state(self) -> dict[str, Any]:
        return {
            "detector": self.detector.state(),
            "hysteresis": self.hysteresis.state(),
            "tracker": self.tracker.state(),
        }

    def load(self, state: dict[str, Any]) -> None:
        self.detector.load(state["detector"])
        self.hysteresis.load(state["hysteresis"])
        self.tracker.load(state["tracker"])


class AlertEngine:
    """Aggregates scored documents and turns final buckets into alert transitions."""

    def __init__(
        self,
        rules: RulesFile,
        *,
        bucket_s: int = 60,
        allowed_lateness_s: int = 120,
        windows_s: tuple[int, ...] = (300, 3600, 86_400),
        top_k: int = 5,
        seasonal: bool = True,
        max_series: int = 100_000,
    ) -> None:
        for w in windows_s:
            _buckets(w, bucket_s, "trend window")
        self.rules = rules
        self.bucket_s = bucket_s
        self.top_k = top_k
        self.seasonal = seasonal
        self.index = SeriesIndex()
        self.aggregator = Aggregator(
            bucket_s=bucket_s,
            allowed_lateness_s=allowed_lateness_s,
            dedup_retention_s=max(windows_s),
            top_k=top_k,
            index=self.index,
            max_series=max_series,
        )
        self.windows = TrendWindows(bucket_s=bucket_s, windows_s=windows_s)
        self._rules = [_RuleState(r, self) for r in rules.rules]
        self._detectors: list[Combined] = []
        self._share_detectors({rs.rule.name: "fresh" for rs in self._rules})
        self.stats = EngineStats()
        self.last_seen_s = np.zeros(0)  # event time of each series' latest final document

    def add(self, doc: ScoredDocument, source: str | None = None) -> Outcome:
        """Count one scored document (see :meth:`Aggregator.add`)."""
        outcome = self.aggregator.add(doc, source)
        setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
        return outcome

    def advance(self, watermark_s: int | None = None) -> list[Alert]:
        """Close the buckets the watermark passed (optionally forcing it) and evaluate."""
        return self.evaluate(self.aggregator.advance_to(watermark_s))

    def flush(self) -> list[Alert]:
        """End of a finite input: close every bucket and evaluate."""
        return self.evaluate(self.aggregator.flush())

    def evaluate(self, buckets: list[FinalBucket]) -> list[Alert]:
        """Run trend windows, detectors and lifecycle over final buckets, in order."""
        out: list[Alert] = []
        for bucket in buckets:
            self.windows.push(bucket)
            self._touch(bucket)
            stats = bucket.stats
            conf = stats[:, CONF]
            mean_score = np.divide(
                stats[:, WSCORE], conf, out=np.full(conf.shape, np.nan), where=conf > 0
            )
            frame = SeriesFrame(
                bucket.start_s, stats[:, TOTAL], stats[:, NEG], bucket.all_row, mean_score
            )
            for det in self._detectors:
                det.update(frame)
            for rs in self._rules:
                out.extend(rs.step(frame))
            self.stats.buckets_closed += 1
        for alert in out:
            self.stats.alerts[alert.state] += 1
        return out

    def _share_detectors(self, history: dict[str, str]) -> None:
        """One detector per distinct configuration and history, shared by its rules.

        A detector is a deterministic function of its configuration and the frames
        it consumed, so rules that agree on both (e.g. the same test per topic and
        per ticker) can share one; ``history`` names each rule's detector state.
        """
        shared: dict[tuple[Any, ...], Combined] = {}
        for rs in self._rules:
            key = (_detector_key(rs.rule), history[rs.rule.name])
            rs.detector = shared.setdefault(key, rs.detector)
        self._detectors = list({id(d): d for d in shared.values()}.values())

    def _touch(self, bucket: FinalBucket) -> None:
        n = bucket.stats.shape[0]
        if self.last_seen_s.shape[0] < n:
            pad = np.full(n - self.last_seen_s.shape[0], float(bucket.end_s))
            self.last_seen_s = np.concatenate([self.last_seen_s, pad])
        self.last_seen_s[bucket.stats[:, TOTAL] > 0] = bucket.end_s

    def trend(self, window_s: int) -> Trend:
        """Window statistics of every series (rows as in :attr:`index`)."""
        return self.windows.trend(window_s)

    def rule_scores(self) -> list[tuple[Rule, NDArray[np.float64]]]:
        """Each rule's latest combined detector score per series row, NaN on the rows
        it does not watch (rows as in :attr:`index`; empty before the first bucket)."""
        out = []
        for rs in self._rules:
            score = np.asarray(rs.detector.score(), dtype=float)
            mask = rs.selected()[: score.shape[0]]
            out.append((rs.rule, np.where(mask, score[: mask.shape[0]], np.nan)))
        return out

    def open_alerts(self) -> list[tuple[str, int]]:
        """``(key, started_s)`` of every open alert."""
        return [
            (rs.rule.key(*self.index.key(row)), st.started_s)
            for rs in self._rules
            for row, st in rs.tracker.open.items()
        ]

    def state(self) -> dict[str, Any]:
        """JSON-able state for the checkpoint (de-duplication ids travel separately)."""
        return {
            "index": self.index.state(),
            "aggregator": self.aggregator.state(),
            "windows": self.windows.state(),
            "rules": {rs.rule.name: rs.state() for rs in self._rules},
            "rule_versions": {rs.rule.name: _fingerprint(rs.rule) for rs in self._rules},
            "last_seen_s": pack(self.last_seen_s),
        }

    def load(self, state: dict[str, Any], seen: list[tuple[str, int]]) -> None:
        """Restore from :meth:`state`; rules not in the checkpoint start fresh."""
        for kind, value in state["index"]:
            self.index.row((kind, value))
        self.aggregator.load(state["aggregator"], seen)
        self.windows.load(state["windows"], len(self.index))
        versions = state.get("rule_versions", {})
        history: dict[str, str] = {}
        for rs in self._rules:
            name = rs.rule.name
            rs.detector = build_detector(rs.rule, bucket_s=self.bucket_s, seasonal=self.seasonal)
            history[name] = "fresh"
            if name not in state["rules"]:
                logger.info("rule %s is new: its detectors start without history", name)
            elif versions.get(name) != _fingerprint(rs.rule):
                logger.warning("rule %s changed since the checkpoint: its detectors restart", name)
            else:
                rs.load(state["rules"][name])
                history[name] = _state_digest(state["rules"][name]["detector"])
        self._share_detectors(history)
        self.last_seen_s = unpack(state["last_seen_s"])
