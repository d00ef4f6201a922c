"""``train --feedback``: train-split corrections join training with their weight, hold-out
ones never, validation is never touched; the run and the card say how many were used."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from models.exceptions import TrainingError
from models.feedback import Correction, FeedbackStore, split_of
from models.training.batches import HeadData, epoch_batches
from models.training.config import TrainConfig
from models.training.feedback import add_feedback
from models.training.loop import weighted_cross_entropy
from models.training.run import run_training, split_files
from models.training.ship import _training_data

T0 = datetime(2026, 1, 5, tzinfo=UTC)
CONFIG = TrainConfig(base_model="unused", val_fraction=0.25, seed=3)


def _ids(split: str, n: int) -> list[str]:
    return [i for i in (f"fb-{k}" for k in range(200)) if split_of(i) == split][:n]


def _store(path: Path, corrections: list[Correction]) -> Path:
    with FeedbackStore(path) as store:
        store.add_many(corrections)
    return path


def _fix(
    doc_id: str, text: str, sentiment: str | None = None, topic: str | None = None
) -> Correction:
    return Correction(doc_id, text, sentiment, topic, T0, "test")


def test_corrections_join_training_only_from_the_train_split(
    tmp_path: Path, toy_data: dict[str, Path]
) -> None:
    splits = split_files(toy_data, CONFIG)
    val_text = splits["sentiment"].validation.texts[0]
    train_text = splits["sentiment"].train.texts[0]
    tr, ho = _ids("train", 3), _ids("holdout", 1)
    store = _store(
        tmp_path / "fb.sqlite",
        [
            _fix(tr[0], "Acme guidance cut deeply", "negative"),
            _fix(tr[1], "Acme dividend steady", "neutral", "Dividend"),
            _fix(tr[2], val_text, "positive"),  # a validation text: never trained on
            _fix(ho[0], train_text, "negative"),  # hold-out: its text leaves training too
        ],
    )
    out, weights, summary = add_feedback(splits, store, 2.5)
    sentiment = out["sentiment"].train
    assert sentiment.texts[-2:] == ["Acme guidance cut deeply", "Acme dividend steady"]
    assert [sentiment.label_names[i] for i in sentiment.labels[-2:]] == ["negative", "neutral"]
    assert train_text not in sentiment.texts
    assert len(sentiment) == len(splits["sentiment"].train) - 1 + 2
    assert weights["sentiment"].tolist() == [1.0] * (len(sentiment) - 2) + [2.5, 2.5]
    assert out["topic"].train.texts[-1] == "Acme dividend steady"
    assert weights["topic"][-1] == 2.5 and (weights["topic"][:-1] == 1.0).all()
    for head in ("sentiment", "topic"):  # validation rows are exactly as before
        assert out[head].validation == splits[head].validation
    assert summary["sentiment"] == {
        "file": str(store),
        "weight": 2.5,
        "used": 2,
        "holdout_left_out": 1,
        "validation_texts_left_out": 1,
        "per_class": {"negative": 1, "neutral": 1},
        "holdout_texts_dropped": 1,
    }
    assert summary["topic"]["used"] == 1


def test_a_label_the_model_lacks_is_refused(tmp_path: Path, toy_data: dict[str, Path]) -> None:
    splits = split_files(toy_data, CONFIG)
    store = tmp_path / "fb.csv"
    pd.DataFrame(
        [{"doc_id": _ids("train", 1)[0], "text": "x", "sentiment": "", "topic": "Crypto",
          "note": "", "created_at": T0.isoformat(), "split": "train"}]
    ).to_csv(store, index=False)  # fmt: skip
    with pytest.raises(TrainingError, match=r"topic correction label\(s\) \['Crypto'\]"):
        add_feedback(splits, store, 2.0)


def test_row_weights_count_a_row_that_many_times() -> None:
    torch.manual_seed(1)
    logits, labels = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    criterion = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5]), label_smoothing=0.05)
    plain = weighted_cross_entropy(criterion, logits, labels, None)
    assert torch.equal(plain, criterion(logits, labels))
    ones = weighted_cross_entropy(criterion, logits, labels, torch.ones(5))
    assert torch.isclose(ones, plain)
    w = torch.tensor([1.0, 3.0, 1.0, 2.0, 1.0])
    repeated = [0, 1, 1, 1, 2, 3, 3, 4]
    assert torch.isclose(
        weighted_cross_entropy(criterion, logits, labels, w),
        criterion(logits[repeated], labels[repeated]),
    )


def test_batches_carry_each_rows_weight() -> None:
    data = HeadData(
        "sentiment",
        [(101, i, 102) for i in range(7)],
        np.arange(7) % 3,
        weights=np.array([1, 1, 1, 1, 1, 2, 2], dtype=np.float32),
    )
    batches = epoch_batches([data], 3, np.random.default_rng(0))
    seen = {
        int(ids[1]): float(w)
        for b in batches
        for ids, w in zip(b.input_ids, b.weights, strict=True)  # type: ignore[arg-type]
    }
    assert seen == {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 2.0, 6: 2.0}
    plain = epoch_batches(
        [HeadData("topic", data.sequences, data.labels)], 3, np.random.default_rng(0)
    )
    assert all(b.weights is None for b in plain)


@pytest.mark.slow
def test_a_run_with_feedback_records_what_it_used(
    tmp_path: Path, toy_data: dict[str, Path], tiny_base_model: Path
) -> None:
    tr, ho = _ids("train", 4), _ids("holdout", 2)
    texts = ["Hooli guidance slashed", "Wonka plant shut", "Stark buys rival", "Tyrell sued"]
    store = _store(
        tmp_path / "fb.sqlite",
        [_fix(i, t, "negative") for i, t in zip(tr, texts, strict=True)]
        + [_fix(i, f"holdout text {i}", "positive") for i in ho],
    )
    config = TrainConfig(
        base_model=str(tiny_base_model), max_length=32, epochs=1, batch_size=16,
        learning_rate=5e-3, val_fraction=0.25, threads=1, feedback=str(store), feedback_weight=3.0,
    )  # fmt: skip
    run_dir = tmp_path / "run"
    run_training(config, toy_data, run_dir)
    data = json.loads((run_dir / "data.json").read_text())
    assert data["sentiment"]["feedback"]["used"] == 4
    assert data["sentiment"]["feedback"]["holdout_left_out"] == 2
    assert data["sentiment"]["train_rows"] == 54  # the file's rows only, as without feedback
    assert data["topic"]["feedback"]["used"] == 0
    validation = pd.read_csv(run_dir / "val_sentiment.csv")["text"].tolist()
    assert len(validation) == 18 and not set(validation) & {
        *texts,
        *(f"holdout text {i}" for i in ho),
    }
    assert json.loads((run_dir / "config.json").read_text())["feedback_weight"] == 3.0
    note = _training_data(run_dir)
    assert "plus 4 analyst corrections from fb.sqlite (train split, loss weight 3.0" in note
