"""Commands ``train``, ``evaluate``, ``export`` and ``classify`` for the root CLI.

:func:`register` adds them to the ``finsentinel`` app. Heavy modules (torch,
onnx, ONNX Runtime, pandas) are imported inside the commands, so ``--help``
stays fast and the streaming services never import torch. Bad input (missing
column, empty file, unknown label, a broken model directory) prints one line
and exits with code 2.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from models.exceptions import (
    DataError,
    ExportError,
    FeedbackError,
    ModelDirError,
    ModelError,
    TrainingError,
)

if TYPE_CHECKING:
    from stream.runtime import StopFlag

__all__ = ["register"]

_stderr = Console(stderr=True, soft_wrap=True)
_stdout = Console()


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn expected errors into a one-line message and an exit code."""
    try:
        yield
    except (DataError, FeedbackError, ModelDirError, TrainingError) as exc:
        _stderr.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        raise typer.Exit(2) from exc
    except (ExportError, ModelError) as exc:
        _stderr.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc


def _progress() -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_stderr,
        transient=False,
    )


def _hp(name: str, help: str = "", *, min: float | None = None, max: float | None = None) -> Any:
    """A ``train`` option whose default is :class:`TrainConfig`'s (shown, never copied)."""
    from models.training.config import TrainConfig

    default = TrainConfig.model_fields[name].default
    text = f"{help} [default: {default}]".strip()
    return typer.Option(help=text, show_default=False, min=min, max=max)


