"""``finsentinel demo``: the whole pipeline on the embedded broker, in one process.

The demo starts the embedded Kafka-compatible broker (or uses
``KAFKA_BOOTSTRAP_SERVERS`` with topics under a fresh ``finsentinel-demo-*``
prefix, so it never mixes with production topics), starts the scorer and the
alerts service in threads, crawls the bundled corpus once through the
local-files source, waits until every document is scored and aggregated,
prints what the alerts service raised and a summary table, and stops cleanly.
All services share one Prometheus registry served on one ``/metrics``.

This module is a composition root: it imports the ingest and alerts packages.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from finsentinel.demo_corpus import COMPANIES, DEMO_ALIASES, DEMO_DATA_DIR
from stream.contracts.errors import FinSentinelError
from stream.contracts.schemas import Alert
from stream.contracts.topics import TopicNames
from stream.http import MetricsServer
from stream.kafka import KafkaSettings, ensure_topics, kafka_connection
from stream.runtime import StopFlag

__all__ = ["DemoError", "DemoOptions", "DemoSummary", "run_demo"]

logger = logging.getLogger(__name__)


class DemoError(FinSentinelError):
    """The demo pipeline did not finish (a stage stalled or failed)."""


@dataclass(frozen=True)
class DemoOptions:
    """What the demo runs on; every field has a working default."""

    corpus_dir: Path = DEMO_DATA_DIR
    model_dir: Path | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9100
    #: Keep the services and /metrics up after the corpus is done, until Ctrl+C/SIGTERM.
    keep_running: bool = False
    #: Give up if the pipeline has not drained the corpus after this long.
    timeout_s: float = 300.0
    #: Event-time lateness of the alerts service's history mode for the corpus (it spans a
    #: few hours; the default is history mode's own, the longest window).
    backfill_lateness_s: int = 24 * 3600
    state_dir: Path | None = None


@dataclass
class DemoSummary:
    """What the demo did, for the summary table and for tests."""

    documents_in: int = 0
    duplicates: int = 0
    scored: int = 0
    dead_lettered: int = 0
    alerts: list[Alert] = field(default_factory=list)
    metrics_url: str = ""
    model: str = ""
    provider: str = ""
    seconds: float = 0.0

    @property
    def firing(self) -> list[Alert]:
        """Alerts that fired (first notification of a condition)."""
        return [a for a in self.alerts if a.state == "firing"]


class _Threads:
    """Services running in daemon threads, stopped together."""

    def __init__(self) -> None:
        self.stop = StopFlag()
        self._threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, name: str, run: Callable[[StopFlag], None]) -> None:
        def target() -> None:
            try:
                run(self.stop)
            except BaseException as exc:
                logger.exception("%s failed", name)
                self.errors.append(exc)
                self.stop.set()

        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def join(self, timeout_s: float = 30.0) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout_s)


def _wait(
    done: Callable[[], bool], threads: _Threads, deadline: float, what: str, tick_s: float = 0.1
) -> None:
    while not done():
        if threads.errors:
            raise DemoError(f"a service failed while {what}: {threads.errors[0]}")
        if time.monotonic() > deadline:
            raise DemoError(f"timed out while {what}")
        threads.stop.wait(tick_s)


@contextmanager
def _state_dir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="finsentinel-demo-") as tmp:
        yield Path(tmp)


def run_demo(
    options: DemoOptions,
    *,
    kafka: KafkaSettings | None = None,
    console: Console | None = None,
    until: StopFlag | None = None,
) -> DemoSummary:
    """Run the demo; return its summary. ``until`` ends a ``keep_running`` demo."""
    console = console or Console()
    started = time.monotonic()
    # Only without a cluster: with one, kafka_connection would warn about --embedded-broker.
    embedded = kafka is None or not kafka.bootstrap_servers
    with (
        _state_dir(options.state_dir) as state,
        kafka_connection(
            kafka, allow_embedded=embedded, broker_log=state / "broker.log"
        ) as settings,
    ):
        topics = (
            TopicNames()
            if embedded
            else TopicNames.with_prefix(f"finsentinel-demo-{datetime.now(UTC):%Y%m%d%H%M%S}")
        )
        ensure_topics(settings, topics.all, partitions=3)
        console.print(
            f"[bold]Kafka[/]: {'embedded Tansu broker at ' if embedded else ''}"
            f"{settings.bootstrap_servers}; topics {topics.raw_news}, {topics.raw_comments} "
            f"-> {topics.scored} -> {topics.alerts}"
        )

        def show(summary: DemoSummary) -> None:
            summary.seconds = time.monotonic() - started
            _print_summary(summary, console)

        return _run_pipeline(options, settings, topics, state, console, until, show)


def _run_pipeline(
    options: DemoOptions,
    kafka: KafkaSettings,
    topics: TopicNames,
    state: Path,
    console: Console,
    until: StopFlag | None,
    show: Callable[[DemoSummary], None],
) -> DemoSummary:
    """Run the services over the corpus; ``show`` the summary as soon as it is known (with
    ``keep_running``, before waiting for Ctrl+C)."""
    from alerts.service import AlertService
    from alerts.settings import AlertSettings
    from alerts.view import AlertView
    from ingest.config import FilesSpec
    from ingest.metrics import IngestMetrics
    from ingest.service import run_once
    from ingest.settings import IngestSettings
    from stream.scorer.service import ScorerService
    from stream.scorer.settings import ScorerSettings

    registry = CollectorRegistry()
    spec = FilesSpec(name="demo-wire", kind="files", path=options.corpus_dir)
    # Before the slow start (model, consumer groups): the crawl counters are scraped at
    # zero first, so a dashboard's rate() sees the corpus arrive.
    ingest_metrics = IngestMetrics([spec.name], registry=registry)
    scorer = ScorerService(
        ScorerSettings(model_dir=options.model_dir, metrics_port=0, group_id="finsentinel-demo"),
        kafka=kafka,
        topics=topics,
        registry=registry,
    )
    # The corpus is a back-fill (days old, scored out of order by the scorer's partition
    # merge): history mode, as `finsentinel alert --history` (docs/history.md). The demo
    # flushes itself once everything is aggregated, without waiting for quiet input.
    alerter = AlertService(
        AlertSettings(
            metrics_port=0,
            db_path=state / "alerts.sqlite",
            history=True,
            history_lateness_s=options.backfill_lateness_s,
            # The demo's issuers form the watch-list, so Grafana's per-ticker view has data.
            watch_tickers=tuple(ticker for _name, ticker, _sector in COMPANIES),
        ),
        kafka=kafka,
        topics=topics,
        registry=registry,
    )
    server = MetricsServer(
        registry,
        host=options.metrics_host,
        port=options.metrics_port,
        ready=lambda: scorer.ready and alerter.ready,
        status=lambda: f"scorer: {scorer.status()}; alerts: {alerter.status()}",
        routes=AlertView(alerter.current_alerts).routes(),
    ).start()
    console.print(f"[bold]Metrics[/]: {server.url}/metrics  (health: {server.url}/healthz)")
    threads = _Threads()
    summary = DemoSummary(metrics_url=f"{server.url}/metrics")
    try:
        threads.start("scorer", scorer.run)
        threads.start("alerts", alerter.run)
        deadline = time.monotonic() + options.timeout_s
        with console.status("loading the model and joining the consumer groups"):
            _wait(lambda: scorer.ready and alerter.ready, threads, deadline, "starting services")
        assert scorer.classifier is not None
        card = scorer.classifier.card
        summary.model = f"{card.name} {card.version} ({scorer.classifier.variant})"
        summary.provider = scorer.classifier.provider
        console.print(f"[bold]Model[/]: {summary.model} on {summary.provider}")
        report = run_once(
            [spec],
            kafka=kafka,
            topics=topics,
            metrics=ingest_metrics,
            settings=IngestSettings(state_dir=state / "ingest", alias_files=[DEMO_ALIASES]),
        )
        summary.documents_in = report.produced
        summary.duplicates = sum(report.duplicates.values())
        ingest_rejects = sum(report.rejected.values())
        if report.failed:
            raise DemoError(f"the crawler could not read the corpus: {report.failed}")
        _follow(scorer, alerter, summary.documents_in, threads, deadline, console)
        summary.alerts = alerter.alerts()
        summary.scored = scorer.stats.scored
        summary.dead_lettered = ingest_rejects + scorer.stats.dead_lettered
        show(summary)
        if options.keep_running:
            console.print("[bold]Services keep running[/]: press Ctrl+C to stop.")
            (until or threads.stop).wait(10**9)
    finally:
        threads.join()
        server.stop()
    if threads.errors:
        raise DemoError(f"a service failed: {threads.errors[0]}")
    return summary


def _follow(
    scorer: object,
    alerter: object,
    total: int,
    threads: _Threads,
    deadline: float,
    console: Console,
) -> None:
    """Show progress until every produced document is scored and aggregated, then flush the
    alerts service (end of the corpus: every bucket closes, the detectors decide) and show
    how many alerts that raised."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        scored = progress.add_task("scored", total=total)
        aggregated = progress.add_task("aggregated", total=total)

        def raised() -> str:
            return f"aggregated ({alerter.stats['alerts'].get('firing', 0)} alerts raised)"  # type: ignore[attr-defined]

        def done() -> bool:
            s = scorer.stats  # type: ignore[attr-defined]
            a = alerter.stats  # type: ignore[attr-defined]
            outcomes = ("accepted", "duplicate", "late", "future", "invalid", "unsupported")
            seen = sum(a[k] for k in outcomes)
            progress.update(scored, completed=s.scored + s.dead_lettered)
            progress.update(aggregated, completed=seen, description=raised())
            return s.scored + s.dead_lettered >= total and seen >= s.scored

        _wait(done, threads, deadline, "scoring and aggregating the corpus")
        # A back-fill raises its alerts when its buckets close, at the end of the input.
        alerter.flush()  # type: ignore[attr-defined]
        progress.update(aggregated, description=raised())


def _print_summary(summary: DemoSummary, console: Console) -> None:
    for alert in summary.firing:
        console.print(
            f"\n[bold red]ALERT[/] \\[{alert.severity}] {escape(alert.summary)}\n"
            f"  rule {alert.rule}, {alert.series_kind} {alert.series}, score {alert.score:.2f}, "
            f"observed {alert.observed:.2f} vs baseline {alert.baseline:.2f}"
        )
        for ev in alert.evidence[:3]:
            console.print(f"  - {escape(ev.title or ev.id)}  ({ev.sentiment} {ev.confidence:.2f})")
    table = Table(title="FinSentinel demo")
    table.add_column("stage")
    table.add_column("count", justify="right")
    table.add_row("documents in (after dedup)", str(summary.documents_in))
    table.add_row("duplicates folded", str(summary.duplicates))
    table.add_row("scored", str(summary.scored))
    table.add_row("dead-lettered", str(summary.dead_lettered))
    table.add_row("alerts (firing)", str(len(summary.firing)))
    table.add_row("alert transitions", str(len(summary.alerts)))
    console.print(table)
    console.print(f"model {summary.model} on {summary.provider}; {summary.seconds:.1f} s")
