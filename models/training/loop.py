"""The training loop of the multi-task model (torch).

Each batch holds rows of one head; its loss is that head's cross entropy (with
label smoothing and mild class weights, and per-row weights where rows carry
them: analyst corrections count more, see :func:`weighted_cross_entropy`),
mixed with a teacher's soft targets on the heads it teaches when the rows have
them (:mod:`models.training.distill`).
AdamW with linear warm-up and linear decay; validation after every epoch, the
best epoch (mean macro-F1 of both heads) kept, early stopping after
``patience`` epochs without improvement.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from torch import nn

from models.training.batches import Batch, HeadData, epoch_batches, to_tensors
from models.training.config import TrainConfig
from models.training.distill import hard_loss_scale, soft_loss
from models.training.network import MultiTaskModel, save_checkpoint

__all__ = [
    "EpochResult",
    "Trainer",
    "checkpoint_score",
    "head_metrics",
    "predict_logits",
    "weighted_cross_entropy",
]

logger = logging.getLogger(__name__)

ProgressHook = Callable[[int, int], None]


@dataclass(frozen=True)
class EpochResult:
    """Validation metrics after one epoch."""

    epoch: int
    train_loss: float
    metrics: dict[str, dict[str, float]]
    score: float
    seconds: float


def predict_logits(
    model: MultiTaskModel, sequences: Sequence[Sequence[int]], batch_size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Both heads' logits for ``sequences`` (length-sorted batches, input order kept).

    The batches run where ``model``'s parameters are (CPU or GPU).
    """
    model.eval()
    device = next(model.parameters()).device
    order = np.argsort([len(s) for s in sequences], kind="stable")
    n_sent = model.sentiment_head.out_features
    n_topic = model.topic_head.out_features
    sent = np.empty((len(sequences), n_sent), dtype=np.float32)
    topic = np.empty((len(sequences), n_topic), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            inputs = (t.to(device) for t in to_tensors([sequences[i] for i in idx]))
            s, t = model(*inputs)
            sent[idx], topic[idx] = s.cpu().numpy(), t.cpu().numpy()
    return sent, topic


def _class_weights(labels: np.ndarray, n_classes: int, power: float) -> torch.Tensor:
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1) / n_classes) ** power, 0)
    weights = weights / (weights[counts > 0].mean() if (counts > 0).any() else 1.0)
    return torch.tensor(weights, dtype=torch.float32)


