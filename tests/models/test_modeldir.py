"""The model-directory format: card validation, hashes, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from models.exceptions import ModelDirError
from models.labels import TOPIC_LABELS
from models.modeldir import (
    CARD_FILE,
    DEFAULT_MODEL_DIR,
    ModelCard,
    load_model_dir,
)


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


def _edit_card(directory: Path, **changes: object) -> None:
    path = directory / CARD_FILE
    card = json.loads(path.read_text())
    card.update(changes)
    path.write_text(json.dumps(card))


def test_tiny_model_card_is_complete(tiny_model_dir: Path) -> None:
    loaded = load_model_dir(tiny_model_dir)
    card = loaded.card
    assert card.format_version == 1
    assert card.sentiment_labels == ["negative", "neutral", "positive"]
    assert card.topic_labels == list(TOPIC_LABELS)
    assert set(card.files) == {"tokenizer", "fp32", "int8"}
    assert card.temperature == {"sentiment": 1.0, "topic": 1.0}
    assert card.version == "tiny-0"
    assert card.parity["fp32_vs_torch_max_abs_diff"] < 1e-4
    assert min(card.parity["int8_vs_fp32_argmax_agreement"].values()) >= 0.9
    assert loaded.has_variant("int8") and loaded.has_variant("fp32")
    assert not loaded.has_variant("fp16")


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelDirError, match="does not exist"):
        load_model_dir(tmp_path / "nope")


def test_directory_without_card(tmp_path: Path) -> None:
    with pytest.raises(ModelDirError, match=r"no model_card\.json"):
        load_model_dir(tmp_path)


def test_tampered_file_fails_hash(model_copy: Path) -> None:
    onnx_file = model_copy / "model.int8.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[-1] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(ModelDirError, match="sha256"):
        load_model_dir(model_copy)
    assert load_model_dir(model_copy, verify_hashes=False).card.version == "tiny-0"


def test_missing_int8_is_an_error_but_missing_fp32_is_not(model_copy: Path) -> None:
    (model_copy / "model.onnx").unlink()
    assert not load_model_dir(model_copy).has_variant("fp32")
    (model_copy / "model.int8.onnx").unlink()
    with pytest.raises(ModelDirError, match="missing"):
        load_model_dir(model_copy)


def test_wrong_sentiment_order_rejected(model_copy: Path) -> None:
    _edit_card(model_copy, sentiment_labels=["negative", "positive", "neutral"])
    with pytest.raises(ModelDirError, match="sentiment_labels"):
        load_model_dir(model_copy)


def test_unknown_card_field_rejected(model_copy: Path) -> None:
    _edit_card(model_copy, surprise=1)
    with pytest.raises(ModelDirError, match="surprise"):
        load_model_dir(model_copy)


def test_bad_json_card(model_copy: Path) -> None:
    (model_copy / CARD_FILE).write_text("{")
    with pytest.raises(ModelDirError, match="not valid JSON"):
        load_model_dir(model_copy)


def test_card_round_trip(tiny_model_dir: Path) -> None:
    card = load_model_dir(tiny_model_dir).card
    assert ModelCard.model_validate_json(card.model_dump_json()) == card


def test_default_dir_location() -> None:
    assert DEFAULT_MODEL_DIR.name == "default"
    assert DEFAULT_MODEL_DIR.parent.name == "models"
