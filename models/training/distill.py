"""Knowledge distillation: soft-target loss mixed with cross entropy (torch).

A teacher's logits on a training text are a soft target for each head. The
student's loss on a batch of head ``h`` (hard labels for ``h`` only) is

    (1 - alpha) * CE(student_h, labels) + alpha * sum_heads T^2 * KL(p_T(teacher) || p_T(student))

where ``p_T = softmax(logits / T)``; the ``T^2`` keeps the soft term's
gradients on the scale of the hard term's as ``T`` grows (Hinton et al.,
2015). Rows without a teacher target (NaN logits) add nothing to the soft term,
which is averaged over the rows that have one.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch.nn import functional as F

__all__ = ["distillation_loss", "mixed_loss"]


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, mean over rows with a target.

    Rows of ``teacher_logits`` that hold NaN have no target and are skipped; a
    batch without any target gives 0.

    >>> s = torch.tensor([[2.0, 0.0]])
    >>> round(float(distillation_loss(s, s.clone(), 2.0)), 6)
    0.0
    """
    has_target = ~torch.isnan(teacher_logits).any(dim=-1)
    if not bool(has_target.any()):
        return student_logits.sum() * 0.0  # keeps the graph, adds nothing
    student = F.log_softmax(student_logits[has_target] / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits[has_target].to(student.dtype) / temperature, dim=-1)
    kl = F.kl_div(student, teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


def mixed_loss(
    hard_loss: torch.Tensor,
    student: Mapping[str, torch.Tensor],
    teacher: Mapping[str, torch.Tensor],
    *,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """``(1 - alpha) * hard_loss + alpha * sum`` of each taught head's distillation loss."""
    soft = sum(
        (distillation_loss(student[head], logits, temperature) for head, logits in teacher.items()),
        start=torch.zeros((), dtype=hard_loss.dtype),
    )
    return (1.0 - alpha) * hard_loss + alpha * soft
