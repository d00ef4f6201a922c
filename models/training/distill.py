"""Knowledge distillation: soft-target loss mixed with cross entropy (torch).

A teacher's logits on a training text are a soft target for each head. The
student's loss on a batch of head ``h`` (hard labels for ``h`` only) is

    mean_i(scale_i * CE_i(student_h, labels))
        + alpha * sum_heads T^2 * KL(p_T(teacher) || p_T(student))

where ``p_T = softmax(logits / T)``; the ``T^2`` keeps the soft term's
gradients on the scale of the hard term's as ``T`` grows (Hinton et al.,
2015). Rows without a teacher target (NaN logits) add nothing to the soft term,
which is averaged over the rows that have one. ``scale_i`` is ``1 - alpha`` for
a row with a target on any head and 1 for a row with none (news headlines
written for the project, analyst corrections): a row the teacher never saw
keeps its whole hard loss instead of giving ``alpha`` of it away to nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch.nn import functional as F

__all__ = ["distillation_loss", "hard_loss_scale", "soft_loss"]


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


def soft_loss(
    student: Mapping[str, torch.Tensor],
    teacher: Mapping[str, torch.Tensor],
    temperature: float,
) -> torch.Tensor:
    """The sum of :func:`distillation_loss` over the heads in ``teacher``."""
    first = next(iter(student.values()))
    return sum(
        (distillation_loss(student[head], logits, temperature) for head, logits in teacher.items()),
        start=torch.zeros((), dtype=first.dtype, device=first.device),
    )


def hard_loss_scale(teacher: Mapping[str, torch.Tensor], alpha: float) -> torch.Tensor:
    """Each row's factor on its cross entropy: ``1 - alpha`` if it has a soft target, else 1.

    >>> nan = float("nan")
    >>> scale = hard_loss_scale({"topic": torch.tensor([[1.0, 0.0], [nan, nan]])}, 0.3)
    >>> [round(x, 3) for x in scale.tolist()]
    [0.7, 1.0]
    """
    taught = torch.stack([~torch.isnan(t).any(dim=-1) for t in teacher.values()]).any(dim=0)
    return torch.where(taught, 1.0 - alpha, 1.0)
