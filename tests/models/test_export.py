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


def test_an_mpnet_encoder_loads_through_the_same_classifier(tmp_path: Path) -> None:
    """The "accurate" variant's architecture (the 110M teacher is an MPNet): the same ONNX
    signature (token_type_ids declared though MPNet reads none), all three files, the same
    Classifier and CLI as the shipped MiniLM."""
    import pandas as pd
    from typer.testing import CliRunner

    from finsentinel.cli import app
    from models.labels import TOPIC_LABELS
    from models.training.package import CardInfo, write_model_dir
    from models.training.tiny import PARITY_TEXTS, base_tokenizer_path, tiny_network

    info = CardInfo("tiny-mpnet", "t-1", "random tiny MPNet", 32, TOPIC_LABELS)
    model_dir = write_model_dir(
        tiny_network(architecture="mpnet"),
        base_tokenizer_path(),
        tmp_path / "mpnet",
        info,
        PARITY_TEXTS,
        min_agreement=0.9,
    )
    card = load_model_dir(model_dir).card
    assert set(card.files) == {"tokenizer", "fp32", "int8", "fp16"}
    # the CUDA file is the int8 file's weights in fp16 (models/training/weightonly.py)
    assert card.parity["fp16"]["derived_from"] == "int8"
    assert card.parity["fp16"]["argmax_agreement_vs_int8"] == {"sentiment": 1.0, "topic": 1.0}
    texts = ["Zorg shares soar on record profit", "Zorg declares quarterly dividend"]
    labels = {}
    for variant in ("fp32", "int8", "fp16"):
        clf = Classifier.load(model_dir, provider="cpu", variant=variant)
        labels[variant] = [(p.sentiment, p.topic) for p in clf.predict(texts)]
    assert labels["int8"] == labels["fp32"] == labels["fp16"]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "in.csv", index=False)
    result = CliRunner().invoke(
        app,
        ["classify", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv"),
         "--model", str(model_dir), "--provider", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "out.csv")
    assert [(s, t) for s, t in zip(out["sentiment"], out["topic"], strict=True)] == labels["int8"]
