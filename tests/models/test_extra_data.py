"""Extra training rows (the checklist's train split, ``--extra-data`` files), never validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from models.checklist import load_suite
from models.cli import register
from models.data import LabeledSet
from models.exceptions import TrainingError
from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
from models.training.config import TrainConfig
from models.training.extra import add_extra_rows, checklist_frame
from models.training.run import SplitData, run_training


def _splits(validation_text: str) -> dict[str, SplitData]:
    def labeled(head: str, names: tuple[str, ...], texts: list[str]) -> LabeledSet:
        return LabeledSet(head, texts, np.zeros(len(texts), dtype=np.int64), names)

    return {
        "sentiment": SplitData(
            labeled("sentiment", SENTIMENT_LABELS, ["a", "b"]),
            labeled("sentiment", SENTIMENT_LABELS, [validation_text]),
        ),
        "topic": SplitData(
            labeled("topic", TOPIC_LABELS, ["c"]), labeled("topic", TOPIC_LABELS, ["d"])
        ),
    }


def test_off_by_default() -> None:
    config = TrainConfig(base_model="unused")
    assert config.checklist is False and config.extra_data == ()
    splits = _splits("x")
    out, extra = add_extra_rows(splits, (), checklist=False)
    assert out == splits and extra.rows("sentiment") == 0


def test_checklist_adds_its_train_split_to_both_heads_but_not_validation() -> None:
    train = load_suite().select("train")
    dropped = train[0].text  # a checklist text that is also a validation text
    out, extra = add_extra_rows(_splits(dropped), (), checklist=True)
    with_topic = sum(h.topic is not None for h in train[1:])  # validation texts never join
    assert len(out["sentiment"].train) == 2 + len(train) - 1
    assert len(out["topic"].train) == 1 + with_topic
    assert out["sentiment"].validation.texts == [dropped]
    assert dropped not in out["sentiment"].train.texts
    added = out["sentiment"].train.texts[2:]
    assert added == [h.text for h in train[1:]]
    labels = [out["sentiment"].train.label_names[i] for i in out["sentiment"].train.labels[2:]]
    assert labels == [h.sentiment for h in train[1:]]
    assert extra.rows("sentiment") == len(train) - 1
    (summary,) = extra.summary("topic").values()
    assert summary["rows"] == with_topic and len(summary["sha256"]) == 64


def test_a_file_holding_held_out_rows_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "all.jsonl"
    checklist_frame("all").to_json(path, orient="records", lines=True)
    with pytest.raises(TrainingError, match="held-out test split"):
        add_extra_rows(_splits("x"), (str(path),), checklist=False)


def test_an_extra_file_may_label_one_head_and_leave_rows_blank(tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    pd.DataFrame(
        {"text": ["Acme soars", "Acme sinks", "Acme files 10-K"], "sentiment": ["Bullish", "", "2"]}
    ).to_csv(path, index=False)
    out, extra = add_extra_rows(_splits("x"), (str(path),), checklist=False)
    assert out["sentiment"].train.texts == ["a", "b", "Acme soars", "Acme files 10-K"]
    assert out["sentiment"].train.labels.tolist()[2:] == [2, 1]  # positive, neutral
    assert len(out["topic"].train) == 1 and extra.rows("topic") == 0


def test_a_run_records_the_extra_rows(
    toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    config = TrainConfig(
        base_model=str(tiny_base_model),
        max_length=32,
        epochs=1,
        batch_size=32,
        val_fraction=0.25,
        threads=1,
        checklist=True,
        extra_topic_weight=0.25,
    )
    run_training(config, toy_data, tmp_path)
    data = json.loads((tmp_path / "data.json").read_text())
    assert data["sentiment"]["train_rows"] == 54  # people's labels of the toy file only
    assert data["sentiment"]["extra_weight"] == 1.0 and data["topic"]["extra_weight"] == 0.25
    (entry,) = data["sentiment"]["extra_data"].values()
    assert entry["rows"] == len(load_suite().select("train"))
    assert json.loads((tmp_path / "config.json").read_text())["checklist"] is True
    assert len(pd.read_csv(tmp_path / "val_sentiment.csv")) == 18


def test_train_command_passes_checklist_and_extra_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.training.run as training_run

    seen: list[TrainConfig] = []

    def capture(config: TrainConfig, *_args: object, **_kwargs: object) -> None:
        seen.append(config)
        raise TrainingError("captured")

    monkeypatch.setattr(training_run, "run_training", capture)
    app = typer.Typer()
    register(app)
    data = tmp_path / "s.csv"
    data.write_text("text,label\nAcme beats,positive\n", encoding="utf-8")
    args = ["train", "--sentiment-data", str(data), "--base-model", str(tmp_path), "--checklist"]
    result = CliRunner().invoke(app, [*args, "--extra-data", str(data)])
    assert result.exit_code == 2 and "captured" in result.output
    assert seen[0].checklist is True and seen[0].extra_data == (str(data.resolve()),)
    assert seen[0].extra_topic_weight is None  # the topic labels weigh --extra-weight
    result = CliRunner().invoke(app, [*args, "--extra-weight", "2", "--extra-topic-weight", "0.3"])
    assert result.exit_code == 2 and (seen[1].extra_weight, seen[1].extra_topic_weight) == (2, 0.3)


def test_extra_rows_weigh_extra_weight_and_feedback_keeps_those_weights(tmp_path: Path) -> None:
    from models.training.extra import extra_row_weights
    from models.training.feedback import add_feedback

    path = tmp_path / "extra.csv"
    pd.DataFrame({"text": ["e1", "e2"], "sentiment": ["positive", "negative"]}).to_csv(path)
    out, extra = add_extra_rows(_splits("x"), (str(path),), checklist=False)
    weights = extra_row_weights(out, extra, 3.0)
    assert weights["sentiment"].tolist() == [1.0, 1.0, 3.0, 3.0]
    assert "topic" not in weights  # nothing added there: equal weights
    assert extra_row_weights(out, extra, 1.0) == {}
    # one weight per head: the topic head's rows weigh their own, a head left out weighs 1
    both, both_extra = add_extra_rows(_splits("x"), (), checklist=True)
    n_topic = both_extra.rows("topic")
    per_head = extra_row_weights(both, both_extra, {"sentiment": 1.0, "topic": 0.25})
    assert list(per_head) == ["topic"]
    assert per_head["topic"].tolist() == [1.0] + [0.25] * n_topic
    assert list(extra_row_weights(both, both_extra, {"sentiment": 2.0})) == ["sentiment"]

    from models.feedback import split_of

    holdout_id = next(f"doc-{i}" for i in range(1000) if split_of(f"doc-{i}") == "holdout")
    store = tmp_path / "feedback.csv"
    pd.DataFrame(
        [{"doc_id": holdout_id, "text": "a", "sentiment": "neutral", "created_at": "2026-01-01"}]
    ).to_csv(store, index=False)
    after, after_weights, _ = add_feedback(out, store, 2.0, weights)
    # the hold-out text "a" leaves training; the extra rows keep their weight
    assert after["sentiment"].train.texts == ["b", "e1", "e2"]
    assert after_weights["sentiment"].tolist() == [1.0, 3.0, 3.0]
