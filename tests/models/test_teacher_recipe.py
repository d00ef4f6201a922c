"""The teacher's and the accurate variant's recipes (no training: those take an hour)."""

from __future__ import annotations

import pytest

from models.training.config import TrainConfig
from models.training.reproduce import SHIPPED_TEACHER, STUDENT_OVERRIDES
from models.training.teacher import ACCURATE_CONFIG, TEACHER_CONFIG, main


def test_the_accurate_variant_learns_what_the_shipped_student_learns() -> None:
    config = TrainConfig(base_model="mpnet", **ACCURATE_CONFIG)
    assert config.teacher == config.soft_labels == str(SHIPPED_TEACHER)
    assert SHIPPED_TEACHER.is_file()
    for key in ("pseudo_label_heads", "distill_heads", "distill_alpha", "extra_data", "checklist"):
        assert getattr(config, key) == STUDENT_OVERRIDES[key], key
    # ... on the teacher's encoder settings: the frozen, cached lower half
    for key in ("max_length", "freeze_layers", "cache_frozen_layers", "val_fraction", "seed"):
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
