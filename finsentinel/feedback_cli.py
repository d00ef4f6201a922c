"""``finsentinel feedback ...``: record analysts' corrections, export them, publish them.

* ``add DOC_ID --sentiment negative [--topic Earnings] [--note ...] [--text ...]``
* ``import FILE.csv|jsonl|parquet [--skip-bad]``: rows with ``doc_id`` and
  ``sentiment`` and/or ``topic`` (``text``, ``note`` optional);
* ``export OUT.parquet|jsonl|csv``, ``list``, ``publish [--pending|--all]``.

A correction refers to the document's text as the model scored it: given with
``--text`` (or a ``text`` column), or else found in the Parquet archive
(``--archive``, default the archive sink's ``FINSENTINEL_ARCHIVE_ROOT_DIR``)
with the model that scored it. Labels are checked against the model card
(``--model``, default the shipped model). Each correction is stored first
(``--store``, default ``FINSENTINEL_FEEDBACK_STORE_PATH``), then published to
the ``feedback`` topic when a broker is configured (``--bootstrap-servers`` or
``KAFKA_BOOTSTRAP_SERVERS``). Exit codes: 0 done, 2 bad input (every bad row
named, nothing stored), 1 stored but not published, or the broker failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from models.feedback import Correction, Draft, FeedbackStore, LabelSets
    from models.feedback.settings import FeedbackSettings

__all__ = ["feedback_app", "register"]

feedback_app = typer.Typer(
    help="Record analysts' corrections of scored documents (for retraining), "
    "export and publish them.",
    no_args_is_help=True,
)

StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Feedback store (SQLite) [default: FINSENTINEL_FEEDBACK_STORE_PATH, "
        "else var/feedback.sqlite].",
    ),
]
ArchiveOpt = Annotated[
    Path | None,
    typer.Option(
        "--archive",
        help="Archive to find the text as scored in [default: FINSENTINEL_FEEDBACK_ARCHIVE_DIR, "
        "else the archive sink's FINSENTINEL_ARCHIVE_ROOT_DIR, else archive].",
    ),
]
ModelOpt = Annotated[
    Path | None,
    typer.Option("--model", help="Model directory whose labels are allowed [default: shipped]."),
]
BootstrapOpt = Annotated[
    str | None,
    typer.Option(
        "--bootstrap-servers",
        help="Kafka to publish to [default: KAFKA_BOOTSTRAP_SERVERS; neither: store only].",
    ),
]
PrefixOpt = Annotated[
    str | None,
    typer.Option(envvar="FINSENTINEL_TOPIC_PREFIX", help="Topic name prefix."),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Bad input and settings: one line, exit 2; an unreachable broker: one line, exit 1."""
    from models.exceptions import ModelError
    from stream.contracts.errors import BrokerError, ConfigError
    from stream.history.query import HistoryError

    try:
        yield
    except (ConfigError, HistoryError, ModelError) as exc:
        raise _fail(str(exc)) from exc
    except BrokerError as exc:
        raise _fail(str(exc), 1) from exc


def _settings(store: Path | None, archive: Path | None = None, model: Path | None = None) -> Any:
    from models.feedback.settings import FeedbackSettings
    from stream.settings import load_settings

    return load_settings(FeedbackSettings, store_path=store, archive_dir=archive, model_dir=model)


def _archive_dir(settings: FeedbackSettings) -> Path:
    if settings.archive_dir is not None:
        return settings.archive_dir
    from stream.history.settings import ArchiveSettings
    from stream.settings import load_settings

    return load_settings(ArchiveSettings).root_dir


def _labels(settings: FeedbackSettings) -> LabelSets:
    from models.feedback import LabelSets
    from models.modeldir import load_model_dir

    return LabelSets.from_card(load_model_dir(settings.model_dir, verify_hashes=False).card)


def _existing_store(settings: FeedbackSettings) -> FeedbackStore:
    from models.exceptions import FeedbackError
    from models.feedback import FeedbackStore

    if not settings.store_path.is_file():
        raise FeedbackError(f"no feedback store at {settings.store_path}; add a correction first")
    return FeedbackStore(settings.store_path)


def find_texts(
    drafts: Sequence[Draft], store: FeedbackStore, archive: Path
) -> tuple[list[Draft], list[Draft]]:
    """``drafts`` with the text as scored filled in, and those whose text was found nowhere.

    A draft without text takes the text of the document's earlier correction in
    ``store``, else the document's latest scoring in the Parquet ``archive``.
    """
    from stream.history.query import latest_scored

    known = {d.doc_id: store.get(d.doc_id) for d in drafts if d.text is None}
    wanted = [doc_id for doc_id, c in known.items() if c is None]
    found = latest_scored(archive, wanted) if wanted and archive.is_dir() else {}
    ready, missing = [], []
    for d in drafts:
        earlier, doc = known.get(d.doc_id), found.get(d.doc_id)
        if d.text is not None:
            ready.append(d)
        elif earlier is not None:
            ready.append(d.with_scored(earlier.text, earlier.model_name, earlier.model_version))
        elif doc is not None:
            ready.append(d.with_scored(doc.text, doc.model_name, doc.model_version))
        else:
            missing.append(d)
    return ready, missing


