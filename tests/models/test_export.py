"""Exporting a trained run: parity holds, card is complete, int8 agrees with fp32."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.modeldir import load_model_dir
from models.scoring import Classifier
from models.training.ship import export_run


@pytest.fixture(scope="module")
def toy_model(toy_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toy_model")
    # A 32-wide random-init encoder quantizes coarsely; the real model is held to 0.99.
    return export_run(toy_run, out, version="toy-1", variants=("fp32", "int8"), min_agreement=0.9)


def test_card_is_complete(toy_model: Path) -> None:
    card = load_model_dir(toy_model).card
    assert card.version == "toy-1"
    assert card.max_length == 32
    assert set(card.files) == {"tokenizer", "fp32", "int8"}
    assert card.training_data.startswith("sentiment: sentiment.csv")
    assert set(card.temperature) == {"sentiment", "topic"}
    assert all(0.05 <= t <= 20 for t in card.temperature.values())
    validation = card.metrics["validation"]
    for head in ("sentiment", "topic"):
        for variant in ("int8", "fp32"):
            entry = validation[head][variant]
            assert {"accuracy", "macro_f1", "ece_before", "ece_after", "n"} <= set(entry)
    assert card.metrics["best_epoch"] >= 1
    assert card.metrics["training_history"]
    checklist = card.metrics["checklist"]  # the behavioural suite's held-out third
    assert checklist["split"] == "test" and checklist["n"] == 159
    assert len(checklist["by_event_type"]) == 44


def test_parity_holds(toy_model: Path) -> None:
    parity = load_model_dir(toy_model).card.parity
    assert parity["fp32_vs_torch_max_abs_diff"] < 1e-4
    assert min(parity["int8_vs_fp32_argmax_agreement"].values()) >= 0.9
    assert parity["n_texts"] == 27


def test_exported_model_classifies_toy_headlines(toy_model: Path) -> None:
    clf = Classifier.load(toy_model, provider="cpu")
    preds = clf.predict(["Zorg shares soar on record profit", "Zorg declares quarterly dividend"])
    assert preds[0].sentiment == "positive"
    assert preds[1].topic == "Dividend"


def test_in_domain_gate_fails_loudly(toy_run: Path, tmp_path: Path) -> None:
    from models.exceptions import ExportError

    with pytest.raises(ExportError, match="int8 argmax agrees with fp32"):
        export_run(toy_run, tmp_path / "m", variants=("fp32", "int8"), min_agreement=1.01)


def test_export_writes_the_drift_reference(toy_model: Path, toy_run: Path) -> None:
    """The exported model's outputs on the run's held-out rows, listed in the card."""
    import pandas as pd

    from models.drift import load_reference

    model_dir = load_model_dir(toy_model)
    reference = load_reference(model_dir)
    assert reference is not None and model_dir.card.reference is not None
    texts = pd.concat([pd.read_csv(toy_run / f"val_{h}.csv") for h in ("sentiment", "topic")])
    assert reference.n_documents == texts["text"].nunique()
    assert toy_run.name in reference.source
