"""The ``finsentinel backtest`` command: alert rules replayed on history, with a report.

Exit codes: 0 done, 2 bad input (rules, times, labels, missing archive or
file; one line on stderr), 1 an output could not be written.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["backtest", "register"]

logger = logging.getLogger(__name__)


def _fail(code: int, message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _thresholds(text: str) -> tuple[float, ...]:
    try:
        values = tuple(sorted({float(v) for v in text.split(",") if v.strip()}))
    except ValueError as exc:
        raise _fail(2, f"--thresholds {text!r} must be numbers like 0.2,0.5,0.8") from exc
    if not values or not all(0 < v <= 1 for v in values):
        raise _fail(2, "--thresholds must be in (0, 1]")
    return values


def backtest(
    rules: Annotated[Path, typer.Option(help="Rules file (YAML), as the alerts service uses.")],
    out: Annotated[Path, typer.Option(help="Output directory.")],
    start: Annotated[str | None, typer.Option("--from", help="Start (ISO-8601, UTC).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End, exclusive.")] = None,
    archive: Annotated[Path | None, typer.Option(help="Archive directory.")] = None,
    input_file: Annotated[
        Path | None, typer.Option("--input", help="Scored documents (.parquet or .csv).")
    ] = None,
    labels: Annotated[Path | None, typer.Option(help="Labeled events: series,start,end.")] = None,
    bucket: Annotated[str, typer.Option(help="Bucket length, as the live service.")] = "60s",
    seasonal: Annotated[bool, typer.Option(help="Seasonal baselines (live default).")] = True,
    thresholds: Annotated[str, typer.Option(help="Sweep thresholds.")] = "0.1,0.2,0.3,0.4,0.5,"
    "0.6,0.7,0.8,0.9,1.0",
    tolerance: Annotated[
        str, typer.Option(help="Firing after an event's end still counts.")
    ] = "30m",
    source: Annotated[list[str] | None, typer.Option(help="Archive: only this source.")] = None,
    ticker: Annotated[list[str] | None, typer.Option(help="Archive: only this ticker.")] = None,
    topic: Annotated[list[str] | None, typer.Option(help="Archive: only this Kafka topic.")] = None,
    report: Annotated[bool, typer.Option(help="Write report.html and figures.")] = True,
    max_series: Annotated[int, typer.Option(help="Series figures per rule.")] = 8,
    rescore_model: Annotated[
        Path | None, typer.Option(help="Rescore the history with this model first (slow).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Processes; rules are split among them.")] = 1,
) -> None:
    """Backtest alert rules on archived or exported history; write alerts, metrics, report."""
    from alerts.backtest.core import BacktestConfig
    from alerts.backtest.evaluate import load_labels, parse_time
    from alerts.durations import parse_duration_s
    from alerts.exceptions import InputError, RulesError
    from alerts.rules import load_rules

    if (archive is None) == (input_file is None):
        raise _fail(2, "give exactly one of --archive DIR and --input FILE")
    try:
        t0 = parse_time(start) if start else None
        t1 = parse_time(end) if end else None
        rules_file = load_rules(rules)
        events = load_labels(labels) if labels else []
        config = BacktestConfig(
            bucket_s=parse_duration_s(bucket),
            seasonal=seasonal,
            thresholds=_thresholds(thresholds),
            tolerance_s=parse_duration_s(tolerance),
        )
    except (InputError, RulesError, ValueError) as exc:
        raise _fail(2, str(exc)) from exc
    if t0 and t1 and t1 <= t0:
        raise _fail(2, "--to must be after --from")
    filters = {"sources": source or [], "tickers": ticker or [], "topics": topic or []}
    run = {
        "archive": archive, "input": input_file, "t0": t0, "t1": t1, "filters": filters,
        "workers": workers,
    }  # fmt: skip
    _run(rules_file, config, events, run, out, report, max_series, rescore_model)


def _source(run: dict[str, Any]) -> tuple[Any, int | None]:
    """A picklable ``() -> (date, table) iterator`` over the input, and its day count if known."""
    from functools import partial

    from alerts.backtest.inputs import archive_tables, file_tables
    from stream.history.query import HistoryQuery, archive_dates

    if run["archive"] is not None:
        root = Path(run["archive"])
        query = HistoryQuery("scored", run["t0"], run["t1"])
        days = len(query.dates(archive_dates(root, "scored")))
        return partial(archive_tables, root, start=run["t0"], end=run["t1"], **run["filters"]), days
    return partial(file_tables, Path(run["input"]), start=run["t0"], end=run["t1"]), None


def _run(
    rules: Any,
    config: Any,
    events: list[Any],
    run: dict[str, Any],
    out: Path,
    report: bool,
    max_series: int,
    rescore_model: Path | None,
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from alerts.backtest.core import Backtest, plot_bin_for
    from alerts.exceptions import InputError
    from stream.contracts.errors import FinSentinelError
    from stream.history.query import HistoryError

    span = (run["t1"] - run["t0"]).total_seconds() if run["t0"] and run["t1"] else None
    if span is not None:
        config = _with_bin(config, plot_bin_for(span, config.bucket_s))
    started = time.perf_counter()
    try:
        source, days = _source(run)
        if run["workers"] > 1 and not rescore_model:
            result = _parallel(rules, config, events, source, run["workers"])
        else:
            rescore = _rescorer(rescore_model) if rescore_model else None
            bt = Backtest(rules, config, events=events)
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
            with Progress(*columns, TimeElapsedColumn()) as bar:
                task = bar.add_task("backtest: days", total=days)
                for date, table in source():
                    bt.feed(rescore(table) if rescore else table)
                    bar.update(task, advance=1, description=f"backtest: {date}")
            result = bt.finish()
    except (InputError, HistoryError) as exc:
        raise _fail(2, str(exc)) from exc
    except FinSentinelError as exc:
        raise _fail(1 if exc.retriable else 2, str(exc)) from exc
    elapsed = time.perf_counter() - started
    _write(result, out, report, max_series)
    typer.echo(
        f"backtest: {result.documents:,} documents, {result.buckets:,} buckets, "
        f"{len(result.alerts):,} alert events in {elapsed:.1f} s; outputs in {out}"
    )
    if result.documents == 0:
        typer.echo(
            "warning: no scored documents in the range: check --from/--to (UTC) and the "
            "archive or file; every rule's outputs are empty",
            err=True,
        )
    for rule in rules.rules if result.events else ():
        m = result.metrics(rule)
        typer.echo(
            f"  {rule.name}: precision {m.precision:.2f} recall {m.recall:.2f} "
            f"mean delay {m.mean_delay_s:.0f} s, {m.false_alarms_per_day:.2f} false alarms/day"
        )


def _parallel(rules: Any, config: Any, events: list[Any], source: Any, workers: int) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from alerts.backtest.parallel import run_parallel

    parts = min(workers, len(rules.rules))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn()) as bar:
        task = bar.add_task(f"backtest: {parts} processes", total=parts)
        return run_parallel(
            rules, config, events, source, workers=workers,
            done=lambda n: bar.update(task, completed=n),
        )  # fmt: skip


def _with_bin(config: Any, bin_buckets: int) -> Any:
    from dataclasses import replace

    return replace(config, plot_bin_buckets=bin_buckets)


def _write(result: Any, out: Path, report: bool, max_series: int) -> None:
    from alerts.backtest.outputs import write_outputs
    from alerts.backtest.report import write_report

    try:
        write_outputs(result, out)
        if report:
            write_report(result, out, title=f"backtest to {out.name}", max_series=max_series)
    except OSError as exc:
        raise _fail(1, f"cannot write outputs to {out}: {exc}") from exc


def _rescorer(model_dir: Path) -> Any:
    """A function: day table -> the same documents with ``model_dir``'s scores (as-is)."""
    import pyarrow as pa

    from stream.contracts.schemas import RawDocument
    from stream.history.replay import Rescorer
    from stream.history.schema import to_row

    rescorer = Rescorer.load(model_dir)

    def rescore(table: pa.Table) -> pa.Table:
        docs = [
            RawDocument(
                id=r["id"], source=r["source"], kind="news", url=r.get("url"),
                title=r.get("title") or "", body=r.get("body") or "",
                tickers=r["tickers"] or [], published_at=r["published_at"],
                fetched_at=r["published_at"],
            )
            for r in table.to_pylist()
        ]  # fmt: skip
        scored = [s for s in rescorer.rescore(docs) if s is not None]
        rows = [{k: to_row(s)[k] for k in table.schema.names} for s in scored]
        return pa.Table.from_pylist(rows, schema=table.schema)

    return rescore


def register(app: typer.Typer) -> None:
    """Add ``backtest`` to the root ``finsentinel`` app."""
    app.command("backtest")(backtest)