def _not_found(doc_id: str, archive: Path) -> str:
    where = f"the archive {archive}" if archive.is_dir() else f"{archive} (no archive there)"
    return (
        f"doc {doc_id}: no text given and not in {where}; give the text as scored "
        "(--text, or a text column)"
    )


def _publish(
    store: FeedbackStore,
    corrections: Sequence[Correction],
    settings: FeedbackSettings,
    bootstrap_servers: str | None,
    topic_prefix: str | None,
    *,
    required: bool = False,
) -> None:
    from models.feedback.publish import publish
    from stream.contracts.errors import BrokerError
    from stream.kafka import KafkaSettings
    from stream.runtime import topic_names
    from stream.settings import load_settings

    kafka = load_settings(KafkaSettings, bootstrap_servers=bootstrap_servers)
    if not kafka.bootstrap_servers:
        if required:
            raise _fail("no Kafka broker: set KAFKA_BOOTSTRAP_SERVERS or --bootstrap-servers")
        typer.echo("not published: no Kafka broker configured (stored only)", err=True)
        return
    topic = topic_names(topic_prefix).feedback
    try:
        report = publish(
            store, corrections, kafka=kafka, topic=topic, timeout_s=settings.publish_timeout_s
        )
        report.raise_for_failures(topic)
    except BrokerError as exc:
        raise _fail(f"stored, not published: {exc}", 1) from exc
    if report.sent:
        typer.echo(f"published {len(report.sent)} correction(s) to {topic}")


def _now() -> datetime:
    return datetime.now(UTC)


@feedback_app.command("add")
def add(
    doc_id: Annotated[str, typer.Argument(help="Id of the scored document to correct.")],
    sentiment: Annotated[
        str | None, typer.Option(help="Correct sentiment: negative, neutral or positive.")
    ] = None,
    topic: Annotated[str | None, typer.Option(help="Correct topic (a label of the model).")] = None,
    note: Annotated[str | None, typer.Option(help="Why (kept with the correction).")] = None,
    text: Annotated[
        str | None, typer.Option(help="The text as scored, when the archive lacks it.")
    ] = None,
    store: StoreOpt = None,
    archive: ArchiveOpt = None,
    model: ModelOpt = None,
    bootstrap_servers: BootstrapOpt = None,
    topic_prefix: PrefixOpt = None,
) -> None:
    """Correct one document's sentiment and/or topic (a later correction replaces it)."""
    from models.feedback import Draft, FeedbackStore

    with _user_errors():
        settings = _settings(store, archive, model)
        draft = Draft.parse(
            doc_id, labels=_labels(settings), sentiment=sentiment, topic=topic, note=note, text=text
        )
        archive_dir = _archive_dir(settings)
        with FeedbackStore(settings.store_path) as fs:
            ready, missing = find_texts([draft], fs, archive_dir)
            if missing:
                raise _fail(_not_found(draft.doc_id, archive_dir))
            stored = fs.add(ready[0].complete(created_at=_now(), source="cli"))
            c = stored.correction
            typer.echo(
                f"{stored.outcome}: {c.doc_id} sentiment={c.sentiment or '-'} "
                f"topic={c.topic or '-'} (revision {c.revision}, {c.split} split) "
                f"in {settings.store_path}"
            )
            if not c.published:
                _publish(fs, [c], settings, bootstrap_servers, topic_prefix)


def _drafts(
    rows: list[dict[str, str | None]], labels: LabelSets
) -> tuple[list[tuple[int, Draft]], list[str]]:
    from models.exceptions import FeedbackError
    from models.feedback import Draft

    drafts, errors = [], []
    for i, row in enumerate(rows, start=1):
        try:
            drafts.append(
                (
                    i,
                    Draft.parse(
                        row.get("doc_id") or "",
                        labels=labels,
                        **{
                            k: row.get(k)
                            for k in (
                                "sentiment",
                                "topic",
                                "note",
                                "text",
                                "model_name",
                                "model_version",
                            )
                        },
                    ),
                )
            )
        except FeedbackError as exc:
            errors.append(f"row {i}: {exc}")
    return drafts, errors


def _row_number(line: str) -> int:
    return int(line.split(":", 1)[0].removeprefix("row "))