def train(
    sentiment_data: Annotated[
        Path | None, typer.Option(help="Labeled file for the sentiment head.")
    ] = None,
    topic_data: Annotated[
        Path | None, typer.Option(help="Labeled file for the topic head.")
    ] = None,
    run_dir: Annotated[Path, typer.Option(help="Where the run's outputs go.")] = Path("runs/train"),
    base_model: Annotated[
        Path | None, typer.Option(help="Local HF encoder dir (default: MiniLM).")
    ] = None,
    epochs: Annotated[int | None, _hp("epochs", min=1)] = None,
    batch_size: Annotated[int | None, _hp("batch_size", min=1)] = None,
    learning_rate: Annotated[float | None, _hp("learning_rate")] = None,
    max_length: Annotated[int | None, _hp("max_length", min=8, max=512)] = None,
    label_smoothing: Annotated[float | None, _hp("label_smoothing")] = None,
    class_weight_power: Annotated[
        float | None, _hp("class_weight_power", "0: no class weights, 1: inverse freq.")
    ] = None,
    val_fraction: Annotated[float | None, _hp("val_fraction")] = None,
    patience: Annotated[int | None, _hp("patience", min=1)] = None,
    seed: Annotated[int | None, _hp("seed", "Seed of the validation split (and the rest).")] = None,
    train_seed: Annotated[
        int | None,
        _hp("train_seed", "Seed of initialisation, dropout and batch order only (None: --seed)."),
    ] = None,
    init_seed: Annotated[
        int | None,
        _hp("init_seed", "Seed of the heads' initialisation alone, shared by runs to average."),
    ] = None,
    max_train_minutes: Annotated[
        float | None, typer.Option(help="Stop training after this long.")
    ] = None,
    max_train_rows: Annotated[
        int | None, typer.Option(help="Use at most this many rows per head.")
    ] = None,
    teacher: Annotated[
        Path | None,
        typer.Option(
            help="Self-training: a checkpoint (a run's best/), or a soft-label file made "
            "for this split, whose confident sentiment predictions on the topic texts become "
            "extra sentiment training rows."
        ),
    ] = None,
    pseudo_label_threshold: Annotated[
        float | None,
        _hp("pseudo_label_threshold", "Keep a teacher label at p >= this.", min=0.0, max=1.0),
    ] = None,
    soft_labels: Annotated[
        Path | None,
        typer.Option(
            help="Distillation: a teacher's soft-label file (python -m "
            "models.training.softlabels); soft targets for every training row."
        ),
    ] = None,
    distill_head: Annotated[
        list[str] | None,
        typer.Option(
            help="A head the soft targets teach (repeatable; default: both). With --teacher, "
            "only heads that get no pseudo-labels, or heads also given as --distill-own-rows.",
        ),
    ] = None,
    distill_own_rows: Annotated[
        list[str] | None,
        typer.Option(
            help="A --distill-head taught on its own training rows only, not on the other "
            "head's texts (repeatable).",
        ),
    ] = None,
    distill_temperature: Annotated[
        float | None, _hp("distill_temperature", "Temperature of the soft targets.", min=0.01)
    ] = None,
    distill_alpha: Annotated[
        float | None,
        _hp("distill_alpha", "Weight of the soft term (1 - it: labels).", min=0.0, max=1.0),
    ] = None,
    feedback: Annotated[
        Path | None,
        typer.Option(
            help="Analyst feedback: a feedback store (finsentinel feedback ...) or its export; "
            "its train-split corrections join the training rows of the heads they label "
            "(never validation), hold-out ones never do."
        ),
    ] = None,
    feedback_weight: Annotated[
        float | None, _hp("feedback_weight", "Loss weight of a correction's row.", min=0.0)
    ] = None,
    freeze_embeddings: Annotated[
        bool, typer.Option("--freeze-embeddings", help="Keep the encoder's embeddings fixed.")
    ] = False,
    freeze_layers: Annotated[
        int | None, _hp("freeze_layers", "Keep the lowest N encoder layers fixed.", min=0)
    ] = None,
    cache_frozen_layers: Annotated[
        bool,
        typer.Option(
            "--cache-frozen-layers",
            help="Compute the frozen embeddings and layers once per text, not every step "
            "(needs --freeze-embeddings and --freeze-layers; the frozen part runs without "
            "dropout).",
        ),
    ] = False,
    extra_data: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="FILE",
            help="Extra labeled file (text + sentiment and/or topic columns; blank = no label) "
            "whose rows join the training rows only. Repeatable.",
        ),
    ] = None,
    checklist: Annotated[
        bool,
        typer.Option(
            "--checklist",
            help="Add the behavioural suite's train split (models/checklist) to the "
            "training rows; its held-out third is never trained on.",
        ),
    ] = False,
    extra_weight: Annotated[
        float | None,
        _hp("extra_weight", "Loss weight of an --extra-data or --checklist row.", min=0.0),
    ] = None,
    extra_topic_weight: Annotated[
        float | None,
        _hp(
            "extra_topic_weight",
            "Loss weight of an --extra-data or --checklist row's topic label "
            "(None: as --extra-weight).",
            min=0.0,
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="Where to train: cpu, or cuda (the first GPU torch sees; faster, but not "
            "bit-for-bit equal to a CPU run). [default: cpu]",
            show_default=False,
        ),
    ] = None,
    text_column: Annotated[str, typer.Option()] = "text",
    label_column: Annotated[str, typer.Option()] = "label",
) -> None:
    """Fine-tune the topic + sentiment model; writes checkpoints and metrics to RUN_DIR."""
    with _user_errors():
        from models.training.config import TrainConfig
        from models.training.run import default_base_model, run_training

        files = {
            head: path
            for head, path in (("sentiment", sentiment_data), ("topic", topic_data))
            if path is not None
        }
        if not files:
            raise TrainingError("give --sentiment-data and/or --topic-data")
        given: dict[str, Any] = {
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "max_length": max_length,
            "label_smoothing": label_smoothing,
            "class_weight_power": class_weight_power,
            "val_fraction": val_fraction,
            "patience": patience,
            "seed": seed,
            "train_seed": train_seed,
            "init_seed": init_seed,
            "max_train_minutes": max_train_minutes,
            "max_train_rows": max_train_rows,
            "teacher": None if teacher is None else str(teacher.resolve()),
            "pseudo_label_threshold": pseudo_label_threshold,
            "soft_labels": None if soft_labels is None else str(soft_labels.resolve()),
            "distill_temperature": distill_temperature,
            "distill_alpha": distill_alpha,
            "distill_heads": tuple(distill_head) if distill_head else None,
            "distill_own_rows": tuple(distill_own_rows) if distill_own_rows else None,
            "feedback": None if feedback is None else str(feedback.resolve()),
            "feedback_weight": feedback_weight,
            "freeze_embeddings": freeze_embeddings or None,
            "freeze_layers": freeze_layers,
            "cache_frozen_layers": cache_frozen_layers or None,
            "extra_data": tuple(str(p.resolve()) for p in extra_data) if extra_data else None,
            "checklist": checklist or None,
            "extra_weight": extra_weight,
            "extra_topic_weight": extra_topic_weight,
            "device": device,
        }
        # Options left out take TrainConfig's defaults: they are declared there only.
        given["base_model"] = str(base_model or default_base_model())
        try:
            config = TrainConfig.model_validate({k: v for k, v in given.items() if v is not None})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            if not where:  # a rule over several options
                raise TrainingError(err["msg"].removeprefix("Value error, ")) from exc
            raise TrainingError(f"--{where.replace('_', '-')}: {err['msg']}") from exc
        with _progress() as progress:
            task = progress.add_task("training", total=None)

            def hook(step: int, total: int) -> None:
                progress.update(task, completed=step, total=total)

            result = run_training(
                config,
                files,
                run_dir,
                text_column=text_column,
                label_column=label_column,
                progress=hook,
            )
        best = max(result.epochs, key=lambda e: e.score)
        _stdout.print(f"best epoch {best.epoch}: {best.metrics}; checkpoint in {result.best_dir}")


def _metrics_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"{report['head']} on {report['data']} ({report['n']} rows)")
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, m in report["per_class"].items():
        table.add_row(
            name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"])
        )
    table.caption = (
        f"accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}  "
        f"ECE {report['ece_before']:.4f} -> {report['ece_after']:.4f} (T={report['temperature']})"
    )
    return table


