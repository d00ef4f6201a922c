"""Prometheus metrics of the alerting service: ``finsentinel_alerts_*``.

Every label set is fixed at start-up: topics from ``metric_topics`` (plus
``other``), tickers only from the ``watch_tickers`` list, windows from the
settings, severities, states, outcomes and channel types from fixed tuples.

Two families change their label sets, each bounded by a setting and served
from one snapshot per evaluation (a scrape never sees half an update):

* ``finsentinel_alerts_active_alert_score`` (and ``..._started_timestamp_seconds``):
  one series per open alert (``rule``, ``kind``, ``series``, ``severity``),
  gone when it resolves; at most ``max_active_alert_series``, further alerts
  counted once each in ``finsentinel_alerts_active_alerts_overflow_total``;
* ``finsentinel_alerts_mover_score`` (``kind``, ``series``, ``rule``) and
  ``finsentinel_alerts_mover_documents`` (``kind``, ``series``, ``window``): the
  ``top_movers`` highest-scoring series of each kind (:mod:`alerts.movers`), with
  their volume, with or without a watch-list.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from alerts.durations import format_duration_s
from alerts.engine import AlertEngine
from alerts.movers import Mover, top_movers
from alerts.notify.worker import OUTCOMES
from alerts.rules import RulesFile
from alerts.series import SeriesIndex
from alerts.windows import Trend
from stream.contracts.schemas import Alert

__all__ = ["AlertMetrics"]

_NS = "finsentinel_alerts"
DOC_OUTCOMES = ("accepted", "duplicate", "late", "future", "invalid", "unsupported")
SEVERITIES = ("info", "warning", "critical")
STATES = ("firing", "updated", "resolved")
CHANNEL_TYPES = ("webhook", "slack", "email", "alertmanager")
SENTIMENTS = ("negative", "neutral", "positive")


class _Snapshot(Collector):
    """Serves the families built by the latest :meth:`replace`, whole."""

    def __init__(self, empty: list[GaugeMetricFamily]) -> None:
        self._empty = empty
        self._families = empty

    def replace(self, families: list[GaugeMetricFamily]) -> None:
        self._families = families  # one reference swap: scrapes see old or new

    def collect(self) -> Iterator[GaugeMetricFamily]:
        return iter(self._families)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(self._empty)


def _active_families() -> list[GaugeMetricFamily]:
    labels = ["rule", "kind", "series", "severity"]
    return [
        GaugeMetricFamily(
            f"{_NS}_active_alert_score",
            "Detector score of each open alert (one series per alert, gone on resolve)",
            labels=labels,
        ),
        GaugeMetricFamily(
            f"{_NS}_active_alert_started_timestamp_seconds",
            "Event time each open alert started at",
            labels=labels,
        ),
    ]


def _mover_families() -> list[GaugeMetricFamily]:
    return [
        GaugeMetricFamily(
            f"{_NS}_mover_score",
            "Highest detector score of each top mover, with the rule that gives it",
            labels=["kind", "series", "rule"],
        ),
        GaugeMetricFamily(
            f"{_NS}_mover_threshold",
            "Threshold of the rule that scores each top mover highest",
            labels=["kind", "series", "rule"],
        ),
        GaugeMetricFamily(
            f"{_NS}_mover_documents",
            "Documents of each top mover in the trend window",
            labels=["kind", "series", "window"],
        ),
    ]


class AlertMetrics:
    """All metrics of one service instance, registered in ``registry``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        topics: Iterable[str],
        tickers: Iterable[str],
        windows_s: Iterable[int],
        max_active_alerts: int = 100,
        top_movers: int = 10,
    ) -> None:
        self.max_active_alerts = max_active_alerts
        self.top_movers = top_movers
        self.topics = tuple(dict.fromkeys([*topics, "other"]))
        self.tickers = tuple(dict.fromkeys(tickers))
        self.windows = {w: format_duration_s(w) for w in windows_s}
        r = registry
        self.documents = Counter(
            f"{_NS}_documents_total", "Scored documents by outcome", ["outcome"], registry=r
        )
        self.series_docs = Gauge(
            f"{_NS}_series_documents",
            "Documents in the trend window",
            ["kind", "series", "sentiment", "window"],
            registry=r,
        )
        self.series_share = Gauge(
            f"{_NS}_series_negative_share_ratio",
            "Negative share in the trend window",
            ["kind", "series", "window"],
            registry=r,
        )
        self.series_score = Gauge(
            f"{_NS}_series_sentiment_score",
            "Confidence-weighted mean sentiment score in [-1, 1] in the trend window",
            ["kind", "series", "window"],
            registry=r,
        )
        self.firing = Gauge(f"{_NS}_firing", "Open alerts by severity", ["severity"], registry=r)
        self.transitions = Counter(
            f"{_NS}_transitions_total", "Alert transitions by state", ["state"], registry=r
        )
        self.notifications = Counter(
            f"{_NS}_notifications_total",
            "Notification deliveries and attempts by channel type and outcome",
            ["channel_type", "outcome"],
            registry=r,
        )
        self.notifications_pending = Gauge(
            f"{_NS}_notifications_pending",
            "Notifications waiting in the outbox by channel type",
            ["channel_type"],
            registry=r,
        )
        self.evaluation = Histogram(
            f"{_NS}_evaluation_duration_seconds",
            "Time to close final buckets and run every rule's detectors",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.series = Gauge(f"{_NS}_series", "Series tracked", registry=r)
        self.series_dropped = Gauge(
            f"{_NS}_series_dropped",
            "Series memberships not tracked because max_series was reached",
            registry=r,
        )
        self.stale = Gauge(f"{_NS}_stale_series", "Series without documents lately", registry=r)
        self.watermark_lag = Gauge(
            f"{_NS}_watermark_lag_seconds", "Wall clock minus the event-time watermark", registry=r
        )
        self.active_overflow = Counter(
            f"{_NS}_active_alerts_overflow_total",
            "Open alerts not exported as an active-alert series (max_active_alert_series "
            "reached), counted once each",
            registry=r,
        )
        self._active = _Snapshot(_active_families())
        self._movers = _Snapshot(_mover_families())
        r.register(self._active)
        r.register(self._movers)
        self._active_keys: list[str] = []  # exported, in the order they got a series
        self._overflowed: set[str] = set()
        self._init_labels()

    def _init_labels(self) -> None:
        for o in DOC_OUTCOMES:
            self.documents.labels(o)
        for s in SEVERITIES:
            self.firing.labels(s)
        for s in STATES:
            self.transitions.labels(s)
        for c in CHANNEL_TYPES:
            self.notifications_pending.labels(c)
            for o in OUTCOMES:
                self.notifications.labels(c, o)
        for kind, values in (("topic", self.topics), ("ticker", self.tickers)):
            for v in values:
                for w in self.windows.values():
                    for s in SENTIMENTS:
                        self.series_docs.labels(kind, v, s, w)
                    self.series_share.labels(kind, v, w)
                    self.series_score.labels(kind, v, w)

    def export(
        self, engine: AlertEngine, rules: RulesFile, *, stale_after_s: int, now_s: float
    ) -> None:
        """Set every gauge from the engine after an evaluation."""
        self.export_trends(engine.index, {w: engine.trend(w) for w in self.windows})
        self.export_movers(top_movers(engine, k=self.top_movers))
        counts = dict.fromkeys(SEVERITIES, 0)
        by_rule = {r.name: r.severity for r in rules.rules}
        for key, _ in engine.open_alerts():
            counts[by_rule[key.split(":", 1)[0]]] += 1
        for sev, n in counts.items():
            self.firing.labels(sev).set(n)
        self.series.set(len(engine.index))
        self.series_dropped.set(engine.aggregator.dropped_series)
        end = engine.windows.last_end_s
        if end is not None and engine.last_seen_s.size:
            self.stale.set(int((engine.last_seen_s < end - stale_after_s).sum()))
        wm = engine.aggregator.watermark_s
        if wm is not None:
            self.watermark_lag.set(max(0.0, now_s - wm))

    def export_active(self, alerts: Iterable[Alert]) -> None:
        """One series per open alert; past the limit, alerts that already have a series
        keep it and the rest are counted (once each) in the overflow counter."""
        open_ = {a.key: a for a in alerts if a.state != "resolved"}
        keys = [k for k in self._active_keys if k in open_]
        for key in sorted(open_, key=lambda k: (-SEVERITIES.index(open_[k].severity), k)):
            if key in keys:
                continue
            if len(keys) < self.max_active_alerts:
                keys.append(key)
            elif key not in self._overflowed:
                self._overflowed.add(key)
                self.active_overflow.inc()
        self._overflowed &= set(open_)
        self._active_keys = keys
        score, started = _active_families()
        for key in keys:
            a = open_[key]
            labels = [a.rule, a.series_kind, a.series, a.severity]
            score.add_metric(labels, a.score)
            started.add_metric(labels, a.started_at.timestamp())
        self._active.replace([score, started])

    def export_movers(self, movers: Iterable[Mover]) -> None:
        """Replace the top-mover series (see :func:`alerts.movers.top_movers`)."""
        score, threshold, documents = _mover_families()
        for m in movers:
            score.add_metric([m.kind, m.series, m.rule], m.score)
            threshold.add_metric([m.kind, m.series, m.rule], m.threshold)
            for window_s, n in m.documents.items():
                documents.add_metric([m.kind, m.series, format_duration_s(window_s)], n)
        self._movers.replace([score, threshold, documents])

    def notification(self, channel_type: str, outcome: str) -> None:
        """Count one notification outcome."""
        self.notifications.labels(channel_type, outcome).inc()

    def notifications_waiting(self, channel_type: str, pending: int) -> None:
        """Set the outbox's pending count of one channel type."""
        self.notifications_pending.labels(channel_type).set(pending)

    def export_trends(self, index: SeriesIndex, trends: dict[int, Trend]) -> None:
        """Set the per-topic and watch-list ticker gauges from the trend windows."""
        for window_s, trend in trends.items():
            w = self.windows[window_s]
            other = np.zeros(3)
            for row, (kind, value) in enumerate(index.keys()):
                if row >= trend.total.shape[0]:
                    break
                if kind == "topic" and value not in self.topics:
                    other += [trend.negative[row], trend.neutral[row], trend.positive[row]]
                elif (kind == "topic") or (kind == "ticker" and value in self.tickers):
                    self._set(kind, value, w, trend, row)
            for s, v in zip(SENTIMENTS, other, strict=True):
                self.series_docs.labels("topic", "other", s, w).set(v)

    def _set(self, kind: str, value: str, w: str, trend: Trend, row: int) -> None:
        counts = (trend.negative[row], trend.neutral[row], trend.positive[row])
        for s, v in zip(SENTIMENTS, counts, strict=True):
            self.series_docs.labels(kind, value, s, w).set(float(v))
        share, score = float(trend.negative_share[row]), float(trend.mean_score[row])
        self.series_share.labels(kind, value, w).set(0.0 if np.isnan(share) else share)
        self.series_score.labels(kind, value, w).set(0.0 if np.isnan(score) else score)
