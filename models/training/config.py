"""Hyper-parameters of a training run, validated once (no torch)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["TrainConfig"]


class TrainConfig(BaseModel):
    """Everything that determines a training run besides the data files.

    >>> TrainConfig(base_model="/models/minilm").max_length
    128
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Local Hugging Face encoder directory (config.json, weights, tokenizer.json).
    base_model: str
    max_length: Annotated[int, Field(ge=8, le=512)] = 128
    epochs: Annotated[int, Field(ge=1, le=100)] = 4
    batch_size: Annotated[int, Field(ge=1, le=1024)] = 32
    learning_rate: Annotated[float, Field(gt=0, lt=1)] = 8e-5
    weight_decay: Annotated[float, Field(ge=0, lt=1)] = 0.01
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.06
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.05
    #: Class weight = (1 / frequency) ** power, normalised; 0 turns weighting off.
    class_weight_power: Annotated[float, Field(ge=0, le=1)] = 0.5
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    #: Keep the encoder's embeddings fixed (large encoders on a CPU budget).
    freeze_embeddings: bool = False
    #: Keep the lowest N encoder layers fixed (backpropagation stops above them).
    freeze_layers: Annotated[int, Field(ge=0)] = 0
    #: Compute the frozen embeddings and lower layers once per text and keep their
    #: output (:mod:`models.training.frozencache`): every step then runs only the
    #: upper layers. Needs ``freeze_embeddings`` and ``freeze_layers`` >= 1.
    cache_frozen_layers: bool = False
    max_grad_norm: Annotated[float, Field(gt=0)] = 1.0
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1
    #: Seed of the validation split (and of everything else unless ``train_seed`` is given).
    seed: int = 0
    #: Seed of the initialisation, dropout and batch order alone; None: ``seed``. Runs
    #: that differ only here share one validation split (and its soft-label files), so
    #: they measure how much of a result is the seed's.
    train_seed: int | None = None
    #: Seed of the heads' initialisation alone; None: the train seed's stream as before.
    #: Runs that share it and differ in ``train_seed`` (dropout, batch order) start from
    #: one set of weights, as averaging their weights needs (:mod:`models.training.soup`).
    init_seed: int | None = None
    #: Epochs without validation improvement before stopping.
    patience: Annotated[int, Field(ge=1)] = 2
    #: Stop after this much training time (the epoch in progress is validated).
    max_train_minutes: Annotated[float, Field(gt=0)] | None = None
    #: Use at most this many training rows per head (quick runs).
    max_train_rows: Annotated[int, Field(ge=1)] | None = None
    #: torch intra-op threads; None: all cores we may use.
    threads: Annotated[int, Field(ge=1)] | None = None
    #: Where the network trains: ``cpu``, or ``cuda`` (the first visible GPU; an error
    #: where torch sees none). GPU runs are repeatable on one GPU but not bit-for-bit
    #: equal to CPU runs: the shipped recipes train on the CPU.
    device: Literal["cpu", "cuda"] = "cpu"
    log_every_steps: Annotated[int, Field(ge=1)] = 50
    #: Self-training: a checkpoint directory (an earlier run's ``best/``) whose
    #: confident predictions label the other heads' training texts for the
    #: heads in ``pseudo_label_heads`` (see :mod:`models.training.selftrain`).
    teacher: str | None = None
    pseudo_label_heads: tuple[Literal["sentiment", "topic"], ...] = ("sentiment",)
    #: Keep a pseudo-label when the teacher's top probability reaches this.
    pseudo_label_threshold: Annotated[float, Field(gt=0, le=1)] = 0.8
    #: Extra labeled files (``text`` plus ``sentiment`` and/or ``topic`` columns) whose
    #: rows join the training rows only (see :mod:`models.training.extra`).
    extra_data: tuple[str, ...] = ()
    #: Add the behavioural suite's train split (:mod:`models.checklist`) to the training rows.
    checklist: bool = False
    #: Loss weight of the ``extra_data`` and ``checklist`` rows (1 for every other row).
    extra_weight: Annotated[float, Field(gt=0, le=100)] = 1.0
    #: Loss weight of those rows' *topic* labels; None: ``extra_weight``. Headlines
    #: teach the sentiment head what tweets cannot, while their topic rows pull the
    #: topic head away from tweets, so the recipe weighs the two apart.
    extra_topic_weight: Annotated[float, Field(gt=0, le=100)] | None = None
    #: Distillation: a soft-label file (:mod:`models.training.softlabels`) whose
    #: teacher logits become soft targets for the ``distill_heads`` of the training rows.
    soft_labels: str | None = None
    #: The heads the soft targets teach. A head taught by hard pseudo-labels
    #: (``teacher`` + ``pseudo_label_heads``) gets soft targets too only when it is
    #: also in ``distill_own_rows``.
    distill_heads: Annotated[tuple[Literal["sentiment", "topic"], ...], Field(min_length=1)] = (
        "sentiment",
        "topic",
    )
    #: Heads of ``distill_heads`` taught on the rows of their own file only (people's
    #: labels), never on the other head's texts: those keep their hard pseudo-labels
    #: (a soft-label file keys a text under its own file's head, so a pseudo-labeled
    #: row finds no target), or nothing where the teacher is unsure.
    distill_own_rows: tuple[Literal["sentiment", "topic"], ...] = ()
    #: Softmax temperature of the soft targets (and of the student, in that term).
    distill_temperature: Annotated[float, Field(gt=0)] = 2.0
    #: Weight of the soft term; the hard cross entropy of a row with a soft target
    #: gets ``1 - distill_alpha`` (a row without one keeps all of it).
    distill_alpha: Annotated[float, Field(ge=0, le=1)] = 0.5
    #: Analyst feedback: a feedback store (or its export) whose ``train``-split
    #: corrections join the training rows of the heads they label (never the
    #: validation rows); ``holdout``-split ones never join training
    #: (see :mod:`models.training.feedback`).
    feedback: str | None = None
    #: Loss weight of a correction's row, relative to 1 for every other training row.
    feedback_weight: Annotated[float, Field(gt=0, le=100)] = 2.0

    @property
    def effective_train_seed(self) -> int:
        """The seed of initialisation, dropout and batch order."""
        return self.seed if self.train_seed is None else self.train_seed

    @model_validator(mode="after")
    def _cache_needs_frozen_layers(self) -> TrainConfig:
        if self.cache_frozen_layers and not (self.freeze_embeddings and self.freeze_layers):
            raise ValueError(
                "cache_frozen_layers needs freeze_embeddings and freeze_layers >= 1: only a "
                "frozen part of the encoder can be computed once"
            )
        return self

    @model_validator(mode="after")
    def _one_teacher_kind(self) -> TrainConfig:
        if self.teacher is None or self.soft_labels is None:
            return self
        both = sorted(
            set(self.pseudo_label_heads) & set(self.distill_heads) - set(self.distill_own_rows)
        )
        if both:
            raise ValueError(
                f"the {', '.join(both)} head would get hard pseudo-labels (teacher) on some of "
                "the other head's texts and soft targets (soft_labels) on all of them, not both: "
                "give one, distill_heads without it, or the head in distill_own_rows"
            )
        return self

    @model_validator(mode="after")
    def _own_rows_are_distilled(self) -> TrainConfig:
        stray = sorted(set(self.distill_own_rows) - set(self.distill_heads))
        if stray:
            raise ValueError(
                f"distill_own_rows names {', '.join(stray)}, which distill_heads does not teach"
            )
        return self
