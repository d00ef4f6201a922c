"""Weight averaging of seed runs (models/training/soup.py) on tiny runs of the toy data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.exceptions import TrainingError
from models.scoring import Classifier
from models.training.config import TrainConfig
from models.training.network import load_checkpoint
from models.training.run import run_training
from models.training.ship import export_run
from models.training.soup import _validation_logits, average_state_dicts, soup_runs

BASE = {"max_length": 32, "epochs": 2, "batch_size": 16, "val_fraction": 0.25, "threads": 1}
BASE |= {"init_seed": 0}  # one starting point for every member (what averaging needs)


@pytest.fixture(scope="module")
def seed_runs(
    toy_data: dict[str, Path], tiny_base_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[Path]:
    """The toy recipe at train seeds 0, 1 and 2 (one validation split, one initialisation)."""
    root = tmp_path_factory.mktemp("seed_runs")
    return [
        run_training(
            TrainConfig(base_model=str(tiny_base_model), train_seed=seed, **BASE),
            toy_data,
            root / f"seed{seed}",
        ).run_dir
        for seed in (0, 1, 2)
    ]


def test_average_is_the_element_wise_mean_and_keeps_integer_buffers() -> None:
    states = [
        {"w": torch.tensor([[1.0, 2.0]]), "b": torch.tensor([0.5]), "ids": torch.arange(3)}
        for _ in range(3)
    ]
    states[1]["w"] = torch.tensor([[4.0, -2.0]])
    states[2]["w"] = torch.tensor([[7.0, 3.0]])
    mean = average_state_dicts(states)
    assert torch.allclose(mean["w"], torch.tensor([[4.0, 1.0]]))
    assert torch.equal(mean["b"], torch.tensor([0.5]))
    assert torch.equal(mean["ids"], torch.arange(3)) and mean["ids"].dtype == torch.int64
    assert mean["w"].dtype == torch.float32


@pytest.mark.parametrize(
    ("other", "message"),
    [
        ({"w": torch.zeros(2)}, "other parameters"),
        ({"w": torch.zeros(3), "ids": torch.arange(3)}, r"w: member 1 has \(3,\)"),
        ({"w": torch.zeros(2), "ids": torch.arange(1, 4)}, "non-floating tensor differs"),
    ],
)
def test_members_that_do_not_fit_together_are_an_error(
    other: dict[str, torch.Tensor], message: str
) -> None:
    first = {"w": torch.ones(2), "ids": torch.arange(3)}
    with pytest.raises(TrainingError, match=message):
        average_state_dicts([first, other])


def test_soup_averages_the_best_checkpoints_and_scores_itself(
    seed_runs: list[Path], tmp_path: Path
) -> None:
    summary = soup_runs(seed_runs, tmp_path / "soup")
    states = [torch.load(run / "best" / "model.pt", weights_only=True) for run in seed_runs]
    soup = torch.load(tmp_path / "soup" / "best" / "model.pt", weights_only=True)
    for name in ("sentiment_head.weight", "encoder.embeddings.word_embeddings.weight"):
        expected = (states[0][name] + states[1][name] + states[2][name]) / 3
        assert torch.allclose(soup[name], expected, atol=1e-6)
    assert [m["train_seed"] for m in summary["members"]] == [0, 1, 2]
    recorded = json.loads((tmp_path / "soup" / "soup.json").read_text())
    assert recorded["score"] == pytest.approx(summary["score"])
    # every member's epochs, tagged with its seed; the split's files copied unchanged
    history = (tmp_path / "soup" / "metrics.jsonl").read_text().splitlines()
    assert {json.loads(line)["member_train_seed"] for line in history} == {0, 1, 2}
    assert (tmp_path / "soup" / "val_topic.csv").read_bytes() == (
        seed_runs[0] / "val_topic.csv"
    ).read_bytes()
    # the soup's validation logits are its own (what calibration is fitted on)
    model, _ = load_checkpoint(tmp_path / "soup" / "best")
    with np.load(tmp_path / "soup" / "best" / "val_logits.npz") as saved:
        arrays, _ = _validation_logits(
            model, seed_runs[0], tmp_path / "soup" / "best" / "tokenizer.json", 32
        )
        for key, value in arrays.items():
            np.testing.assert_allclose(saved[key], value, atol=1e-6)


def test_recomputed_validation_logits_equal_the_training_loops(seed_runs: list[Path]) -> None:
    """The soup scores itself as the training loop scores a checkpoint: same rows, same
    encoding, same logits (checked on a member against what its run saved)."""
    run = seed_runs[1]
    model, extra = load_checkpoint(run / "best")
    arrays, metrics = _validation_logits(model, run, run / "best" / "tokenizer.json", 32)
    with np.load(run / "best" / "val_logits.npz") as saved:
        for key in saved.files:
            np.testing.assert_allclose(arrays[key], saved[key], atol=1e-5)
    for head, values in metrics.items():
        assert values["macro_f1"] == pytest.approx(extra["metrics"][head]["macro_f1"])


def test_a_soup_exports_and_loads_like_any_run(seed_runs: list[Path], tmp_path: Path) -> None:
    soup_runs(seed_runs[:2], tmp_path / "soup")
    out = export_run(
        tmp_path / "soup", tmp_path / "model", variants=("fp32", "int8"), min_agreement=0.9
    )
    clf = Classifier.load(out, provider="cpu")
    assert len(clf.predict(["Acme shares soar on record profit"])) == 1
    card = json.loads((out / "model_card.json").read_text())
    assert card["metrics"]["best_epoch"] is None
    assert {line["member_train_seed"] for line in card["metrics"]["training_history"]} == {0, 1}


def test_runs_of_another_recipe_or_split_are_refused(
    seed_runs: list[Path], toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    other = run_training(
        TrainConfig(base_model=str(tiny_base_model), **{**BASE, "learning_rate": 1e-3}),
        toy_data,
        tmp_path / "other_lr",
    ).run_dir
    with pytest.raises(TrainingError, match=r"another recipe.*learning_rate"):
        soup_runs([seed_runs[0], other], tmp_path / "soup")
    with pytest.raises(TrainingError, match="at least two"):
        soup_runs(seed_runs[:1], tmp_path / "soup")
    with pytest.raises(TrainingError, match="not a training run"):
        soup_runs([seed_runs[0], tmp_path], tmp_path / "soup")


def test_members_initialised_from_their_own_seeds_are_averaged_with_a_warning(
    toy_data: dict[str, Path],
    tiny_base_model: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    own = {k: v for k, v in BASE.items() if k != "init_seed"}
    runs = [
        run_training(
            TrainConfig(base_model=str(tiny_base_model), train_seed=seed, **own),
            toy_data,
            tmp_path / f"own{seed}",
        ).run_dir
        for seed in (0, 1)
    ]
    with caplog.at_level("WARNING", logger="models.training.soup"):
        soup_runs(runs, tmp_path / "soup")
    assert "init_seed unset" in caplog.text
