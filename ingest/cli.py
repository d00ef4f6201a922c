"""``finsentinel crawl`` and ``finsentinel sources check``.

* ``finsentinel crawl [--sources FILE]``: run the scheduled crawler service.
* ``finsentinel crawl --once SOURCE``: one pass of one source, produced to
  Kafka, with what it found printed as a table. A one-shot pass (cron, a
  Kubernetes CronJob) has no ``/metrics`` to scrape: ``--metrics-file PATH``
  writes its metrics in Prometheus text format for node_exporter's textfile
  collector, with the pass's completion time and failed sources.
* ``finsentinel sources check [--sources FILE]``: validate the sources file
  and probe each source (reachable, robots allowed, parses, N entries);
  nothing is produced.

``crawl`` needs ``KAFKA_BOOTSTRAP_SERVERS`` unless ``--embedded-broker`` asks
for a throw-away in-memory broker (local trials only).

``crawl`` (and ``python -m ingest``) is launched by :func:`stream.runtime.launch`.
Exit codes: 0 success, 1 a source or the broker failed, 2 invalid settings
(no bootstrap servers included) or sources file (one line on stderr, no
traceback).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stream.runtime import (
    EmbeddedBrokerOpt,
    JsonLogsOpt,
    LogLevelOpt,
    LogOptions,
    exit_with,
    launch,
    load_settings,
    topic_names,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from ingest.crawler import IngestReport
    from ingest.settings import IngestSettings
    from stream.runtime import Launch

__all__ = ["check", "crawl", "register"]

logger = logging.getLogger(__name__)

SourcesOpt = Annotated[
    Path | None,
    typer.Option("--sources", help="Sources YAML (default: FINSENTINEL_INGEST_SOURCES_FILE)."),
]
PrefixOpt = Annotated[
    str | None, typer.Option(envvar="FINSENTINEL_TOPIC_PREFIX", help="Topic name prefix.")
]


def _fail(code: int, message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _settings(sources: Path | None) -> IngestSettings:
    from ingest.settings import IngestSettings
    from stream.contracts.errors import ConfigError

    try:
        return load_settings(IngestSettings, sources_file=sources)
    except ConfigError as exc:
        raise _fail(2, str(exc)) from None


def crawl(
    ctx: typer.Context,
    sources: SourcesOpt = None,
    once: Annotated[
        str | None, typer.Option("--once", help="Run one pass of this source and exit.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Port of /metrics and /healthz (0: any).")
    ] = None,
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            help="With --once: write the pass's metrics to this file in Prometheus text "
            "format (for node_exporter's textfile collector), replaced atomically.",
            dir_okay=False,
        ),
    ] = None,
    topic_prefix: PrefixOpt = None,
    embedded_broker: EmbeddedBrokerOpt = False,
    log_level: LogLevelOpt = None,
    json_logs: JsonLogsOpt = False,
) -> None:
    """Crawl the configured sources into Kafka (scheduled), or one source once."""
    from ingest.exceptions import SourceConfigError

    if metrics_file is not None and once is None:
        raise _fail(2, "--metrics-file is for --once: the service serves /metrics")

    def load() -> tuple[IngestSettings, list[Any]]:
        from ingest.config import load_sources
        from ingest.settings import IngestSettings

        settings = load_settings(IngestSettings, sources_file=sources, metrics_port=metrics_port)
        spec_file = load_sources(settings.sources_file)
        return settings, [spec_file.get(once)] if once else spec_file.enabled

    code = launch(
        "crawler",
        load,
        (lambda job: _run_once(job, metrics_file)) if once else _serve,
        logs=LogOptions.of(ctx, log_level, json_logs),
        topics=topic_names(topic_prefix),
        allow_embedded=embedded_broker,
        input_errors=(SourceConfigError,),
    )
    exit_with(code)


def _run_once(job: Launch[tuple[IngestSettings, list[Any]]], metrics_file: Path | None) -> int:
    from prometheus_client import CollectorRegistry

    from ingest.service import run_once

    settings, specs = job.settings
    assert job.kafka is not None
    registry = CollectorRegistry()
    report = run_once(
        specs, kafka=job.kafka, topics=job.topics, settings=settings, registry=registry
    )
    _print_report(report)
    if metrics_file is not None:
        _write_metrics(metrics_file, registry, specs[0].name, report)
    return 1 if report.failed else 0


def _write_metrics(
    path: Path, registry: CollectorRegistry, source: str, report: IngestReport
) -> None:
    """The pass's metrics plus when it ended and whether it failed, every sample labelled
    ``crawl_source``: one file per source in one textfile directory never collides (a
    series without a ``source`` label, such as the dead letters, would otherwise)."""
    import time

    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    Gauge(
        "finsentinel_ingest_last_run_timestamp_seconds",
        "When the last one-shot pass (crawl --once) ended, Unix time.",
        registry=registry,
    ).set(time.time())
    Gauge(
        "finsentinel_ingest_last_run_failed",
        "1 when the last one-shot pass failed or was not fully acknowledged.",
        registry=registry,
    ).set(1 if source in report.failed else 0)
    labelled = CollectorRegistry(auto_describe=False)
    labelled.register(_Labelled(registry, "crawl_source", source))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), labelled)  # a temporary file renamed over the old one
    logger.info("metrics of the pass written to %s", path)


class _Labelled:
    """A collector: every sample of ``registry`` with one more label."""

    def __init__(self, registry: CollectorRegistry, name: str, value: str) -> None:
        self.registry, self.name, self.value = registry, name, value

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.metrics_core import Metric

        for family in self.registry.collect():
            out = Metric(family.name, family.documentation, family.type, family.unit)
            for s in family.samples:
                labels = {**s.labels, self.name: self.value}
                out.add_sample(s.name, labels, s.value, s.timestamp, s.exemplar)
            yield out


def _serve(job: Launch[tuple[IngestSettings, list[Any]]]) -> None:
    from ingest.service import IngestService

    settings, specs = job.settings
    assert job.kafka is not None
    IngestService(settings, specs, kafka=job.kafka, topics=job.topics).run(job.stop)


def _print_report(report: IngestReport) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=report.summary(), show_lines=False)
    for column in ("source", "kind", "published (UTC)", "tickers", "copies", "novelty", "title"):
        table.add_column(column, overflow="fold")
    for doc in report.documents[:200]:
        table.add_row(
            doc.source,
            doc.kind,
            doc.published_at.strftime("%Y-%m-%d %H:%M"),
            " ".join(doc.tickers[:4]),
            str(doc.copies),
            "" if doc.novelty is None else f"{doc.novelty:.2f}",
            (doc.title or doc.body)[:90],
        )
    console = Console()
    console.print(table)
    for name, error in report.failed.items():
        console.print(f"[red]{name}[/red]: {error}")


def check(sources: SourcesOpt = None) -> None:
    """Validate the sources file and probe every source without producing anything."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ingest.config import load_sources
    from ingest.exceptions import SourceConfigError
    from ingest.probe import probe_sources

    settings = _settings(sources)
    try:
        spec_file = load_sources(settings.sources_file)
    except SourceConfigError as exc:
        raise _fail(2, str(exc)) from None
    results = probe_sources(settings, spec_file.sources)
    table = Table(title=f"{settings.sources_file}: {len(results)} sources")
    for column in ("source", "kind", "status", "entries", "detail"):
        table.add_column(column, overflow="fold")
    for r in results:
        colour = "green" if r.ok else ("yellow" if r.status == "disabled" else "red")
        status = f"[{colour}]{r.status}[/{colour}]"
        table.add_row(r.name, r.kind, status, str(r.entries), escape(r.detail))
    Console().print(table)
    if any(not r.ok and r.status != "disabled" for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``crawl`` and ``sources check`` to the root ``finsentinel`` app."""
    app.command("crawl")(crawl)
    sources_app = typer.Typer(help="Inspect the crawler's sources file.", no_args_is_help=True)
    sources_app.command("check")(check)
    app.add_typer(sources_app, name="sources")
