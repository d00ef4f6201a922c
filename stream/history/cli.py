"""The ``finsentinel archive`` and ``finsentinel replay`` commands.

``archive`` runs the Parquet archive sink until SIGTERM/Ctrl+C (settings:
``FINSENTINEL_ARCHIVE_*``, Kafka: ``KAFKA_*``). ``replay`` reads a time range
from Kafka (``--from-kafka``) or the archive (``--archive DIR``) and writes it
to a topic at a chosen speed and/or to a Parquet file, optionally rescored.
Both need ``KAFKA_BOOTSTRAP_SERVERS`` whenever they touch Kafka, unless
``--embedded-broker`` asks for a throw-away in-memory broker (local trials).
Exit codes: 0 done, 2 bad input or settings (one line on stderr), 1 the broker,
a dead letter or a file failed (one line on stderr naming it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
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
    from stream.history.replay import ReplayItem
    from stream.runtime import Launch, StopFlag

__all__ = ["archive", "register", "replay_command"]

logger = logging.getLogger(__name__)


def _fail(code: int, message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _time(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise _fail(2, f"{name} {text!r} is not an ISO-8601 time (e.g. 2026-01-05T14:00Z)") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def archive(
    ctx: typer.Context,
    root_dir: Annotated[Path | None, typer.Option(help="Archive directory.")] = None,
    group_id: Annotated[str | None, typer.Option(help="Consumer group of the sink.")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="/metrics port (0: any).")] = None,
    topic_prefix: Annotated[
        str | None, typer.Option(envvar="FINSENTINEL_TOPIC_PREFIX", help="Topic name prefix.")
    ] = None,
    embedded_broker: EmbeddedBrokerOpt = False,
    log_level: LogLevelOpt = None,
    json_logs: JsonLogsOpt = False,
) -> None:
    """Archive raw and scored documents from Kafka into Parquet files (until Ctrl+C).

    Exits 1 with one line naming the file when a file cannot be written (nothing
    past its records is committed: the next run archives them).
    """
    from stream.history.settings import ArchiveSettings

    def run(job: Launch[ArchiveSettings]) -> None:
        from stream.history.archive import ArchiveSink

        assert job.kafka is not None
        ArchiveSink(job.settings, kafka=job.kafka, topics=job.topics).run(job.stop)

    given = {"root_dir": root_dir, "group_id": group_id, "metrics_port": metrics_port}
    code = launch(
        "archive",
        lambda: load_settings(ArchiveSettings, **given),
        run,
        logs=LogOptions.of(ctx, log_level, json_logs),
        topics=topic_names(topic_prefix),
        allow_embedded=embedded_broker,
    )
    exit_with(code)


def _kafka_items(
    kafka: Any, topics: list[str], start: datetime, end: datetime, window: int, filters: Any
) -> Iterator[ReplayItem]:
    from stream.contracts.errors import SchemaError
    from stream.history.replay import ReorderBuffer
    from stream.history.sources import decode_record, kafka_time_range

    buffer = ReorderBuffer(window)
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    for record in kafka_time_range(kafka, topics, start_ms, end_ms):
        try:
            doc = decode_record(record)
        except SchemaError as exc:
            logger.warning(
                "skipping %s[%d]@%d: %s", record.topic, record.partition, record.offset, exc
            )
            continue
        if filters(doc):
            yield from buffer.push(record.timestamp_ms, doc, record.key)
    yield from buffer.drain()
    if buffer.late:
        logger.warning("%d records were later than the reorder window allowed", buffer.late)


def _archive_items(root: Path, query: Any) -> Iterator[ReplayItem]:
    from stream.history.replay import ReplayItem
    from stream.history.sources import archive_documents

    for i, doc in enumerate(archive_documents(root, query)):
        yield ReplayItem(int(doc.published_at.timestamp() * 1000), i, doc, None)


def _filters(sources: list[str], tickers: list[str]) -> Any:
    def keep(doc: Any) -> bool:
        if sources and doc.source not in sources:
            return False
        return not tickers or bool(set(doc.tickers) & set(tickers))

    return keep


def replay_command(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--from", help="Start (ISO-8601, UTC if no offset).")],
    end: Annotated[str, typer.Option("--to", help="End, exclusive.")],
    from_kafka: Annotated[bool, typer.Option("--from-kafka", help="Read Kafka by time.")] = False,
    archive_dir: Annotated[Path | None, typer.Option("--archive", help="Read the archive.")] = None,
    kind: Annotated[str, typer.Option(help="Archive documents: scored or raw.")] = "scored",
    topic: Annotated[list[str] | None, typer.Option(help="Source topic (repeatable).")] = None,
    source: Annotated[list[str] | None, typer.Option(help="Only this source.")] = None,
    ticker: Annotated[list[str] | None, typer.Option(help="Only documents on this ticker.")] = None,
    to_topic: Annotated[str | None, typer.Option(help="Write to this Kafka topic.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write a Parquet file.")] = None,
    speed: Annotated[str, typer.Option(help="1x, 60x, ... or max.")] = "max",
    max_gap: Annotated[float | None, typer.Option(help="Cap one gap at this many s.")] = None,
    keep_timestamps: Annotated[bool, typer.Option(help="Stamp records with event time.")] = False,
    rescore_model: Annotated[Path | None, typer.Option(help="Rescore with this model.")] = None,
    reorder_window: Annotated[int, typer.Option(help="Kafka reorder buffer.")] = 10_000,
    topic_prefix: Annotated[
        str | None, typer.Option(envvar="FINSENTINEL_TOPIC_PREFIX", help="Topic name prefix.")
    ] = None,
    embedded_broker: EmbeddedBrokerOpt = False,
    log_level: LogLevelOpt = None,
    json_logs: JsonLogsOpt = False,
) -> None:
    """Replay history from Kafka or the archive into a topic and/or a Parquet file."""
    from stream.history.replay import parse_speed

    t0, t1 = _time(start, "--from"), _time(end, "--to")
    if t1 <= t0:
        raise _fail(2, "--to must be after --from")
    if from_kafka == (archive_dir is not None):
        raise _fail(2, "give exactly one of --from-kafka and --archive DIR")
    if to_topic is None and out is None:
        raise _fail(2, "give --to-topic NAME and/or --out FILE.parquet")
    if kind not in ("scored", "raw"):
        raise _fail(2, "--kind must be scored or raw")
    try:
        pace = parse_speed(speed)
    except ValueError as exc:
        raise _fail(2, str(exc)) from exc
    opts = {
        "t0": t0, "t1": t1, "from_kafka": from_kafka, "archive_dir": archive_dir, "kind": kind,
        "topics": topic or [], "sources": source or [], "tickers": ticker or [],
        "to_topic": to_topic, "out": out, "speed": pace, "max_gap": max_gap,
        "keep_timestamps": keep_timestamps, "rescore_model": rescore_model,
        "reorder_window": reorder_window, "topic_prefix": topic_prefix,
        "embedded_broker": embedded_broker,
    }  # fmt: skip
    exit_with(_run_replay(opts, LogOptions.of(ctx, log_level, json_logs)))


def _run_replay(o: dict[str, Any], logs: LogOptions) -> int:
    from models.exceptions import ModelError
    from stream.history.query import HistoryError

    names = topic_names(o["topic_prefix"])
    o["scored_topic"] = names.scored
    return launch(
        "replay",
        lambda: o,
        _replay,
        logs=logs,
        topics=names,
        ensure=None,
        kafka=o["from_kafka"] or o["to_topic"] is not None,
        allow_embedded=o["embedded_broker"],
        input_errors=(HistoryError, ModelError),
    )


def _replay(job: Launch[dict[str, Any]]) -> None:
    from stream.history.query import HistoryQuery

    o, kafka = job.settings, job.kafka
    if o["archive_dir"] is not None:
        query = HistoryQuery(
            o["kind"], o["t0"], o["t1"], tuple(o["sources"]), tuple(o["tickers"]),
            tuple(o["topics"]),
        )  # fmt: skip
        items = _archive_items(o["archive_dir"], query)
    else:
        topics = o["topics"] or [job.topics.scored]
        keep = _filters(o["sources"], o["tickers"])
        items = _kafka_items(kafka, topics, o["t0"], o["t1"], o["reorder_window"], keep)
    _drive(o, items, kafka, job.stop)


def _drive(o: dict[str, Any], items: Iterator[ReplayItem], kafka: Any, flag: StopFlag) -> None:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from stream.history.replay import Pacer, ParquetSink, Rescorer, TopicSink, replay
    from stream.kafka import make_producer

    rescorer = Rescorer.load(o["rescore_model"]) if o["rescore_model"] else None
    topic_sink = None
    if o["to_topic"] is not None:
        topic_sink = TopicSink(
            make_producer(kafka), o["to_topic"], keep_timestamps=o["keep_timestamps"]
        )
    parquet_sink = None
    if o["out"] is not None:
        if o["from_kafka"]:  # the raw topics hold raw documents
            scored = all(t == o["scored_topic"] for t in o["topics"] or [o["scored_topic"]])
        else:
            scored = o["kind"] == "scored"
        parquet_sink = ParquetSink(o["out"], scored=scored, rescored=rescorer is not None)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("replaying: 0 documents", total=None)
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            bar.update(task, description=f"replaying: {done[0]:,} documents")

        pacer = Pacer(o["speed"], max_gap_s=o["max_gap"])
        stats = replay(
            items, pacer=pacer, topic_sink=topic_sink, parquet_sink=parquet_sink,
            rescorer=rescorer, should_stop=flag.is_set, progress=tick,
        )  # fmt: skip
    if topic_sink is not None:
        topic_sink.close()
        topic_sink.producer.close()
    if parquet_sink is not None:
        parquet_sink.close()
    typer.echo(
        f"replayed {stats.read} documents: {stats.sent} sent, {stats.written} written, "
        f"{stats.rescored} rescored ({stats.rescore_failed} failed)"
    )
    if stats.read == 0:
        where = "the topics' retention" if o["from_kafka"] else "the archive's dates"
        typer.echo(
            f"warning: nothing to replay between {o['t0']:%Y-%m-%dT%H:%MZ} and "
            f"{o['t1']:%Y-%m-%dT%H:%MZ}: check --from/--to (UTC) against {where}",
            err=True,
        )


def register(app: typer.Typer) -> None:
    """Add ``archive`` and ``replay`` to the root ``finsentinel`` app."""
    app.command("archive")(archive)
    app.command("replay")(replay_command)
