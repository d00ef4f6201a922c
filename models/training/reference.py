"""Give a model directory its drift reference profile (no torch).

``python -m models.training.reference --model DIR --recipe-data DATA_DIR`` runs
the model over the recipe's held-out validation texts (both heads' files, the
split :data:`~models.training.reproduce.SHIPPED_CONFIG` holds out), and
``--data FILE`` (repeatable; CSV, JSON Lines or Parquet with a text column, labels
ignored) over any other texts. The profile (:class:`models.drift.Reference`) is
written to ``reference.json`` and listed in the card; every other file and hash
stays as it was. ``finsentinel export`` does the same with the run's validation
rows. The scorer compares its sliding window of scored documents with it.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from models.data import load_labeled, read_table, stratified_split
from models.drift import DEFAULT_CONFIDENCE_FLOOR, Reference, profile, save_reference
from models.exceptions import DataError, ModelError
from models.labels import HEADS
from models.modeldir import ModelDir

__all__ = [
    "add_reference",
    "compute_reference",
    "main",
    "read_texts",
    "recipe_source",
    "recipe_validation_texts",
]

logger = logging.getLogger(__name__)


def _unique(texts: Iterable[str]) -> list[str]:
    """Non-blank texts, first occurrence kept, in order."""
    return list(dict.fromkeys(t for t in (str(x).strip() for x in texts) if t))


def recipe_validation_texts(
    data_dir: Path, *, val_fraction: float | None = None, seed: int | None = None
) -> list[str]:
    """The texts the recipe holds out for validation, both heads, duplicates dropped.

    The same split as ``finsentinel train`` and ``make model`` (stratified, by
    default ``val_fraction`` and ``seed`` of the shipped recipe).
    """
    from models.training.reproduce import DATA_FILES, SHIPPED_CONFIG

    fraction = SHIPPED_CONFIG["val_fraction"] if val_fraction is None else val_fraction
    seed = SHIPPED_CONFIG["seed"] if seed is None else seed
    texts: list[str] = []
    for head in HEADS:
        data = load_labeled(Path(data_dir) / DATA_FILES[head], head)
        _, val_idx = stratified_split(data.labels, fraction, seed)
        texts.extend(data.subset(val_idx).texts)
    return _unique(texts)


def read_texts(paths: Sequence[Path], *, text_column: str = "text") -> list[str]:
    """The texts of labeled or unlabeled tables, duplicates dropped."""
    texts: list[str] = []
    for path in paths:
        frame = read_table(path)
        if text_column not in frame.columns:
            raise DataError(f"{path}: no column {text_column!r} (columns: {list(frame.columns)})")
        texts.extend(frame[text_column].dropna().astype(str))
    unique = _unique(texts)
    if not unique:
        raise DataError(f"no non-empty {text_column!r} values in {[str(p) for p in paths]}")
    return unique


def compute_reference(
    model_dir: Path | ModelDir,
    texts: Sequence[str],
    *,
    source: str,
    confidence_floor: float = DEFAULT_CONFIDENCE_FLOOR,
    intra_op_threads: int | None = None,
) -> Reference:
    """Score ``texts`` with the model's CPU variant (as the scorer would) and profile them."""
    from models.scoring import Classifier

    path = model_dir.path if isinstance(model_dir, ModelDir) else model_dir
    classifier = Classifier.load(path, provider="cpu", intra_op_threads=intra_op_threads)
    card = classifier.card
    predictions = classifier.predict(list(texts))
    labels = {"sentiment": card.sentiment_labels, "topic": card.topic_labels}
    return profile(predictions, labels, confidence_floor=confidence_floor, source=source)


def add_reference(
    model_dir: Path,
    texts: Sequence[str],
    *,
    source: str,
    confidence_floor: float = DEFAULT_CONFIDENCE_FLOOR,
    intra_op_threads: int | None = None,
) -> ModelDir:
    """Compute the reference of ``texts`` and store it in ``model_dir``; returns it reloaded."""
    reference = compute_reference(
        model_dir,
        texts,
        source=source,
        confidence_floor=confidence_floor,
        intra_op_threads=intra_op_threads,
    )
    loaded = save_reference(Path(model_dir), reference)
    logger.info(
        "%s: reference profile of %s texts (%s) written", model_dir, reference.n_documents, source
    )
    return loaded


def recipe_source() -> str:
    from models.training.reproduce import DATA_FILES, SHIPPED_CONFIG

    files = " and ".join(DATA_FILES[h] for h in HEADS)
    return (
        f"the recipe's held-out validation split of {files} "
        f"(val_fraction {SHIPPED_CONFIG['val_fraction']}, seed {SHIPPED_CONFIG['seed']})"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models.training.reference",
        description="Add a drift reference profile (reference.json) to a model directory.",
    )
    parser.add_argument("--model", type=Path, required=True, help="The model directory.")
    texts = parser.add_mutually_exclusive_group(required=True)
    texts.add_argument(
        "--data",
        type=Path,
        action="append",
        help="A CSV/JSONL/Parquet file of texts (labels ignored); repeat for more.",
    )
    texts.add_argument(
        "--recipe-data",
        type=Path,
        help="The training-data directory: use the recipe's held-out validation texts.",
    )
    parser.add_argument("--text-column", default="text")
    parser.add_argument(
        "--confidence-floor",
        type=float,
        default=DEFAULT_CONFIDENCE_FLOOR,
        help="A top-class probability under this counts as low confidence (default 0.5).",
    )
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime CPU threads.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2: bad input, 1: a model error)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        if args.recipe_data is not None:
            texts = recipe_validation_texts(args.recipe_data)
            source = recipe_source()
        else:
            texts = read_texts(args.data, text_column=args.text_column)
            source = ", ".join(p.name for p in args.data)
        add_reference(
            args.model,
            texts,
            source=source,
            confidence_floor=args.confidence_floor,
            intra_op_threads=args.threads,
        )
    except ModelError as exc:
        logger.error("%s", exc)
        return 2 if isinstance(exc, ValueError) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
