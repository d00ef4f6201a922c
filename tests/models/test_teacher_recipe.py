"""The teacher's and the accurate variant's recipes (no training: those take an hour)."""

from __future__ import annotations

import pytest

from models.training.config import TrainConfig
from models.training.reproduce import SHIPPED_TEACHER, STUDENT_OVERRIDES
from models.training.teacher import ACCURATE_CONFIG, TEACHER_CONFIG, main


def test_the_accurate_variant_learns_from_the_student_data_with_lighter_distillation() -> None:
    config = TrainConfig(base_model="mpnet", **ACCURATE_CONFIG)
    # the committed ensemble's topic distributions, at a lower weight than the student's,
    # and no sentiment pseudo-labels (1.3.0; models/README.md, experiments)
    assert config.soft_labels == str(SHIPPED_TEACHER) and SHIPPED_TEACHER.is_file()
    assert config.teacher is None and config.pseudo_label_heads == ()
    assert config.distill_heads == ("topic",)
    assert 0 < config.distill_alpha < STUDENT_OVERRIDES["distill_alpha"]
    for key in ("extra_data", "extra_weight", "extra_topic_weight", "checklist"):
        assert getattr(config, key) == STUDENT_OVERRIDES[key], key
    # ... on the teacher's encoder settings: the frozen, cached lower half
    keys = ("max_length", "freeze_layers", "cache_frozen_layers", "val_fraction", "seed")
    for key in (*keys, "learning_rate", "epochs"):
        assert getattr(config, key) == TEACHER_CONFIG[key], key


@pytest.mark.parametrize(
    "args",
    [
        ["--data", "d"],
        ["--data", "d", "--accurate", "--soft-labels", "x.npz"],
        ["--data", "d", "--accurate", "--teacher", "runs/teacher/best"],
        ["--data", "d", "--accurate", "--int8"],
        ["--data", "d", "--accurate", "--label-minutes", "5"],
    ],
    ids=["neither", "both", "accurate-with-a-checkpoint", "accurate-int8", "accurate-budget"],
)
def test_teacher_cli_wants_soft_labels_or_accurate(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert "--accurate" in capsys.readouterr().err
