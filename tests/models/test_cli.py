"""The CLI commands through a throwaway Typer app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

runner = CliRunner()


def test_commands_are_registered(app: typer.Typer) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("train", "evaluate", "export", "classify"):
        assert name in result.output


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_classify_formats(
    app: typer.Typer, tiny_model_dir: Path, tmp_path: Path, suffix: str
) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "headline": ["Acme beats", "Fed hikes", ""]})
    src = tmp_path / "in.csv"
    frame.to_csv(src, index=False)
    out = tmp_path / f"out{suffix}"
    args = ["classify", "--model", str(tiny_model_dir), "--input", str(src), "--output", str(out)]
    result = runner.invoke(app, [*args, "--text-column", "headline", "--provider", "cpu"])
    assert result.exit_code == 0, result.output
    back = (
        pd.read_csv(out)
        if suffix == ".csv"
        else (pd.read_json(out, lines=True) if suffix == ".jsonl" else pd.read_parquet(out))
    )
    assert len(back) == 3
    assert back["id"].tolist() == [1, 2, 3]
    assert set(back["sentiment"].iloc[:2]) <= {"negative", "neutral", "positive"}
    assert pd.isna(back["sentiment"].iloc[2])  # empty text: not scored, row kept
    probs = back[["sentiment_prob_negative", "sentiment_prob_neutral", "sentiment_prob_positive"]]
    assert (probs.iloc[:2].sum(axis=1) - 1).abs().max() < 1e-6
    raw = back["topic_probs"].iloc[0]  # CSV: JSON text; JSONL: an object; Parquet: a map
    topic_probs = json.loads(raw) if suffix == ".csv" else dict(raw)
    assert len(topic_probs) == 20 and back["topic"].iloc[0] in topic_probs
    assert back["sentiment_score"].iloc[:2].between(-1, 1).all()


def test_classify_missing_column_exits_2(
    app: typer.Typer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    src = tmp_path / "in.csv"
    src.write_text("title\nAcme beats\n")
    args = ["classify", "--model", str(tiny_model_dir), "--input", str(src)]
    result = runner.invoke(app, [*args, "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert "no column 'text'" in result.output
    assert "Traceback" not in result.output


def test_classify_empty_file_exits_2(
    app: typer.Typer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    src = tmp_path / "in.csv"
    src.write_text("")
    args = ["classify", "--model", str(tiny_model_dir), "--input", str(src)]
    result = runner.invoke(app, [*args, "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert "empty" in result.output


def test_classify_bad_model_dir_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("text\nAcme beats\n")
    args = ["classify", "--model", str(tmp_path / "none"), "--input", str(src)]
    result = runner.invoke(app, [*args, "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_evaluate_writes_report_and_png(
    app: typer.Typer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "labeled.csv"
    data.write_text("text,label\nAcme beats,1\nAcme misses,0\nAcme holds meeting,2\n")
    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(tiny_model_dir), "--data", str(data), "--head", "sentiment"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "eval_sentiment.json").read_text())
    assert report["n"] == 3
    assert set(report["per_class"]) == {"negative", "neutral", "positive"}
    assert {"accuracy", "macro_f1", "ece_before", "ece_after"} <= set(report)
    assert (out / "confusion_sentiment.png").stat().st_size > 1000


def test_evaluate_unknown_label_exits_2(
    app: typer.Typer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "labeled.csv"
    data.write_text("text,label\nAcme beats,Superb\n")
    args = ["evaluate", "--model", str(tiny_model_dir), "--data", str(data), "--head", "topic"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "unknown topic label" in result.output


def test_train_without_data_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "--sentiment-data" in result.output


def test_train_takes_one_kind_of_teacher(
    app: typer.Typer, toy_data: dict[str, Path], tmp_path: Path
) -> None:
    args = [
        "train", "--sentiment-data", str(toy_data["sentiment"]), "--run-dir", str(tmp_path),
        "--teacher", str(tmp_path), "--soft-labels", str(tmp_path / "s.npz"),
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "not both" in result.output
    # per head: soft targets only for a head that gets no pseudo-labels
    result = runner.invoke(app, [*args, "--distill-head", "sentiment"])
    assert result.exit_code == 2
    assert "sentiment head would get hard pseudo-labels" in result.output
    assert "--:" not in result.output
    # unless its soft targets stay on its own rows
    result = runner.invoke(
        app, [*args, "--distill-head", "sentiment", "--distill-own-rows", "sentiment"]
    )
    assert "would get hard pseudo-labels" not in result.output


def test_train_with_a_missing_soft_label_file_exits_2(
    app: typer.Typer, toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    args = [
        "train", "--sentiment-data", str(toy_data["sentiment"]), "--run-dir", str(tmp_path / "r"),
        "--base-model", str(tiny_base_model), "--soft-labels", str(tmp_path / "missing.npz"),
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "not a soft-label file" in result.output


@pytest.mark.slow
def test_train_and_export_through_cli(
    app: typer.Typer, toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    args = [
        "train", "--sentiment-data", str(toy_data["sentiment"]), "--run-dir", str(run),
        "--base-model", str(tiny_base_model), "--epochs", "1", "--max-length", "32",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (run / "best" / "model.pt").is_file()
    # One epoch of a random tiny encoder is far from the 99% int8 agreement an export needs.
    export = ["export", "--run", str(run), "--out", str(tmp_path / "m"), "--variants", "fp32,int8"]
    result = runner.invoke(app, export)
    assert result.exit_code in (0, 1)
    if result.exit_code == 1:
        assert "int8 argmax agrees" in result.output


def test_train_with_a_teacher_through_cli(
    app: typer.Typer,
    toy_data: dict[str, Path],
    toy_run: Path,
    tiny_base_model: Path,
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    args = [
        "train", "--sentiment-data", str(toy_data["sentiment"]), "--topic-data",
        str(toy_data["topic"]), "--run-dir", str(run), "--base-model", str(tiny_base_model),
        "--epochs", "1", "--max-length", "32", "--teacher", str(toy_run / "best"),
        "--pseudo-label-threshold", "0.34",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((run / "data.json").read_text())
    assert data["sentiment"]["pseudo_labels"]["threshold"] == 0.34


def test_train_with_a_teacher_but_no_topic_texts_exits_2(
    app: typer.Typer, toy_data: dict[str, Path], toy_run: Path, tmp_path: Path
) -> None:
    args = [
        "train", "--sentiment-data", str(toy_data["sentiment"]), "--run-dir", str(tmp_path / "r"),
        "--teacher", str(toy_run / "best"),
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "no training texts without sentiment labels" in result.output


@pytest.fixture
def captured_train(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[Any]]:
    """``train`` arguments, and the list that collects the configs it would train with."""
    pytest.importorskip("torch", reason="the training entry point needs the [train] extra")
    import models.training.run as training_run
    from models.exceptions import TrainingError

    seen: list[Any] = []

    def capture(config: Any, *_args: object, **_kwargs: object) -> None:
        seen.append(config)
        raise TrainingError("captured")

    monkeypatch.setattr(training_run, "run_training", capture)
    data = tmp_path / "s.csv"
    data.write_text("text,label\nAcme beats,positive\n", encoding="utf-8")
    return ["train", "--sentiment-data", str(data), "--base-model", str(tmp_path)], seen


def test_train_takes_the_defaults_it_is_not_given_from_train_config(
    app: typer.Typer, tmp_path: Path, captured_train: tuple[list[str], list[Any]]
) -> None:
    from models.training.config import TrainConfig

    args, seen = captured_train
    result = runner.invoke(app, [*args, "--epochs", "7"])
    assert result.exit_code == 2 and "captured" in result.output
    assert seen == [TrainConfig(base_model=str(tmp_path), epochs=7)]
    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    helps = {p.name: p.help or "" for p in command.params}
    for name in ("batch_size", "learning_rate", "pseudo_label_threshold"):
        assert f"[default: {TrainConfig.model_fields[name].default}]" in helps[name]


def test_train_caches_frozen_layers_only_when_they_are_frozen(
    app: typer.Typer, captured_train: tuple[list[str], list[Any]]
) -> None:
    args, seen = captured_train
    refused = runner.invoke(app, [*args, "--cache-frozen-layers", "--freeze-layers", "2"])
    assert refused.exit_code == 2 and "needs freeze_embeddings" in refused.output and not seen
    frozen = ["--freeze-embeddings", "--freeze-layers", "2", "--cache-frozen-layers"]
    assert runner.invoke(app, [*args, *frozen]).exit_code == 2
    assert seen[0].cache_frozen_layers and seen[0].freeze_layers == 2
