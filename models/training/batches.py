"""Length-grouped, head-homogeneous batches for multi-task training (numpy, torch)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from models.encoding import pad_batch

__all__ = ["Batch", "HeadData", "epoch_batches", "to_tensors"]

_GROUP = 50  # batches per length-sorting pool: enough grouping, still shuffled


@dataclass(frozen=True)
class HeadData:
    """Token ids and integer labels of one head's training rows.

    ``soft`` maps a head to the teacher's logits on these rows (``[n, classes]``,
    NaN where the teacher gave none): distillation targets, for any head.
    ``weights`` scale each row's loss (``None``: all 1; analyst corrections weigh more).
    """

    head: str
    sequences: list[tuple[int, ...]]
    labels: np.ndarray
    soft: Mapping[str, np.ndarray] = field(default_factory=dict)
    weights: np.ndarray | None = None


@dataclass(frozen=True)
class Batch:
    """One batch of one head."""

    head: str
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    labels: torch.Tensor
    #: head -> teacher logits for these rows (NaN rows: no target).
    soft: Mapping[str, torch.Tensor] = field(default_factory=dict)
    #: Per-row loss weights (``None``: every row weighs 1).
    weights: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device) -> Batch:
        """This batch with every tensor on ``device`` (itself when already there)."""
        if self.labels.device == device:
            return self
        return Batch(
            self.head,
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.token_type_ids.to(device),
            self.labels.to(device),
            {head: t.to(device) for head, t in self.soft.items()},
            None if self.weights is None else self.weights.to(device),
        )


def to_tensors(sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, ...]:
    """Pad to the longest member and convert to int64 tensors."""
    return tuple(torch.from_numpy(a) for a in pad_batch(sequences))


def _head_batches(data: HeadData, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(len(data.sequences))
    pool = batch_size * _GROUP
    batches: list[np.ndarray] = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort([len(data.sequences[i]) for i in chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return batches


def epoch_batches(
    heads: Sequence[HeadData], batch_size: int, rng: np.random.Generator
) -> list[Batch]:
    """All batches of one epoch, both heads interleaved in random order."""
    plan = [(data, idx) for data in heads for idx in _head_batches(data, batch_size, rng)]
    out: list[Batch] = []
    for k in rng.permutation(len(plan)):
        data, idx = plan[k]
        ids, mask, types = to_tensors([data.sequences[i] for i in idx])
        labels = torch.from_numpy(data.labels[idx].astype(np.int64))
        soft = {head: torch.from_numpy(logits[idx]) for head, logits in data.soft.items()}
        weights = None
        if data.weights is not None:
            weights = torch.from_numpy(data.weights[idx].astype(np.float32))
        out.append(Batch(data.head, ids, mask, types, labels, soft, weights))
    return out
