"""``finsentinel models ...``: the model registry and its promotion gate.

* ``compare OLD NEW --data DATA [--feedback FILE] [--report FILE]``: both models on
  the frozen validation split and the feedback hold-out, per head; says whether
  NEW passes the gate (:mod:`models.compare`); exit 0 promotable, 3 not;
* ``register REGISTRY MODEL_DIR``: copy a model directory in as a version;
* ``promote REGISTRY NEW --report FILE`` (or ``--force --reason TEXT``): move the
  ``ACTIVE`` pointer; running scorers with ``FINSENTINEL_SCORER_REGISTRY_DIR``
  switch to it between two batches;
* ``rollback REGISTRY``: back to the version active before the current one;
* ``calibrate MODEL_DIR --data DATA``: re-fit the card's temperatures, chosen by
  out-of-fold ECE, with reliability tables (:mod:`models.recalibrate`);
* ``list REGISTRY``: the versions, the active one marked, and the last promotions.

Bad input (a broken model directory, a failing report, an unknown version)
prints one line and exits 2. The registry layout: :mod:`models.registry`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from models.exceptions import DataError, ModelDirError, ModelError, RegistryError

__all__ = ["NOT_PROMOTABLE_EXIT", "models_app", "register"]

#: Exit code of ``compare`` when the new model fails the gate.
NOT_PROMOTABLE_EXIT = 3

models_app = typer.Typer(
    help="Model registry: compare, register, promote, roll back and list model versions.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
_stdout = Console(soft_wrap=True)
#: ``--data`` of the commands that score the frozen validation split.
ValidationData = Annotated[
    Path,
    typer.Option(
        "--data",
        help="The recipe's data directory (its validation split is recomputed as training "
        "makes it) or a training run directory (its val_<head>.csv).",
    ),
]
_stderr = Console(stderr=True, soft_wrap=True)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except (DataError, ModelDirError, RegistryError) as exc:
        _stderr.print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from exc
    except (ModelError, OSError) as exc:
        _stderr.print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(1) from exc


def _registry(path: Path) -> Any:
    from models.registry import ModelRegistry

    return ModelRegistry(path)


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def _compare_table(report: dict[str, Any]) -> Table:
    old, new = report["old"], report["new"]
    table = Table(
        title=f"{old['name']} {old['version']} (old) vs {new['name']} {new['version']} (new)"
    )
    for column in (
        "rows",
        "head",
        "n",
        "old acc",
        "new acc",
        "old macro-F1",
        "new macro-F1",
        "Δ F1",
    ):
        table.add_column(column, justify="left" if column in ("rows", "head") else "right")
    sections = (
        ("frozen validation", report["validation"]),
        ("feedback hold-out", report["feedback_holdout"]["heads"]),
    )
    for label, heads in sections:
        for head, pair in heads.items():
            o, n = pair["old"], pair["new"]
            table.add_row(
                label, head, str(o["n"]), _fmt(o["accuracy"]), _fmt(n["accuracy"]),
                _fmt(o["macro_f1"]), _fmt(n["macro_f1"]), f"{n['macro_f1'] - o['macro_f1']:+.4f}",
            )  # fmt: skip
    c = report["feedback_holdout"]["combined"]
    verdict = "PROMOTABLE" if report["promotable"] else "NOT promotable"
    table.caption = (
        f"gate: lose at most {report['max_loss_macro_f1']} macro-F1 per head on the frozen "
        f"validation and win on the feedback hold-out (correct: old {c['old_correct']}, "
        f"new {c['new_correct']} of {c['n']}) -> {verdict}"
    )
    return table


@models_app.command("compare")
def compare(
    old: Annotated[Path, typer.Argument(help="The model directory in use now.")],
    new: Annotated[Path, typer.Argument(help="The candidate model directory.")],
    data: ValidationData,
    feedback: Annotated[
        Path | None,
        typer.Option(help="Feedback export (CSV/JSONL); its split=holdout rows are scored."),
    ] = None,
    max_loss: Annotated[
        float,
        typer.Option(min=0.0, max=0.99, help="Largest macro-F1 loss per head on the validation."),
    ] = 0.01,
    val_fraction: Annotated[
        float | None,
        typer.Option(help="Validation share of the recipe's split [default: the recipe's, 0.1]."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the recipe's split [default: the recipe's, 0].")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write the JSON report here.")] = None,
) -> None:
    """Compare OLD and NEW per head; exit 0 if NEW passes the promotion gate, 3 if not."""
    with _user_errors():
        from models.compare import compare_models
        from models.data import RECIPE_SEED, RECIPE_VAL_FRACTION

        result = compare_models(
            old, new, data=data, feedback=feedback, max_loss=max_loss,
            val_fraction=RECIPE_VAL_FRACTION if val_fraction is None else val_fraction,
            seed=RECIPE_SEED if seed is None else seed,
        )  # fmt: skip
        _stdout.print(_compare_table(result))
        for reason in result["reasons"]:
            _stdout.print(f"  - {reason}", highlight=False, markup=False)
        if report is not None:
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
            _stdout.print(f"report written to {report}", highlight=False)
    if not result["promotable"]:
        raise typer.Exit(NOT_PROMOTABLE_EXIT)


@models_app.command("calibrate")
def calibrate(
    model_dir: Annotated[Path, typer.Argument(help="The model directory (its card is updated).")],
    data: ValidationData,
    variant: Annotated[
        str | None, typer.Option(help="int8, fp32 or fp16 [default: the CPU default, int8].")
    ] = None,
) -> None:
    """Re-fit each head's temperature on the validation rows, chosen by out-of-fold ECE."""
    with _user_errors():
        from models.recalibrate import recalibrate

        reports = recalibrate(model_dir, data, variant=variant)
        table = Table(title=f"calibration of {model_dir}")
        for column in ("head", "method", "temperature", "out-of-fold ECE: none / nll / ece"):
            table.add_column(column)
        for head, report in reports.items():
            eces = " / ".join(f"{c['out_of_fold_ece']:.3f}" for c in report["candidates"].values())
            table.add_row(head, report["method"], f"{report['temperature']:.4f}", eces)
        _stdout.print(table)


