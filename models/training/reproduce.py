"""Rebuild the shipped model end to end (``make model``).

``python -m models.training.reproduce --data DIR --out DIR``.

Two stages on the two public data files in ``--data``, with the
hyper-parameters recorded in :data:`SHIPPED_CONFIG`: a teacher run, then the
shipped student (:data:`STUDENT_OVERRIDES`), which also trains its sentiment
head on the topic file's training headlines that the teacher labels
confidently (:mod:`models.training.selftrain`). Then calibration, fp32/int8/fp16 export
with parity checks, evaluation on the held-out validation split and the card.
Run it with ``nice``: about two hours on an idle CPU core (one torch thread, for
repeatability; teacher 5 epochs of ~10 minutes, student 4 of ~14, export and
checks ~3-5 minutes each). ``--teacher DIR`` reuses a teacher checkpoint.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from models.data import RECIPE_FILES, RECIPE_SEED, RECIPE_VAL_FRACTION

__all__ = ["SHIPPED_CONFIG", "main"]

logger = logging.getLogger(__name__)

#: Hyper-parameters of the shipped model (see models/README.md for how they were chosen).
SHIPPED_CONFIG: Final[dict[str, Any]] = {
    "max_length": 128,
    "epochs": 5,
    "batch_size": 32,
    "learning_rate": 8e-5,
    "weight_decay": 0.01,
    "warmup_ratio": 0.06,
    "label_smoothing": 0.05,
    "class_weight_power": 0.5,
    "dropout": 0.1,
    "val_fraction": RECIPE_VAL_FRACTION,
    "seed": RECIPE_SEED,
    "patience": 2,
    # One torch thread: bit-for-bit repeatable runs (and no OpenMP contention).
    "threads": 1,
}
#: Stage 2 (the shipped student): the same recipe from the base encoder again, with
#: the sentiment head also trained on the topic set's training texts that the
#: stage-1 model (the teacher) labels with probability >= the threshold.
STUDENT_OVERRIDES: Final[dict[str, Any]] = {
    "epochs": 4,
    "pseudo_label_heads": ("sentiment",),
    "pseudo_label_threshold": 0.8,
}
#: What `make model` labels its build (0.3.1: weight-only int8; see models/training/weightonly.py).
SHIPPED_VERSION: Final = "0.3.1"
DATA_FILES: Final = RECIPE_FILES
_GITIGNORE: Final = (
    "# Build outputs of `make model`: only the int8 variant is shipped.\n"
    "model.onnx\nmodel.fp16.onnx\n"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models.training.reproduce", description=__doc__
    )
    parser.add_argument("--data", type=Path, required=True, help="Directory with the data files.")
    parser.add_argument("--out", type=Path, required=True, help="Model directory to write.")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/reproduce"))
    parser.add_argument("--version", default=SHIPPED_VERSION)
    parser.add_argument("--epochs", type=int, default=None, help="Override (quick runs).")
    parser.add_argument("--max-train-minutes", type=float, default=None)
    parser.add_argument(
        "--teacher",
        type=Path,
        default=None,
        help="Skip stage 1 and use this checkpoint (a run's best/) as the teacher.",
    )
    parser.add_argument(
        "--pseudo-label-threshold", type=float, default=None, help="Override (experiments)."
    )
    parser.add_argument(
        "--checklist",
        action="store_true",
        help="Also train on the behavioural suite's train split (models/checklist).",
    )
    return parser


def reproduce(
    data: Path,
    out: Path,
    run_dir: Path,
    *,
    version: str = SHIPPED_VERSION,
    overrides: dict[str, Any] | None = None,
    teacher: Path | None = None,
) -> Path:
    """Train teacher and student, calibrate, export and card the shipped model; returns ``out``."""
    from models.training.config import TrainConfig
    from models.training.run import default_base_model, run_training
    from models.training.ship import export_run

    files = {head: data / name for head, name in DATA_FILES.items()}
    given = overrides or {}
    if teacher is None:
        logger.info("stage 1/2: teacher (%s)", run_dir / "teacher")
        stage1 = {**SHIPPED_CONFIG, **given}
        teacher = run_training(
            TrainConfig(base_model=default_base_model(), **stage1), files, run_dir / "teacher"
        ).best_dir
    logger.info("stage 2/2: student taught by %s (%s)", teacher, run_dir / "student")
    stage2 = {**SHIPPED_CONFIG, **STUDENT_OVERRIDES, **given, "teacher": str(teacher.resolve())}
    result = run_training(
        TrainConfig(base_model=default_base_model(), **stage2), files, run_dir / "student"
    )
    export_run(
        result.run_dir,
        out,
        version=version,
        notes="Built by `python -m models.training.reproduce` (make model).",
    )
    (out / ".gitignore").write_text(_GITIGNORE, encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    from models.exceptions import ModelError

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    overrides: dict[str, Any] = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.max_train_minutes is not None:
        overrides["max_train_minutes"] = args.max_train_minutes
    if args.pseudo_label_threshold is not None:
        overrides["pseudo_label_threshold"] = args.pseudo_label_threshold
    if args.checklist:
        overrides["checklist"] = True
    try:
        reproduce(
            args.data,
            args.out,
            args.run_dir,
            version=args.version,
            overrides=overrides,
            teacher=args.teacher,
        )
    except ModelError as exc:
        logger.error("%s", exc)
        return 2 if isinstance(exc, ValueError) else 1
    logger.info("model written to %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