def evaluate(
    data: Annotated[Path, typer.Option(help="Labeled CSV/JSONL/Parquet file.")],
    head: Annotated[str, typer.Option(help="Which head the labels belong to: sentiment or topic.")],
    model: Annotated[
        Path | None, typer.Option(help="Model directory (default: the shipped one).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Directory for eval_<head>.json and the PNG.")
    ] = None,
    variant: Annotated[str | None, typer.Option(help="int8, fp32 or fp16 (default: int8).")] = None,
    text_column: Annotated[str, typer.Option()] = "text",
    label_column: Annotated[str, typer.Option()] = "label",
) -> None:
    """Per-class metrics, confusion matrix and calibration of a model on a labeled file."""
    with _user_errors():
        from models.evaluate import evaluate_file

        if head not in ("sentiment", "topic"):
            raise DataError(f"--head must be 'sentiment' or 'topic', not {head!r}")
        report = evaluate_file(
            model,
            data,
            head,
            text_column=text_column,
            label_column=label_column,
            out_dir=out,
            variant=variant,
        )
        _stdout.print(_metrics_table(report))


def export(
    run: Annotated[Path, typer.Option(help="Training run directory (or a checkpoint directory).")],
    out: Annotated[Path, typer.Option(help="Model directory to write.")],
    name: Annotated[str, typer.Option()] = "finsentinel-minilm",
    version: Annotated[str, typer.Option()] = "0.1.0",
    variants: Annotated[
        str, typer.Option(help="Comma-separated ONNX variants.")
    ] = "fp32,int8,fp16",
    min_agreement: Annotated[
        float, typer.Option(help="Least int8-vs-fp32 argmax agreement per head.")
    ] = 0.99,
) -> None:
    """Export a run to an ONNX model directory: calibrate, quantize, check parity, write card."""
    with _user_errors():
        from models.training.ship import export_run

        chosen = tuple(v.strip() for v in variants.split(",") if v.strip())
        unknown = set(chosen) - {"fp32", "int8", "fp16"}
        if unknown:
            raise DataError(f"unknown variants {sorted(unknown)}; use fp32, int8, fp16")
        export_run(
            run, out, name=name, version=version, variants=chosen, min_agreement=min_agreement
        )
        from models.modeldir import load_model_dir

        card = load_model_dir(out).card
        _stdout.print(f"wrote {out}: {card.name} {card.version}, parity {card.parity}")


def classify(
    input: Annotated[Path, typer.Option("--input", help="CSV/JSONL/Parquet with a text column.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            help="Output file; format by extension. Written chunk by chunk: an interrupted run "
            "keeps its rows (Parquet: in OUTPUT.parts/) for --resume.",
        ),
    ],
    model: Annotated[
        Path | None, typer.Option(help="Model directory (default: the shipped one).")
    ] = None,
    text_column: Annotated[str, typer.Option()] = "text",
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows per written chunk (and per Ctrl+C wait).")
    ] = 1024,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue an interrupted run after the rows it wrote."),
    ] = False,
    provider: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Classify every row's text: sentiment (+probs, score) and topic (+probs).

    Ctrl+C or SIGTERM finishes the current chunk, leaves a valid partial output and
    exits 130; run the same command with --resume to continue.
    """
    with _user_errors():
        from models.classify import classify_file
        from models.data import table_format
        from models.scoring import Classifier

        table_format(output)
        if provider not in ("auto", "cpu", "cuda"):
            raise DataError(f"--provider must be auto, cpu or cuda, not {provider!r}")
        classifier = Classifier.load(model, provider=provider)  # type: ignore[arg-type]
        with _progress() as progress, _stop_on_signals() as stop:
            task = progress.add_task("classifying", total=None)
            run = classify_file(
                classifier,
                input,
                output,
                text_column=text_column,
                batch_size=batch_size,
                chunk_rows=chunk_rows,
                resume=resume,
                on_start=lambda total, done: progress.update(task, total=total, completed=done),
                progress=lambda n: progress.advance(task, n),
                stop=stop.is_set,
            )
        if not run.complete:
            _stderr.print(
                f"interrupted: {run.written} of {run.total} rows are in {run.path}; "
                "run the same command with --resume to continue",
                highlight=False,
            )
            raise typer.Exit(130)
        resumed = f", {run.resumed_from} of them from the earlier run" if run.resumed_from else ""
        done = f"wrote {run.total} rows to {output}{resumed}"
        _stdout.print(f"{done} ({classifier.card.version}, {classifier.variant})")


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[StopFlag]:
    """SIGINT/SIGTERM set the flag (the run stops between chunks); handlers restored after."""
    from stream.runtime import StopFlag

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    flag = StopFlag().install()
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def register(app: typer.Typer) -> None:
    """Add ``train``, ``evaluate``, ``export`` and ``classify`` to ``app``."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("export")(export)
    app.command("classify")(classify)
