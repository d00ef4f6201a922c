"""A seed-replicated sweep over the shipped student's recipe (torch).

``python -m models.training.sweep --data DIR --out DIR --grid distill_alpha=0.3,0.7
--train-seeds 0,1,2 [--variant label_smoothing=0.1] [--device cuda] [--workers N]``

Every combination of the ``--grid`` values (and each ``--variant``, one
combination of its own) is trained once per train seed from the recipe
``make model`` trains (:func:`models.training.reproduce.student_config`, taught
by :data:`~models.training.reproduce.SHIPPED_TEACHER`). Train seeds
(``TrainConfig.train_seed``) change initialisation, dropout and batch order but
not the validation split, so every run is measured on the same rows and the
committed soft-label files fit them all. Runs go to ``--workers`` processes; each
finished run's per-epoch validation metrics are appended to
``OUT/results.jsonl`` (a run cut short leaves its epochs in
``OUT/runNNN/metrics.jsonl``), and at the end a table gives each combination's
mean and spread over its seeds at its best epoch.

How long: one run of the recipe (5 epochs of 1,144 steps) takes about 4 minutes
on an NVIDIA H200 (``--device cuda``: 45-50 s an epoch, the GPU ~12 % busy, each
step bound by Python and kernel launches) and 80-100 minutes on one CPU thread.
Processes on one GPU time-share it: 12 workers on the H200 finished none of
their runs in 7.5 minutes. Give one or two workers per GPU (or run under CUDA MPS).

Choose on the mean over seeds, never on the best seed: picking a seed picks the
validation split's noise (on 954 sentiment rows one text is 0.1 point). Then
train the chosen recipe with ``make model`` on the CPU, as it ships.
``--minutes`` stops starting new runs after that long (a lent GPU's budget).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import shutil
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

__all__ = ["main", "plan_runs", "summarise"]

logger = logging.getLogger(__name__)

#: The per-run figures the summary averages over seeds (best epoch, validation split).
_FIGURES = (
    ("sentiment", "accuracy"),
    ("sentiment", "macro_f1"),
    ("topic", "accuracy"),
    ("topic", "macro_f1"),
)


def _assignment(text: str) -> tuple[str, list[Any]]:
    """``key=v1,v2`` -> ``(key, [v1, v2])``, each value read as JSON (else a string)."""
    key, sep, values = text.partition("=")
    if not sep or not key or not values:
        raise argparse.ArgumentTypeError(f"{text!r}: give KEY=VALUE[,VALUE...]")
    out: list[Any] = []
    for raw in values.split(","):
        try:
            out.append(json.loads(raw))
        except json.JSONDecodeError:
            out.append(raw)
    return key.strip(), out


def plan_runs(
    grid: Sequence[tuple[str, list[Any]]],
    variants: Sequence[Sequence[tuple[str, list[Any]]]],
    train_seeds: Sequence[int],
) -> list[dict[str, Any]]:
    """Every grid combination and every variant, once per train seed (seed-major order,
    so a sweep cut short by ``--minutes`` has every combination at its first seeds).

    >>> runs = plan_runs([("distill_alpha", [0.3, 0.7])], [[("label_smoothing", [0.1])]], [0, 1])
    >>> [(r["distill_alpha"] if "distill_alpha" in r else r["label_smoothing"], r["train_seed"])
    ...  for r in runs]
    [(0.3, 0), (0.7, 0), (0.1, 0), (0.3, 1), (0.7, 1), (0.1, 1)]
    """
    keys = [key for key, _ in grid]
    combos = [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*(v for _, v in grid))
    ]
    for variant in variants:
        if any(len(values) != 1 for _, values in variant):
            raise ValueError("a --variant gives one value per key (use --grid for several)")
        combos.append({key: values[0] for key, values in variant})
    return [{**combo, "train_seed": seed} for seed in train_seeds for combo in combos]


def _train_one(
    overrides: dict[str, Any], data: str, base_model: str, device: str, run_dir: str, log_level: str
) -> dict[str, Any]:
    """One run of the student recipe (in a worker process); returns its epochs' metrics."""
    from models.training.config import TrainConfig
    from models.training.reproduce import DATA_FILES, student_config
    from models.training.run import run_training

    logging.basicConfig(level=log_level, format="%(asctime)s %(process)d %(name)s %(message)s")
    fields = {**student_config(overrides=overrides), "device": device}
    config = TrainConfig.model_validate({"base_model": base_model, **fields})  # lists -> tuples
    files = {head: Path(data) / name for head, name in DATA_FILES.items()}
    started = time.monotonic()
    result = run_training(config, files, Path(run_dir))
    shutil.rmtree(result.best_dir, ignore_errors=True)  # ~90 MB a run: keep the metrics only
    return {
        "overrides": overrides,
        "device": device,
        "minutes": round((time.monotonic() - started) / 60, 2),
        "epochs": [
            {"epoch": e.epoch, "score": e.score, "metrics": e.metrics} for e in result.epochs
        ],
    }


