"""The training loop learns a separable toy task; the run directory is complete."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.data import LabeledSet
from models.exceptions import TrainingError
from models.training.config import TrainConfig
from models.training.run import run_training, split_files


def test_toy_task_is_learned(toy_run: Path) -> None:
    lines = (toy_run / "metrics.jsonl").read_text().splitlines()
    history = [json.loads(line) for line in lines]
    assert len(history) >= 2
    best = max(history, key=lambda e: e["score"])
    assert best["metrics"]["sentiment"]["accuracy"] >= 0.9
    assert best["metrics"]["topic"]["accuracy"] >= 0.9
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_run_directory_contents(toy_run: Path) -> None:
    for name in ("config.json", "data.json", "metrics.jsonl", "val_sentiment.csv", "val_topic.csv"):
        assert (toy_run / name).is_file(), name
    for name in ("model.pt", "heads.json", "config.json", "tokenizer.json", "val_logits.npz"):
        assert (toy_run / "best" / name).is_file(), name
    data = json.loads((toy_run / "data.json").read_text())
    assert data["sentiment"]["validation_rows"] == 18  # 25% of 24 rows per class
    with np.load(toy_run / "best" / "val_logits.npz") as arrays:
        assert arrays["sentiment_logits"].shape == (18, 3)
        assert arrays["topic_logits"].shape == (9, 20)


def test_split_is_deterministic_and_stratified(toy_data: dict[str, Path]) -> None:
    config = TrainConfig(base_model="unused", val_fraction=0.25, seed=3)
    a = split_files(toy_data, config)
    b = split_files(toy_data, config)
    assert a["sentiment"].validation.texts == b["sentiment"].validation.texts
    val: LabeledSet = a["sentiment"].validation
    assert np.bincount(val.labels).tolist() == [6, 6, 6]
    assert not set(val.texts) & set(a["sentiment"].train.texts)


def test_no_files_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="at least one"):
        run_training(TrainConfig(base_model="unused"), {}, tmp_path)


def test_train_seed_changes_the_run_but_not_the_validation_split(
    toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    import torch

    base = {"base_model": str(tiny_base_model), "max_length": 32, "epochs": 1, "batch_size": 16}
    base |= {"val_fraction": 0.25, "seed": 3, "threads": 1}
    runs = {
        name: run_training(TrainConfig(**base, **extra), toy_data, tmp_path / name).best_dir
        for name, extra in (
            ("plain", {}),
            ("same", {"train_seed": 3}),
            ("other", {"train_seed": 4}),
        )
    }
    weights = {
        name: torch.load(best / "model.pt", weights_only=True) for name, best in runs.items()
    }
    name = "sentiment_head.weight"
    # train_seed None is seed itself: the same run, bit for bit
    assert torch.equal(weights["plain"][name], weights["same"][name])
    assert not torch.equal(weights["plain"][name], weights["other"][name])
    for head in ("sentiment", "topic"):  # one split for all three
        val = {n: (tmp_path / n / f"val_{head}.csv").read_text() for n in runs}
        assert val["plain"] == val["same"] == val["other"]


def test_init_seed_gives_runs_of_other_train_seeds_one_starting_point(
    toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    """What averaging weights needs (models/training/soup.py): the same heads at the start."""
    import torch

    # a learning rate so small that the trained heads are still their initialisation
    base = {"base_model": str(tiny_base_model), "max_length": 32, "epochs": 1, "batch_size": 16}
    base |= {"val_fraction": 0.25, "threads": 1, "learning_rate": 1e-12, "warmup_ratio": 0.0}
    runs = {
        name: run_training(TrainConfig(**base, **extra), toy_data, tmp_path / name).best_dir
        for name, extra in (
            ("shared1", {"init_seed": 7, "train_seed": 1}),
            ("shared2", {"init_seed": 7, "train_seed": 2}),
            ("own2", {"train_seed": 2}),
        )
    }
    heads = {
        name: torch.load(best / "model.pt", weights_only=True)["topic_head.weight"]
        for name, best in runs.items()
    }
    assert torch.allclose(heads["shared1"], heads["shared2"], atol=1e-6)
    assert not torch.allclose(heads["shared2"], heads["own2"], atol=1e-3)
