"""``finsentinel models calibrate``: temperatures chosen by out-of-fold ECE, written to the card
with reliability tables; labels unchanged; the drift reference recomputed. A real tiny ONNX
model directory, toy labeled rows as a run's ``val_<head>.csv``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from finsentinel.cli import app
from models.calibration import choose_temperature, expected_calibration_error
from models.modeldir import load_model_dir
from models.scoring import Classifier
from tests.models.conftest import toy_sentiment, toy_topic


def test_calibrate_writes_temperatures_and_reliability(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    run = tmp_path / "run"
    run.mkdir()
    toy_sentiment().to_csv(run / "val_sentiment.csv", index=False)
    toy_topic().to_csv(run / "val_topic.csv", index=False)
    texts = list(toy_sentiment()["text"])
    before = Classifier.load(model, provider="cpu").predict(texts)
    old_reference = load_model_dir(model).card.reference

    result = CliRunner().invoke(app, ["models", "calibrate", str(model), "--data", str(run)])

    assert result.exit_code == 0, result.output
    assert "out-of-fold ECE" in result.output
    card = load_model_dir(model).card  # hashes still check out
    for head in ("sentiment", "topic"):
        report = card.metrics["calibration"][head]
        assert report["method"] in {"none", "nll", "ece"}
        assert card.temperature[head] == report["temperature"]
        assert set(report["candidates"]) == {"none", "nll", "ece"}
        rows = report["reliability_out_of_fold"]
        assert sum(r["n"] for r in rows) == report["rows"]
        for r in rows:
            assert 0 <= r["accuracy"] <= 1 and r["low"] <= r["confidence"] <= r["high"]
        entry = card.metrics["validation"][head]["int8"]
        assert {"ece_before", "ece_after"} <= set(entry)
    after = Classifier.load(model, provider="cpu").predict(texts)
    assert [p.sentiment for p in after] == [p.sentiment for p in before]  # argmax unchanged
    assert card.reference is not None and old_reference is not None
    assert card.reference.sha256 != old_reference.sha256  # confidences moved with T


def test_the_chosen_temperature_does_not_lose_on_held_out_ece() -> None:
    """Over-confident logits: the choice beats T = 1 on the half it was not fitted on."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, 1500)
    logits = 4.0 * (1.5 * np.eye(3)[labels] + rng.normal(size=(1500, 3)))
    t, report = choose_temperature(logits, labels)
    candidates = report["candidates"]
    assert isinstance(candidates, dict)
    chosen = candidates[report["method"]]
    assert chosen["out_of_fold_ece"] <= candidates["none"]["out_of_fold_ece"]
    assert t > 1.5  # it cools the over-confident logits down
    probs = np.exp(logits / t - (logits / t).max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    uncalibrated = np.exp(logits - logits.max(axis=1, keepdims=True))
    uncalibrated /= uncalibrated.sum(axis=1, keepdims=True)
    assert expected_calibration_error(probs, labels) < expected_calibration_error(
        uncalibrated, labels
    )
