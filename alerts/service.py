"""The alerting service: Kafka in, alerts out, state checkpointed in SQLite.

Consumes every partition of the scored topic (manual assignment: one instance
aggregates the whole stream, the "all" series needs every document), feeds
the pure :class:`~alerts.engine.AlertEngine`, and on a schedule (apscheduler,
every ``evaluate_interval_s``) closes final buckets and turns detector
decisions into alerts, which are persisted, produced to the alerts topic and
notified.

Delivery guarantees: the engine state and the next offset of every partition
are saved in ONE SQLite transaction, and on start the consumer seeks to the
saved offsets, so aggregates are exactly-once across restarts (no Kafka
transactions needed). Kafka group offsets are committed after each checkpoint
for lag monitoring only. Alerts are at-least-once: a crash between an
evaluation and its checkpoint re-emits the same transitions (same key, state
and ``updated_at``) after restart; the store de-duplicates them, and so does
the notification outbox: each transition is stored with its notification
intents in one transaction, and a re-emitted one finds its intents there
already (same idempotency key), so it is not notified twice
(see :mod:`alerts.notify.outbox`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from apscheduler.schedulers.background import BackgroundScheduler
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from alerts.breadth import BreadthBook, BreadthFeed
from alerts.checkpoint import Checkpointer, Offsets
from alerts.db import Database
from alerts.engine import AlertEngine
from alerts.kafka_io import IdlePartitions, assign_all, commit_offsets, dead_letter
from alerts.metrics import AlertMetrics
from alerts.notify import Dispatcher, Notifier, RetryPolicy, build_notifiers
from alerts.notify.outbox import Outbox
from alerts.rules import RulesFile, load_rules
from alerts.settings import AlertSettings
from alerts.store import AlertStore
from alerts.view import AlertView
from alerts.watermark import EndOfInput, HistoryHint, describe, lateness_s
from stream.contracts.errors import BrokerError, SchemaError
from stream.contracts.schemas import Alert, ScoredDocument, decode, encode
from stream.contracts.topics import TopicNames
from stream.deadletters import DeadLetterCounter
from stream.http import MetricsServer
from stream.kafka import KafkaSettings, make_consumer, make_producer
from stream.runtime import StopFlag

__all__ = ["AlertService"]

logger = logging.getLogger(__name__)


class AlertService:
    """Run alerting over the scored topic; see the module docstring."""

    def __init__(
        self,
        settings: AlertSettings,
        *,
        kafka: KafkaSettings,
        topics: TopicNames | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        notifiers: dict[str, Notifier] | None = None,
        rules: RulesFile | None = None,
        env: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.kafka = kafka
        self.topics = topics or TopicNames()
        self.registry = registry if registry is not None else CollectorRegistry()
        self.clock = clock
        self.rules = rules or load_rules(settings.rules_path)
        self.db = Database(settings.db_path)
        self.store = AlertStore(self.db)
        self.checkpointer = Checkpointer(self.db, name=settings.checkpoint_name)
        self.engine = AlertEngine(
            self.rules,
            bucket_s=settings.bucket_s,
            allowed_lateness_s=lateness_s(settings),
            windows_s=settings.windows_s,
            top_k=settings.top_documents,
            seasonal=settings.seasonal,
            max_series=settings.max_series,
        )
        self.metrics = AlertMetrics(
            self.registry,
            topics=settings.metric_topics,
            tickers=settings.watch_tickers,
            windows_s=settings.windows_s,
            max_active_alerts=settings.max_active_alert_series,
            top_movers=settings.top_movers,
        )
        if notifiers is None:
            notifiers = build_notifiers(
                self.rules.channels,
                env=env,
                clock=clock,
                transport=transport,
                timeout_s=settings.notify_timeout_s,
            )
        self.dispatcher = Dispatcher(
            self.rules,
            notifiers,
            clock=clock,
            outbox=Outbox(
                self.db,
                name=settings.checkpoint_name,
                max_pending=settings.notify_queue_max,
                retention_s=settings.notify_outbox_retention_s,
            ),
            group_wait_s=settings.group_wait_s,
            retry=RetryPolicy(settings.notify_retry_initial_s, settings.notify_retry_max_s),
            on_outcome=self.metrics.notification,
            on_pending=self.metrics.notifications_waiting,
        )
        #: Story breadth from ``topics.breadth`` (see alerts.breadth), shown in the evidence.
        self.breadth = BreadthBook(registry=self.registry)
        self._deadletters = DeadLetterCounter(self.registry, stage="alerts")
        self._lock = threading.RLock()
        self._offsets: Offsets = {}
        self._raised: deque[Alert] = deque(maxlen=10_000)
        self._rejected: deque[tuple[str, str, str]] = deque(maxlen=100)
        self._rejected_reported = 0
        self._open: dict[str, Alert] = {}  # latest transition of each open alert, by key
        self._last_resend_s = clock()
        self._invalid = 0
        self._last_record_s = clock()
        self._idle = IdlePartitions(idle_after_s=settings.idle_watermark_after_s)
        self._end = EndOfInput(after_s=settings.history_end_after_s)
        self._hint = HistoryHint(settings)
        self._last_checkpoint_s = clock()
        self._checkpoint_due = False
        self._ready = False
        self._restore()

    # -- state -----------------------------------------------------------------------------

    def _restore(self) -> None:
        saved = self.checkpointer.load()
        if saved is None:
            logger.info(
                "no checkpoint %r: starting with empty state", self.settings.checkpoint_name
            )
            return
        state, offsets, seen = saved
        self.engine.load(state, seen)
        self.dispatcher.load_groups()
        self._offsets = dict(offsets)
        open_keys = {(k, s) for k, s in self.engine.open_alerts()}
        self._open = {
            a.key: a
            for a in self.store.unresolved()
            if (a.key, int(a.started_at.timestamp())) in open_keys
        }
        logger.info(
            "restored checkpoint %r: %d series, %d partitions",
            self.settings.checkpoint_name,
            len(self.engine.index),
            len(offsets),
        )

    def checkpoint(self) -> None:
        """Save engine state and consumed offsets atomically."""
        with self._lock:
            agg = self.engine.aggregator
            wm = agg.watermark_s
            evict = wm - max(self.settings.windows_s) if wm is not None else None
            with self.db.transaction():  # notification groups still waiting belong to it
                self.checkpointer.save(
                    self.engine.state(),
                    dict(self._offsets),
                    new_ids=agg.new_ids,
                    evict_before_s=evict,
                    now_s=self.clock(),
                )
                self.dispatcher.save_groups()
            agg.new_ids = []
            self._last_checkpoint_s = self.clock()
            self._checkpoint_due = False

    # -- public API for the demo and the CLI -------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once consuming (for /healthz)."""
        return self._ready

    def status(self) -> str:
        """One line for /healthz."""
        s = self.stats
        return (
            f"{s['accepted']} documents, {s['series']} series, {s['open_alerts']} open alerts, "
            f"watermark {s['watermark_s']}"
        )

    @property
    def stats(self) -> dict[str, Any]:
        """Counters for the demo: documents by outcome, buckets, alerts by state."""
        with self._lock:
            st = self.engine.stats
            return {
                "accepted": st.accepted,
                "duplicate": st.duplicate,
                "late": st.late,
                "future": st.future,
                "unsupported": st.unsupported,
                "invalid": self._invalid,
                "buckets_closed": st.buckets_closed,
                "alerts": dict(st.alerts),
                "open_alerts": len(self.engine.open_alerts()),
                "series": len(self.engine.index),
                "watermark_s": self.engine.aggregator.watermark_s,
                "notifications_pending": self.dispatcher.pending,
            }

    def alerts(self) -> list[Alert]:
        """Alert transitions raised by this instance, oldest first."""
        with self._lock:
            return list(self._raised)

    def add(self, doc: ScoredDocument, source: str | None = None) -> str:
        """Count one scored document (the consumer calls this; tests and demos may too)."""
        if doc.published_at.timestamp() > self.clock() + self.settings.max_future_s:
            outcome = "future"
            self.engine.stats.future += 1
        else:
            with self._lock:
                outcome = self.engine.add(doc, source)
        self.breadth.observe(doc)
        self.metrics.documents.labels(outcome).inc()
        if outcome in ("late", "future"):
            self._rejected.append((outcome, doc.id, doc.published_at.isoformat()))
            logger.debug(
                "%s document %s published %s (watermark %s)",
                outcome,
                doc.id,
                doc.published_at.isoformat(),
                self.engine.aggregator.watermark_s,
            )
        return outcome

    def current_alerts(self) -> list[Alert]:
        """The open alerts and this instance's recent transitions (for :class:`AlertView`)."""
        with self._lock:
            return [*self._open.values(), *self._raised]

    def late_documents(self) -> list[tuple[str, str, str]]:
        """The latest late/future documents: ``(outcome, id, published_at)``, oldest first."""
        with self._lock:
            return list(self._rejected)

    def _report_rejected(self) -> None:
        """One warning per evaluation that saw late or future documents (not one per document)."""
        seen = self.engine.stats.late + self.engine.stats.future
        new, self._rejected_reported = seen - self._rejected_reported, seen
        if new > 0 and self._rejected:
            outcome, doc_id, published = self._rejected[-1]
            logger.warning(
                "%d late or future documents since the last evaluation (latest: %s %s published "
                "%s; watermark %s); they are counted, not aggregated",
                new,
                outcome,
                doc_id,
                published,
                self.engine.aggregator.watermark_s,
            )

    def evaluate_now(self) -> list[Alert]:
        """Close the buckets that became final, run the detectors, emit transitions."""
        with self._lock, self.metrics.evaluation.time():
            alerts = self.engine.advance(self._idle_watermark())
            self._emit(alerts)
            self.dispatcher.release(self.engine.aggregator.watermark_s)
            self._resend_open()
            self._report_rejected()
            self._export()
            self._checkpoint_due = True
        return alerts

    def flush(self) -> list[Alert]:
        """End of a finite replay: close every bucket, evaluate, send pending groups."""
        with self._lock, self.metrics.evaluation.time():
            alerts = self.engine.flush()
            self._emit(alerts)
            self.dispatcher.flush()
            self._export()
            self._checkpoint_due = True
        return alerts

    def end_of_input(self) -> list[Alert]:
        """History mode: the input went quiet; flush every open window and say so."""
        with self._lock:
            open_buckets = self.engine.aggregator.open_buckets
            alerts = self.flush()
            self._end.report(
                open_buckets, self.engine.aggregator.watermark_s, len(alerts), self.engine.stats
            )
        return alerts

    # -- internals -------------------------------------------------------------------------

    def _idle_watermark(self) -> int | None:
        """Wall clock minus lateness once a *live* stream went quiet (see settings)."""
        idle_after = self.settings.idle_watermark_after_s
        max_event = self.engine.aggregator.max_event_s
        if self.settings.history or idle_after is None or max_event is None:
            return None  # history: the wall clock says nothing about old documents
        now = self.clock()
        if now - self._last_record_s < idle_after:
            return None
        # Only a stream that was near real time is live; a replay of old history is not.
        if self._last_record_s - max_event > self.settings.allowed_lateness_s + idle_after:
            return None
        return int(now) - self.settings.allowed_lateness_s

    def _resend_open(self) -> None:
        now = self.clock()
        if now - self._last_resend_s < self.settings.alertmanager_resend_s:
            return
        self._last_resend_s = now
        live = [a for a in self._open.values() if self.store.silenced(a.key, now_s=now) is None]
        self.dispatcher.resend(live)

    def _emit(self, alerts: list[Alert]) -> None:
        now = self.clock()
        for i, alert in enumerate(alerts):
            alert = alerts[i] = self.breadth.enrich(alert)
            silence = self.store.silenced(alert.key, now_s=now)
            with self.db.transaction():  # the transition and its notification intents
                self.store.record(alert, silenced=silence is not None)
                if silence is None:
                    self.dispatcher.submit(alert)
            self._produce(alert)
            self._raised.append(alert)
            if alert.state == "resolved":
                self._open.pop(alert.key, None)
            else:
                self._open[alert.key] = alert
            self.metrics.transitions.labels(alert.state).inc()
            logger.info("alert %s %s: %s", alert.state, alert.key, alert.summary)
            if silence is not None:
                self.dispatcher.count_silenced(alert)

    _producer: KafkaProducer | None = None

    def _produce(self, alert: Alert) -> None:
        if self._producer is None:
            return
        try:
            self._producer.send(self.topics.alerts, key=alert.key.encode(), value=encode(alert))
        except KafkaError as exc:
            raise BrokerError(f"could not produce alert {alert.key}: {exc}") from exc

    def _export(self) -> None:
        self.metrics.export(
            self.engine, self.rules, stale_after_s=self.settings.stale_after_s, now_s=self.clock()
        )
        self.metrics.export_active(self._open.values())

    # -- the loop --------------------------------------------------------------------------

    def run(self, stop: StopFlag) -> None:
        """Consume until ``stop`` is set; then evaluate, checkpoint, close and return."""
        server = MetricsServer(
            self.registry,
            host=self.settings.metrics_host,
            port=self.settings.metrics_port,
            ready=lambda: self._ready,
            status=self.status,
            routes=AlertView(self.current_alerts).routes(),
        ).start()
        self.metrics_url = server.url
        try:
            self._producer = make_producer(self.kafka)
            consumer = make_consumer(
                self.kafka,
                group_id=self.settings.group_id,
                max_poll_records=self.settings.max_poll_records,
            )
        except BaseException:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None
            server.stop()
            raise
        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.add_job(
            self._scheduled_evaluation,
            "interval",
            seconds=self.settings.evaluate_interval_s,
            max_instances=1,
            coalesce=True,
        )
        self.dispatcher.start()
        feed = BreadthFeed(
            self.kafka,
            self.topics.breadth,
            self.breadth,
            dead_letter=self._dead_letter,
            registry=self.registry,
        ).start()
        try:
            logger.info("%s", describe(self.settings))
            partitions = assign_all(
                consumer,
                self.topics.scored,
                dict(self._offsets),
                stop,
                from_beginning=self.settings.from_beginning,
            )
            with self._lock:
                for p in partitions:
                    self.engine.aggregator.expect_source(str(p))
            self._idle.watch(partitions)
            scheduler.start()
            self._ready = True
            while not stop.is_set():
                self._poll_once(consumer)
                if self._checkpoint_due or (
                    self.clock() - self._last_checkpoint_s >= self.settings.checkpoint_interval_s
                ):
                    self._checkpoint_and_commit(consumer)
        finally:
            self._ready = False
            if scheduler.running:
                scheduler.shutdown(wait=True)
            feed.stop()
            self._shutdown(consumer, server)

    def _dead_letter(self, tp: TopicPartition, record: Any, exc: SchemaError) -> None:
        """Dead-letter a rejected record of any input topic (scored or breadth), counted."""
        failed_at = datetime.fromtimestamp(self.clock(), tz=UTC)
        dead_letter(
            self._producer,
            self.topics.deadletter,
            tp,
            record,
            exc,
            failed_at=failed_at,
            counter=self._deadletters,
        )

    def _scheduled_evaluation(self) -> None:
        try:
            self.evaluate_now()
        except Exception:  # the scheduler thread must survive; the next run retries
            logger.exception("scheduled evaluation failed")

    def _poll_once(self, consumer: KafkaConsumer) -> None:
        try:
            batch = consumer.poll(timeout_ms=int(self.settings.poll_timeout_s * 1000))
        except KafkaError as exc:
            raise BrokerError(f"polling {self.topics.scored} failed: {exc}") from exc
        now = self.clock()
        for tp, records in batch.items():
            for record in records:
                self._handle(tp, record)
            if records:
                self._last_record_s = now
                self._idle.seen(tp.partition, now_s=now)
                self._end.seen(now_s=now)
        for partition in self._idle.due(now_s=now):
            with self._lock:
                self.engine.aggregator.retire_source(str(partition))
        if batch:
            self._hint.check(max_event_s=self.engine.aggregator.max_event_s, now_s=now)
        if self.settings.history and self._end.due(now_s=now):
            self.end_of_input()

    def _handle(self, tp: TopicPartition, record: Any) -> None:
        try:
            doc = decode(record.value, ScoredDocument)
        except SchemaError as exc:
            self._invalid += 1
            self.metrics.documents.labels("invalid").inc()
            self._dead_letter(tp, record, exc)
        else:
            self.add(doc, source=str(tp.partition))
        with self._lock:
            self._offsets[(tp.topic, tp.partition)] = record.offset + 1

    def _checkpoint_and_commit(self, consumer: KafkaConsumer) -> None:
        if self._producer is not None:
            self._producer.flush(timeout=30)  # alerts are out before their inputs are "done"
        self.checkpoint()
        commit_offsets(consumer, dict(self._offsets))

    def _shutdown(self, consumer: KafkaConsumer, server: MetricsServer) -> None:
        try:
            self.evaluate_now()
            self._checkpoint_and_commit(consumer)
        finally:
            consumer.close()
            if self._producer is not None:
                self._producer.close(timeout=10)
                self._producer = None
            self.dispatcher.stop()
            server.stop()
            logger.info("alerting service stopped")

    def close(self) -> None:
        """Close the database (after :meth:`run` returned; the store stays readable until)."""
        self.db.close()
