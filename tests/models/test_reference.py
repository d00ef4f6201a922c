"""``python -m models.training.reference``: a reference profile for an existing model directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from models.data import load_labeled, stratified_split
from models.drift import load_reference
from models.modeldir import load_model_dir
from models.training.reference import main, recipe_validation_texts
from models.training.reproduce import DATA_FILES
from tests.models.conftest import toy_sentiment, toy_topic


@pytest.fixture
def bare_model(tiny_model_dir_without_reference: Path, tmp_path: Path) -> Path:
    """A copy of the tiny model without its reference."""
    return Path(shutil.copytree(tiny_model_dir_without_reference, tmp_path / "model"))


def test_reference_from_a_text_file(bare_model: Path, tmp_path: Path) -> None:
    texts = tmp_path / "texts.jsonl"
    rows = [{"text": f"Company {i} shares move"} for i in range(40)] + [
        {"text": "Company 1 shares move"}
    ]
    pd.DataFrame(rows).to_json(texts, orient="records", lines=True)
    assert (
        main(["--model", str(bare_model), "--data", str(texts), "--confidence-floor", "0.6"]) == 0
    )
    reference = load_reference(load_model_dir(bare_model))
    assert reference is not None
    assert reference.n_documents == 40  # duplicates dropped
    assert reference.confidence_floor == 0.6 and reference.source == "texts.jsonl"


def test_recipe_validation_split(bare_model: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    toy_sentiment().to_csv(data / DATA_FILES["sentiment"], index=False)
    toy_topic().to_csv(data / DATA_FILES["topic"], index=False)
    expected: list[str] = []
    for head in ("sentiment", "topic"):
        labeled = load_labeled(data / DATA_FILES[head], head)
        _, val = stratified_split(labeled.labels, 0.1, 0)  # the shipped recipe's split
        expected += labeled.subset(val).texts
    assert recipe_validation_texts(data) == list(dict.fromkeys(expected))
    assert main(["--model", str(bare_model), "--recipe-data", str(data)]) == 0
    reference = load_reference(load_model_dir(bare_model))
    assert reference is not None and reference.n_documents == len(set(expected))
    assert "validation split" in reference.source


def test_bad_input_is_a_clear_error(bare_model: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv"
    pd.DataFrame({"headline": ["a"]}).to_csv(wrong, index=False)
    assert main(["--model", str(bare_model), "--data", str(wrong)]) == 2
    assert load_model_dir(bare_model).card.reference is None
