"""Training on a GPU (``TrainConfig.device``): a clear error without one, and the
same outputs as a CPU run where one is present.

This machine and CI have no GPU, so the GPU test is skipped here; it runs where
torch sees CUDA (the project ran it on an NVIDIA H200, models/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from models.exceptions import TrainingError
from models.training.batches import Batch, HeadData, epoch_batches
from models.training.config import TrainConfig
from models.training.network import load_checkpoint
from models.training.run import run_training

runner = CliRunner()


_NO_GPU = not torch.cuda.is_available()


@pytest.mark.skipif(not _NO_GPU, reason="the error is for machines without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error_before_anything_is_written(
    toy_data: dict[str, Path], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingError, match="sees no GPU; train with device cpu"):
        run_training(TrainConfig(base_model="unused", device="cuda"), toy_data, run_dir)
    assert not run_dir.exists()


@pytest.mark.skipif(not _NO_GPU, reason="the error is for machines without a GPU")
def test_train_cli_device_cuda_without_a_gpu_exits_2(
    app: typer.Typer, toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    args = [
        "train", "--sentiment-data", str(toy_data["sentiment"]), "--run-dir", str(tmp_path / "r"),
        "--base-model", str(tiny_base_model), "--device", "cuda",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "sees no GPU" in result.output
    assert "Traceback" not in result.output


def test_train_cli_rejects_an_unknown_device(
    app: typer.Typer, toy_data: dict[str, Path], tmp_path: Path
) -> None:
    args = [
        "train", "--sentiment-data", str(toy_data["sentiment"]), "--run-dir", str(tmp_path / "r"),
        "--device", "tpu",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "--device" in result.output
    assert "'cpu' or 'cuda'" in result.output


def _batch() -> Batch:
    data = HeadData(
        "sentiment",
        [(1, 5, 2), (1, 6, 7, 2)],
        np.array([0, 2]),
        soft={"topic": np.array([[0.5, np.nan], [1.0, 2.0]], dtype=np.float32)},
        weights=np.array([1.0, 2.0]),
    )
    (batch,) = epoch_batches([data], 4, np.random.default_rng(0))
    return batch


def test_a_batch_moves_every_tensor_to_the_device() -> None:
    batch = _batch()
    assert batch.to(torch.device("cpu")) is batch  # already there: no copies
    moved = batch.to(torch.device("meta"))  # a device every machine has
    assert moved.head == "sentiment"
    tensors = [moved.input_ids, moved.attention_mask, moved.token_type_ids, moved.labels]
    tensors += [*moved.soft.values(), moved.weights]
    assert all(t is not None and t.device.type == "meta" for t in tensors)
    assert [t.shape for t in tensors] == [
        batch.input_ids.shape,
        batch.attention_mask.shape,
        batch.token_type_ids.shape,
        batch.labels.shape,
        batch.soft["topic"].shape,
        batch.weights.shape if batch.weights is not None else None,
    ]


@pytest.mark.skipif(_NO_GPU, reason="needs a CUDA GPU (none on this machine)")
def test_a_gpu_run_learns_the_toy_task_and_its_checkpoint_loads_on_a_cpu(
    toy_run: Path, toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    cpu_config = json.loads((toy_run / "config.json").read_text())
    config = TrainConfig.model_validate({**cpu_config, "device": "cuda"})
    run_training(config, toy_data, tmp_path)
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    best = max(history, key=lambda e: e["score"])
    assert best["metrics"]["sentiment"]["accuracy"] >= 0.9
    assert best["metrics"]["topic"]["accuracy"] >= 0.9
    state = torch.load(tmp_path / "best" / "model.pt", weights_only=True)  # no map_location
    assert {t.device.type for t in state.values()} == {"cpu"}
    model, _ = load_checkpoint(tmp_path / "best")
    assert next(model.parameters()).device.type == "cpu"