@feedback_app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file of corrections.")],
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Store the good rows even if some are bad.")
    ] = False,
    store: StoreOpt = None,
    archive: ArchiveOpt = None,
    model: ModelOpt = None,
    bootstrap_servers: BootstrapOpt = None,
    topic_prefix: PrefixOpt = None,
) -> None:
    """Import corrections: columns doc_id and sentiment and/or topic; text, note optional.

    Every bad row is named; nothing is stored unless all rows are good (or --skip-bad).
    """
    from models.feedback import FeedbackStore, read_rows

    with _user_errors():
        settings = _settings(store, archive, model)
        rows = read_rows(file)
        columns = set().union(*rows) if rows else set()
        if "doc_id" not in columns or not columns & {"sentiment", "topic"}:
            raise _fail(
                f"{file}: need a doc_id column and a sentiment and/or topic column "
                f"(columns: {sorted(columns)})"
            )
        numbered, errors = _drafts(rows, _labels(settings))
        archive_dir = _archive_dir(settings)
        with FeedbackStore(settings.store_path) as fs:
            ready, missing = find_texts([d for _, d in numbered], fs, archive_dir)
            lost = {id(d) for d in missing}
            errors += [
                f"row {i}: {_not_found(d.doc_id, archive_dir)}"
                for i, d in numbered
                if id(d) in lost
            ]
            if errors and not skip_bad:
                for line in sorted(errors, key=_row_number):
                    typer.echo(f"error: {file}: {line}", err=True)
                raise _fail(
                    f"{file}: nothing stored: {len(errors)} bad row(s); fix them or pass --skip-bad"
                )
            for line in sorted(errors, key=_row_number):
                typer.echo(f"skipped: {file}: {line}", err=True)
            now = _now()
            corrections = [d.complete(created_at=now, source=f"import:{file.name}") for d in ready]
            stored = fs.add_many(corrections)
            counts = {o: sum(s.outcome == o for s in stored) for o in ("added", "updated")}
            typer.echo(
                f"imported {file}: {counts['added']} added, {counts['updated']} updated, "
                f"{len(stored) - sum(counts.values())} unchanged, {len(errors)} skipped"
            )
            latest = {s.correction.doc_id: s.correction for s in stored}  # last one per doc
            todo = [c for c in latest.values() if not c.published]
            if todo:
                _publish(fs, todo, settings, bootstrap_servers, topic_prefix)


@feedback_app.command("export")
def export(
    out: Annotated[Path, typer.Argument(help="OUT.parquet, OUT.jsonl or OUT.csv.")],
    store: StoreOpt = None,
) -> None:
    """Write every current correction with its split (train/holdout) to a file."""
    from models.feedback import export_corrections

    with _user_errors():
        with _existing_store(_settings(store)) as fs:
            n = export_corrections(fs.corrections(), out)
        typer.echo(f"wrote {n} corrections to {out}")


@feedback_app.command("list")
def list_corrections(
    store: StoreOpt = None,
    pending: Annotated[bool, typer.Option("--pending", help="Only unpublished ones.")] = False,
) -> None:
    """Show the current corrections, oldest change first (tab-separated, with a header)."""
    with _user_errors(), _existing_store(_settings(store)) as fs:
        rows = fs.corrections(pending_only=pending)
    typer.echo("doc_id\tsentiment\ttopic\tsplit\trevision\tpublished\tcreated_at\tnote")
    for c in rows:
        note = " ".join((c.note or "").split())  # one line per correction
        typer.echo(
            f"{c.doc_id}\t{c.sentiment or '-'}\t{c.topic or '-'}\t{c.split}\t{c.revision}\t"
            f"{'yes' if c.published else 'no'}\t{c.created_at:%Y-%m-%dT%H:%M:%SZ}\t{note}"
        )


@feedback_app.command("publish")
def publish_command(
    pending: Annotated[
        bool,
        typer.Option("--pending/--all", help="Send the unpublished corrections, or all of them."),
    ] = True,
    store: StoreOpt = None,
    bootstrap_servers: BootstrapOpt = None,
    topic_prefix: PrefixOpt = None,
) -> None:
    """(Re-)send stored corrections to the feedback topic (after a failed publish)."""
    with _user_errors():
        settings = _settings(store)
        with _existing_store(settings) as fs:
            todo = fs.corrections(pending_only=pending)
            _publish(fs, todo, settings, bootstrap_servers, topic_prefix, required=True)
            if not todo:
                typer.echo("nothing to publish")


def register(app: typer.Typer) -> None:
    """Add ``feedback`` and its subcommands to the root ``finsentinel`` app."""
    app.add_typer(feedback_app, name="feedback")
