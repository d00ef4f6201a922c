"""Settings of the alerting service. Environment: ``FINSENTINEL_ALERTS_<FIELD>``.

Explicit arguments beat the environment; rules between settings are checked
at start-up with messages that say how to fix them.

>>> AlertSettings(bucket_s=60, windows_s=(300, 3600)).windows_s
(300, 3600)
>>> from pydantic import ValidationError
>>> try:
...     AlertSettings(bucket_s=60, windows_s=(90,))
... except ValidationError as exc:
...     print(exc.errors()[0]["msg"])
Value error, windows_s: 90 is not a multiple of bucket_s=60; use e.g. 60 or 120
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.labels import TOPIC_LABELS

__all__ = ["DEFAULT_RULES_PATH", "AlertSettings"]

#: The rules shipped with the package.
DEFAULT_RULES_PATH = Path(__file__).with_name("rules.default.yaml")


class AlertSettings(BaseSettings):
    """How the alerting service aggregates, evaluates, stores and notifies."""

    model_config = SettingsConfigDict(env_prefix="FINSENTINEL_ALERTS_", extra="forbid", frozen=True)

    #: The rules (and channels) file.
    rules_path: Path = DEFAULT_RULES_PATH
    #: SQLite database: alerts, silences, checkpoint (state + offsets), de-duplication ids.
    db_path: Path = Path("var/alerts.sqlite")
    #: Checkpoint name inside the database (two services may share one file).
    checkpoint_name: str = "alerts"
    #: Consumer group (offsets committed there too, for lag monitoring only).
    group_id: str = "finsentinel-alerts"
    #: Tumbling bucket length.
    bucket_s: Annotated[int, Field(ge=1, le=3600)] = 60
    #: Sliding trend windows (multiples of ``bucket_s``); the longest also bounds de-duplication.
    windows_s: tuple[int, ...] = (300, 3600, 86_400)
    #: How late (in event time) a document may arrive and still count.
    allowed_lateness_s: Annotated[int, Field(ge=0)] = 120
    #: Documents published further than this ahead of the clock are rejected as ``future``.
    max_future_s: Annotated[int, Field(ge=0)] = 300
    #: Live mode: when no document arrived for this long, the watermark follows the wall
    #: clock minus the lateness, so buckets close on a quiet stream. None: event time only.
    idle_watermark_after_s: Annotated[float, Field(gt=0)] | None = 60.0
    #: History mode, for back-fills and archive replays (``finsentinel alert --history``):
    #: event time alone moves the watermark, the lateness is ``history_lateness_s``, and
    #: windows are flushed when the input has ended. See docs/history.md.
    history: bool = False
    #: Lateness in history mode; None: the longest trend window (at most that long, so
    #: de-duplication still covers it).
    history_lateness_s: Annotated[int, Field(ge=0)] | None = None
    #: History mode: no record for this long (wall clock) means the input has ended; every
    #: open bucket is closed and evaluated, pending notification groups are sent.
    history_end_after_s: Annotated[float, Field(gt=0)] = 30.0
    #: A fresh state (no checkpoint in ``db_path``) reads the scored topic from its
    #: beginning instead of the consumer group's committed offsets (``--from-beginning``).
    #: Ignored once a checkpoint exists: its offsets are the truth.
    from_beginning: bool = False
    #: How often the scheduler evaluates (closes final buckets, runs detectors).
    evaluate_interval_s: Annotated[float, Field(gt=0)] = 30.0
    #: How often state and offsets are checkpointed (also after each evaluation).
    checkpoint_interval_s: Annotated[float, Field(gt=0)] = 30.0
    poll_timeout_s: Annotated[float, Field(gt=0, le=30)] = 1.0
    max_poll_records: Annotated[int, Field(ge=1)] = 500
    #: Headlines kept per series and bucket, and shown per alert.
    top_documents: Annotated[int, Field(ge=1, le=50)] = 5
    #: Seasonal (hour-of-day, day-of-week) baselines once a series has the history.
    seasonal: bool = True
    #: Event-time wait before a group of alerts becomes one notification.
    group_wait_s: Annotated[float, Field(ge=0)] = 60.0
    #: Topics exported as metric labels (default: the shipped model's topic labels); others
    #: count as "other".
    metric_topics: tuple[str, ...] = TOPIC_LABELS
    #: Tickers exported as metric labels (the watch-list); no other ticker becomes a label.
    watch_tickers: tuple[str, ...] = ()
    #: Open alerts exported as ``finsentinel_alerts_active_alert_score`` series (one per
    #: alert, labels rule/kind/series/severity); past it they are counted in
    #: ``finsentinel_alerts_active_alerts_overflow_total``.
    max_active_alert_series: Annotated[int, Field(ge=1, le=10_000)] = 200
    #: Top movers exported per series kind (ticker, topic, source, group), ranked by
    #: detector score, with or without a watch-list; 0 exports none.
    top_movers: Annotated[int, Field(ge=0, le=100)] = 10
    #: Most series tracked (memory bound); documents of further new series still count in
    #: ``all``, their topic and their source; skipped series are counted in a metric.
    max_series: Annotated[int, Field(ge=100)] = 100_000
    #: A series with no document for this long counts as stale.
    stale_after_s: Annotated[int, Field(ge=60)] = 3600
    #: Open alerts are re-sent to Alertmanager channels this often (wall clock), or
    #: Alertmanager resolves them after its ``resolve_timeout`` (5 min by default).
    alertmanager_resend_s: Annotated[float, Field(gt=0)] = 60.0
    notify_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    notify_retry_initial_s: Annotated[float, Field(gt=0)] = 1.0
    notify_retry_max_s: Annotated[float, Field(gt=0)] = 60.0
    #: Most notifications waiting per channel in the outbox (the oldest is dropped).
    notify_queue_max: Annotated[int, Field(ge=1)] = 1000
    #: Finished outbox rows (sent, rejected, expired, dropped) are kept this long: their
    #: keys stop a transition re-derived after a restart from being sent again.
    notify_outbox_retention_s: Annotated[float, Field(ge=3600)] = 7 * 86_400.0
    metrics_host: str = "127.0.0.1"
    #: 0 picks any free port.
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9102
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _check(self) -> AlertSettings:
        if not self.windows_s:
            raise ValueError("windows_s: give at least one window, e.g. (300, 3600, 86400)")
        for w in self.windows_s:
            if w <= 0 or w % self.bucket_s:
                raise ValueError(
                    f"windows_s: {w} is not a multiple of bucket_s={self.bucket_s}; use e.g. "
                    f"{self.bucket_s} or {2 * self.bucket_s}"
                )
        if self.notify_retry_initial_s > self.notify_retry_max_s:
            raise ValueError("notify_retry_initial_s must not exceed notify_retry_max_s")
        if self.allowed_lateness_s > max(self.windows_s):
            raise ValueError(
                f"allowed_lateness_s={self.allowed_lateness_s} exceeds the longest window "
                f"({max(self.windows_s)}s): late documents could no longer be de-duplicated"
            )
        if self.history_lateness_s is not None and self.history_lateness_s > max(self.windows_s):
            raise ValueError(
                f"history_lateness_s={self.history_lateness_s} exceeds the longest window "
                f"({max(self.windows_s)}s); leave it unset to use the longest window"
            )
        return self