def _best_epoch(run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The epoch the run kept (the trainer's score; the first of equals, as it keeps)."""
    return max(run["epochs"], key=lambda e: e["score"])["metrics"]  # type: ignore[no-any-return]


def summarise(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per combination (overrides without the train seed): seeds, then mean and
    standard deviation of each figure at each run's best epoch.

    >>> e = lambda s, t: [{"epoch": 1, "score": (s + t) / 2, "metrics": {
    ...     "sentiment": {"accuracy": s, "macro_f1": s}, "topic": {"accuracy": t, "macro_f1": t}}}]
    >>> rows = summarise([{"overrides": {"a": 1, "train_seed": 0}, "epochs": e(0.8, 0.9)},
    ...                   {"overrides": {"a": 1, "train_seed": 1}, "epochs": e(0.9, 0.9)}])
    >>> rows[0]["combo"], rows[0]["seeds"], round(rows[0]["sentiment_accuracy"]["mean"], 3)
    ({'a': 1}, [0, 1], 0.85)
    """
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        combo = {k: v for k, v in run["overrides"].items() if k != "train_seed"}
        groups[json.dumps(combo, sort_keys=True)].append(run)
    rows = []
    for key, members in groups.items():
        row: dict[str, Any] = {
            "combo": json.loads(key),
            "seeds": sorted(m["overrides"].get("train_seed") for m in members),
        }
        for head, figure in _FIGURES:
            values = [_best_epoch(m)[head][figure] for m in members]
            row[f"{head}_{figure}"] = {
                "mean": statistics.fmean(values),
                "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                "values": values,
            }
        rows.append(row)
    return sorted(rows, key=lambda r: -r["sentiment_accuracy"]["mean"])


def _print_table(rows: Sequence[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="best epoch per run, mean ± sd over train seeds (validation split)")
    for name in ("overrides", "seeds", "sentiment acc", "sentiment F1", "topic acc", "topic F1"):
        table.add_column(name)
    for row in rows:
        cells = [
            f"{row[f'{h}_{f}']['mean']:.4f} ± {row[f'{h}_{f}']['sd']:.4f}" for h, f in _FIGURES
        ]
        table.add_row(json.dumps(row["combo"]) or "{}", str(len(row["seeds"])), *cells)
    Console(stderr=True, width=200).print(table)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models.training.sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="Directory with the data files.")
    parser.add_argument("--out", type=Path, required=True, help="Where results and runs go.")
    parser.add_argument(
        "--grid", type=_assignment, action="append", default=[], metavar="KEY=V1,V2",
        help="A TrainConfig field and its values (repeatable; the grid is their product).",
    )  # fmt: skip
    parser.add_argument(
        "--variant", type=lambda t: [_assignment(p) for p in t.split(";")], action="append",
        default=[], metavar="KEY=V[;KEY=V]", help="One more combination (repeatable).",
    )  # fmt: skip
    parser.add_argument(
        "--train-seeds", default="0,1,2", help="Comma-separated train seeds (default: 0,1,2)."
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--workers", type=int, default=1, help="Runs trained at once.")
    parser.add_argument("--base-model", default=None, help="Encoder directory (default: MiniLM).")
    parser.add_argument("--minutes", type=float, default=None, help="Start no run after this.")
    parser.add_argument(
        "--log-level", default="WARNING", help="The runs' log level (INFO: every epoch's steps)."
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    from rich.progress import Progress

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        seeds = [int(s) for s in args.train_seeds.split(",") if s.strip()]
        planned = plan_runs(args.grid, args.variant, seeds)
    except ValueError as exc:
        logger.error("%s", exc)
        return 2
    if args.base_model is None:
        from models.training.run import default_base_model

        args.base_model = default_base_model()
    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "results.jsonl"
    deadline = time.monotonic() + 60 * args.minutes if args.minutes else None
    done: list[dict[str, Any]] = []
    pending: dict[Future[dict[str, Any]], dict[str, Any]] = {}
    queue = list(enumerate(planned))
    context = get_context("spawn")  # CUDA cannot be used in forked children
    with (
        ProcessPoolExecutor(args.workers, mp_context=context) as pool,
        Progress() as progress,
    ):
        task = progress.add_task("sweep runs", total=len(planned))
        while queue or pending:
            while queue and len(pending) < args.workers:
                if deadline is not None and time.monotonic() > deadline:
                    logger.warning("--minutes reached: %s runs not started", len(queue))
                    queue.clear()
                    break
                index, overrides = queue.pop(0)
                run_dir = str(args.out / f"run{index:03d}")
                future = pool.submit(
                    _train_one,
                    overrides,
                    str(args.data),
                    args.base_model,
                    args.device,
                    run_dir,
                    args.log_level,
                )
                pending[future] = overrides
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                overrides = pending.pop(future)
                try:
                    run = future.result()
                except Exception as exc:  # one failed run is reported, the sweep goes on
                    logger.error("run %s failed: %s", overrides, exc)
                    run = {"overrides": overrides, "error": str(exc)}
                else:
                    done.append(run)
                    best = _best_epoch(run)
                    logger.info(
                        "run %s done in %s min: sentiment %.4f, topic %.4f",
                        overrides,
                        run["minutes"],
                        best["sentiment"]["accuracy"],
                        best["topic"]["accuracy"],
                    )
                with results_file.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(run) + "\n")
                progress.advance(task)
    rows = summarise(done)
    (args.out / "summary.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    _print_table(rows)
    return 0 if done else 1


if __name__ == "__main__":
    raise SystemExit(main())