@models_app.command("register")
def register_version(
    registry: Annotated[Path, typer.Argument(help="Registry directory (created if missing).")],
    model_dir: Annotated[Path, typer.Argument(help="Model directory to copy in.")],
) -> None:
    """Copy a model directory into the registry as a new version (hashes verified)."""
    with _user_errors():
        entry = _registry(registry).register(model_dir)
        _stdout.print(f"registered {entry.name} in {registry}", highlight=False)


def _resolve(reg: Any, new: str) -> str:
    """A version name, registering NEW first when it is a model directory."""
    path = Path(new)
    if (path / "model_card.json").is_file():
        from models.modeldir import load_model_dir

        card = load_model_dir(path, verify_hashes=False).card
        name = f"{card.name}-{card.version}"
        if not (reg.versions_dir / name).is_dir():
            reg.register(path)
        return name
    return new


@models_app.command("promote")
def promote(
    registry: Annotated[Path, typer.Argument(help="Registry directory.")],
    new: Annotated[
        str, typer.Argument(help="A registered version name, or a model directory to register.")
    ],
    report: Annotated[
        Path | None, typer.Option(help="The JSON report of `finsentinel models compare`.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote without a passing report (needs --reason).")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why a forced promotion is needed.")] = None,
) -> None:
    """Make NEW the active version (only with a passing comparison report, or --force)."""
    with _user_errors():
        if force and not (reason or "").strip():
            raise RegistryError("--force needs --reason saying why the gate is overridden")
        if not force and reason:
            raise RegistryError("--reason is only for --force")
        loaded = None
        if report is not None:
            try:
                loaded = json.loads(report.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise DataError(f"{report}: not a readable JSON report ({exc})") from exc
        reg = _registry(registry)
        record = reg.promote(
            _resolve(reg, new), report=loaded, force_reason=reason if force else None
        )
        how = " (forced)" if record.forced else ""
        _stdout.print(f"ACTIVE: {record.from_version} -> {record.to_version}{how}", highlight=False)


@models_app.command("rollback")
def rollback(
    registry: Annotated[Path, typer.Argument(help="Registry directory.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in promotions.jsonl).")] = "",
) -> None:
    """Point ACTIVE back at the version that was active before the current one."""
    with _user_errors():
        record = _registry(registry).rollback(reason=reason)
        _stdout.print(f"ACTIVE: {record.from_version} -> {record.to_version}", highlight=False)


@models_app.command("list")
def list_versions(
    registry: Annotated[Path, typer.Argument(help="Registry directory.")],
) -> None:
    """The registered versions (the active one marked) and the promotion history."""
    with _user_errors():
        reg = _registry(registry)
        table = Table(title=f"model registry {registry}")
        for column in ("", "version", "name", "card version", "created"):
            table.add_column(column)
        for entry in reg.entries():
            table.add_row(
                "*" if entry.active else "", entry.name, entry.card.name, entry.card.version,
                entry.card.created_at.isoformat(timespec="seconds"),
            )  # fmt: skip
        _stdout.print(table)
        history = reg.history()
        if history:
            log = Table(title="promotions")
            for column in ("at", "action", "from", "to", "forced", "reason"):
                log.add_column(column)
            for p in history[-10:]:
                log.add_row(
                    p.at, p.action, p.from_version or "-", p.to_version,
                    "yes" if p.forced else "", p.reason,
                )  # fmt: skip
            _stdout.print(log)


def register(app: typer.Typer) -> None:
    """Add the ``models`` group to the root ``finsentinel`` app."""
    app.add_typer(models_app, name="models")
