"""The sweep's plan and summary (the runs themselves are ``run_training``'s, tested there)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from models.training.sweep import _assignment, main, plan_runs, summarise


def test_assignments_read_json_values_and_keep_words() -> None:
    assert _assignment("learning_rate=1e-4,1.5e-4") == ("learning_rate", [1e-4, 1.5e-4])
    assert _assignment("device=cuda") == ("device", ["cuda"])
    assert _assignment("checklist=true") == ("checklist", [True])
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        _assignment("learning_rate")


def test_every_combination_runs_once_per_seed_seed_major() -> None:
    grid = [("distill_alpha", [0.3, 0.7]), ("learning_rate", [1e-4, 2e-4])]
    runs = plan_runs(grid, [[("dropout", [0.2])]], [5, 6])
    assert len(runs) == (4 + 1) * 2
    assert [r["train_seed"] for r in runs] == [5] * 5 + [6] * 5
    assert runs[0] == {"distill_alpha": 0.3, "learning_rate": 1e-4, "train_seed": 5}
    assert runs[4] == {"dropout": 0.2, "train_seed": 5}
    with pytest.raises(ValueError, match="one value per key"):
        plan_runs([], [[("dropout", [0.1, 0.2])]], [0])


def _run(seed: int, sentiment: list[float], topic: list[float]) -> dict[str, object]:
    epochs = [
        {
            "epoch": i + 1,
            "score": (s + t) / 2,  # the trainer's: mean macro-F1 of both heads
            "metrics": {
                "sentiment": {"accuracy": s, "macro_f1": s},
                "topic": {"accuracy": t, "macro_f1": t},
            },
        }
        for i, (s, t) in enumerate(zip(sentiment, topic, strict=True))
    ]
    return {"overrides": {"distill_alpha": 0.3, "train_seed": seed}, "epochs": epochs}


def test_the_summary_takes_each_runs_best_epoch_by_both_heads() -> None:
    # seed 0's best epoch is the second (mean 0.86 > 0.85) though its sentiment is lower there
    rows = summarise([_run(0, [0.88, 0.82], [0.82, 0.90]), _run(1, [0.84], [0.90])])
    (row,) = rows
    assert row["combo"] == {"distill_alpha": 0.3}
    assert row["seeds"] == [0, 1]
    assert row["sentiment_accuracy"]["values"] == [0.82, 0.84]
    assert row["sentiment_accuracy"]["mean"] == pytest.approx(0.83)
    assert row["topic_macro_f1"]["sd"] == pytest.approx(0.0)


def test_a_variant_with_several_values_is_a_usage_error(tmp_path: Path) -> None:
    code = main(
        ["--data", str(tmp_path), "--out", str(tmp_path / "o"), "--variant", "dropout=0.1,0.2"]
    )
    assert code == 2
    assert not (tmp_path / "o").exists()