def weighted_cross_entropy(
    criterion: nn.CrossEntropyLoss,
    logits: torch.Tensor,
    labels: torch.Tensor,
    row_weights: torch.Tensor | None,
    row_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """``criterion``'s mean loss with each row counted ``row_weights`` times.

    A row of weight 2 counts as that row twice; all-ones weights (or ``None``)
    give ``criterion(logits, labels)`` exactly as PyTorch's mean does it: the
    rows' losses summed over the sum of their class weights. ``row_scale``
    multiplies each row's loss without changing how much it counts in the
    mean's denominator (distillation's ``1 - alpha``, see
    :func:`models.training.distill.hard_loss_scale`).

    >>> torch.manual_seed(0); x, y = torch.randn(3, 2), torch.tensor([0, 1, 1])
    <torch._C.Generator object at ...>
    >>> ce = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 0.5]), label_smoothing=0.1)
    >>> twice = weighted_cross_entropy(ce, x, y, torch.tensor([2.0, 1.0, 1.0]))
    >>> bool(torch.isclose(twice, ce(x[[0, 0, 1, 2]], y[[0, 0, 1, 2]])))
    True
    """
    if row_weights is None and row_scale is None:
        return criterion(logits, labels)
    if row_weights is None:
        row_weights = torch.ones(labels.shape[0], dtype=logits.dtype, device=logits.device)
    per_row = nn.functional.cross_entropy(
        logits,
        labels,
        weight=criterion.weight,
        reduction="none",
        label_smoothing=criterion.label_smoothing,
    )
    class_w = criterion.weight[labels] if criterion.weight is not None else torch.ones_like(per_row)
    counted = per_row * row_weights
    if row_scale is not None:
        counted = counted * row_scale
    return counted.sum() / (class_w * row_weights).sum()


def checkpoint_score(metrics: Mapping[str, Mapping[str, float]]) -> float:
    """What chooses the best checkpoint: the mean macro-F1 of the heads."""
    return float(np.mean([m["macro_f1"] for m in metrics.values()]))


def head_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 and row count of one head's logits against its labels."""
    pred = logits.argmax(-1)
    return {
        "accuracy": float(accuracy_score(labels, pred)),
        "macro_f1": float(f1_score(labels, pred, average="macro", zero_division=0)),
        "n": len(labels),
    }


class Trainer:
    """Fits a :class:`MultiTaskModel` on per-head training data."""

    def __init__(
        self,
        model: MultiTaskModel,
        config: TrainConfig,
        train: Sequence[HeadData],
        validation: Sequence[HeadData],
        run_dir: Path,
        checkpoint_extra: dict[str, Any],
    ) -> None:
        self.device = torch.device(config.device)
        self.model = model.to(self.device)
        self.config = config
        self.train_data = [d for d in train if len(d.sequences)]
        self.val_data = [d for d in validation if len(d.sequences)]
        self.run_dir = run_dir
        self.checkpoint_extra = checkpoint_extra
        self.rng = np.random.default_rng(config.effective_train_seed)
        self.losses = {
            d.head: nn.CrossEntropyLoss(
                weight=_class_weights(d.labels, self._n_classes(d.head), config.class_weight_power),
                label_smoothing=config.label_smoothing,
            ).to(self.device)
            for d in self.train_data
        }
        self.best_score = -math.inf
        self.best_epoch = 0
        self._val_arrays: dict[str, np.ndarray] = {}

    def _n_classes(self, head: str) -> int:
        layer = self.model.sentiment_head if head == "sentiment" else self.model.topic_head
        return int(layer.out_features)

    def _optimizer(self, total_steps: int) -> tuple[torch.optim.Optimizer, Any]:
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for name, param in self.model.named_parameters():
            if not param.requires_grad:
                continue
            (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": self.config.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=self.config.learning_rate,
        )
        warmup = max(1, int(self.config.warmup_ratio * total_steps))

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def _step(self, batch: Batch, optimizer: torch.optim.Optimizer, scheduler: Any) -> torch.Tensor:
        """One optimiser step; returns the batch's loss, detached, where it was computed
        (reading it on the host would wait for a GPU after every step)."""
        self.model.train()
        batch = batch.to(self.device)
        sent, topic = self.model(batch.input_ids, batch.attention_mask, batch.token_type_ids)
        logits = sent if batch.head == "sentiment" else topic
        alpha = self.config.distill_alpha
        scale = hard_loss_scale(batch.soft, alpha) if batch.soft else None
        loss = weighted_cross_entropy(
            self.losses[batch.head], logits, batch.labels, batch.weights, scale
        )
        if batch.soft:
            student = {"sentiment": sent, "topic": topic}
            loss = loss + alpha * soft_loss(student, batch.soft, self.config.distill_temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        return loss.detach()

    def validate(self) -> dict[str, dict[str, float]]:
        """Accuracy and macro-F1 of each head on its validation rows."""
        metrics = {}
        self._val_arrays = {}
        for data in self.val_data:
            sent, topic = predict_logits(self.model, data.sequences)
            logits = sent if data.head == "sentiment" else topic
            metrics[data.head] = head_metrics(logits, data.labels)
            self._val_arrays[f"{data.head}_logits"] = logits
            self._val_arrays[f"{data.head}_labels"] = data.labels
        return metrics

    def fit(self, progress: ProgressHook | None = None) -> list[EpochResult]:
        """Train for ``config.epochs`` (or until early stop / time budget)."""
        cfg = self.config
        steps_per_epoch = sum(math.ceil(len(d.sequences) / cfg.batch_size) for d in self.train_data)
        optimizer, scheduler = self._optimizer(steps_per_epoch * cfg.epochs)
        deadline = time.monotonic() + 60 * cfg.max_train_minutes if cfg.max_train_minutes else None
        results: list[EpochResult] = []
        for epoch in range(1, cfg.epochs + 1):
            result, out_of_time = self._epoch(epoch, optimizer, scheduler, deadline, progress)
            results.append(result)
            if self._should_stop(result) or out_of_time:
                break
        return results

    def _epoch(
        self,
        epoch: int,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        deadline: float | None,
        progress: ProgressHook | None,
    ) -> tuple[EpochResult, bool]:
        started = time.monotonic()
        batches = epoch_batches(self.train_data, self.config.batch_size, self.rng)
        total, seen, out_of_time = len(batches), 0, False
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        for i, batch in enumerate(batches, start=1):
            loss_sum += self._step(batch, optimizer, scheduler) * len(batch)
            seen += len(batch)
            if progress is not None:
                progress(i, total)
            if i % self.config.log_every_steps == 0:
                mean = float(loss_sum) / seen
                logger.info("epoch %s step %s/%s loss %.4f", epoch, i, total, mean)
            if deadline is not None and time.monotonic() > deadline:
                logger.warning("time budget reached in epoch %s at step %s/%s", epoch, i, total)
                out_of_time = True
                break
        metrics = self.validate()
        score = checkpoint_score(metrics)
        seconds = time.monotonic() - started
        result = EpochResult(epoch, float(loss_sum) / max(seen, 1), metrics, score, seconds)
        self._record(result)
        return result, out_of_time

    def _record(self, result: EpochResult) -> None:
        line = json.dumps({**result.__dict__, "time": time.time()})
        with (self.run_dir / "metrics.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        logger.info("epoch %s: %s", result.epoch, line)
        if result.score > self.best_score:
            self.best_score, self.best_epoch = result.score, result.epoch
            extra = {**self.checkpoint_extra, "epoch": result.epoch, "metrics": result.metrics}
            save_checkpoint(self.model, self.run_dir / "best", extra)
            # the validation logits of this checkpoint, for calibration (no second pass)
            np.savez(self.run_dir / "best" / "val_logits.npz", **self._val_arrays)  # type: ignore[arg-type]
            logger.info("new best checkpoint (score %.4f) saved", result.score)

    def _should_stop(self, result: EpochResult) -> bool:
        if result.epoch - self.best_epoch >= self.config.patience:
            logger.info("early stop: no improvement for %s epochs", self.config.patience)
            return True
        return False
