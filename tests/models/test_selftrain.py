"""Self-training: a teacher's confident predictions fill the other head's missing labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.checklist.suite import TRAINING_HEADLINES
from models.encoding import TextEncoder
from models.exceptions import TrainingError
from models.training.config import TrainConfig
from models.training.loop import predict_logits
from models.training.network import load_checkpoint
from models.training.run import run_training, split_files
from models.training.selftrain import extend_train, pseudo_label


def _config(base: Path, **given: object) -> TrainConfig:
    values: dict[str, object] = {
        "base_model": str(base),
        "max_length": 32,
        "epochs": 2,
        "batch_size": 16,
        "learning_rate": 5e-3,
        "val_fraction": 0.25,
        "threads": 1,
    }
    return TrainConfig(**{**values, **given})  # type: ignore[arg-type]


def _data_dir(toy_data: dict[str, Path], data: Path) -> Path:
    """The toy files under the names ``--data DIR`` expects (``DATA_FILES``)."""
    from models.training.reproduce import DATA_FILES

    data.mkdir()
    pd.read_csv(toy_data["sentiment"]).to_csv(data / DATA_FILES["sentiment"], index=False)
    pd.read_json(toy_data["topic"], lines=True).to_csv(data / DATA_FILES["topic"], index=False)
    return data


def test_pseudo_labels_are_the_teachers_confident_predictions(
    toy_run: Path, toy_data: dict[str, Path], tiny_base_model: Path
) -> None:
    teacher = toy_run / "best"
    splits = split_files(toy_data, _config(tiny_base_model))
    labels = pseudo_label(teacher, splits, ("sentiment",), threshold=0.5, max_length=32)
    rows = labels["sentiment"].rows

    topic_train = splits["topic"].train.texts
    model, _ = load_checkpoint(teacher)
    encoder = TextEncoder.from_file(teacher / "tokenizer.json", 32)
    logits, _ = predict_logits(model, encoder.encode_truncated(topic_train))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    confident = np.flatnonzero(probs.max(axis=1) >= 0.5)
    assert rows.texts == [topic_train[i] for i in confident]
    assert rows.labels.tolist() == probs.argmax(axis=1)[confident].tolist()
    # only training texts of the other head: no validation row of either head
    held_out = set(splits["topic"].validation.texts) | set(splits["sentiment"].validation.texts)
    assert not held_out & set(rows.texts)
    summary = labels["sentiment"].summary()
    assert summary["candidates"] == len(topic_train)
    assert summary["kept"] == len(confident)
    assert sum(summary["per_class"].values()) == len(confident)

    extended = extend_train(splits, labels)
    assert len(extended["sentiment"].train) == len(splits["sentiment"].train) + len(rows)
    assert extended["sentiment"].validation is splits["sentiment"].validation
    assert extended["topic"] is splits["topic"]


def test_student_run_records_teacher_and_pseudo_labels(
    toy_run: Path, toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    config = _config(tiny_base_model, teacher=str(toy_run / "best"), pseudo_label_threshold=0.34)
    run_training(config, toy_data, tmp_path)
    recorded = json.loads((tmp_path / "config.json").read_text())
    assert recorded["teacher"] == str(toy_run / "best")
    data = json.loads((tmp_path / "data.json").read_text())
    pseudo = data["sentiment"]["pseudo_labels"]
    assert pseudo["threshold"] == 0.34
    assert 0 < pseudo["kept"] <= pseudo["candidates"] == data["topic"]["train_rows"]
    assert data["sentiment"]["train_rows"] == 54  # people's labels only
    assert "pseudo_labels" not in data["topic"]
    validation = pd.read_csv(tmp_path / "val_sentiment.csv")
    assert len(validation) == data["sentiment"]["validation_rows"] == 18


def test_bad_teacher_or_missing_head_is_a_clear_error(
    toy_run: Path, toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    splits = split_files(toy_data, _config(tiny_base_model))
    with pytest.raises(TrainingError, match="not a checkpoint"):
        pseudo_label(tmp_path, splits, ("sentiment",), 0.9, 32)
    only_topic = {"topic": splits["topic"]}
    with pytest.raises(TrainingError, match="no labeled sentiment file"):
        pseudo_label(toy_run / "best", only_topic, ("sentiment",), 0.9, 32)
    only_sentiment = {"sentiment": splits["sentiment"]}
    with pytest.raises(TrainingError, match="no training texts without sentiment"):
        pseudo_label(toy_run / "best", only_sentiment, ("sentiment",), 0.9, 32)


@pytest.fixture
def quick_recipe(
    toy_data: dict[str, Path],
    tiny_base_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """`reproduce` on the tiny encoder with a quick recipe; returns its --data directory."""
    from models.training import reproduce
    from models.training import run as train

    monkeypatch.setattr(train, "default_base_model", lambda: str(tiny_base_model))
    quick = {"max_length": 32, "batch_size": 16, "learning_rate": 5e-3, "val_fraction": 0.25}
    monkeypatch.setattr(reproduce, "SHIPPED_CONFIG", {**reproduce.SHIPPED_CONFIG, **quick})
    # A toy student's topic logits are near ties on its 9 held-out texts, so whether int8
    # keeps all 9 argmaxes depends on the seed (a soup of two toy students kept 8); these
    # tests are about the recipe's wiring, and the 99 % gate itself is in test_export.py.
    monkeypatch.setattr(reproduce, "MIN_INT8_AGREEMENT", 0.75)
    return _data_dir(toy_data, tmp_path / "data")


def test_reproduce_trains_a_stage1_teacher_then_the_student_with_headlines(
    quick_recipe: Path, tmp_path: Path
) -> None:
    from models.training import reproduce

    data = quick_recipe
    out = tmp_path / "model"
    run = tmp_path / "run"
    # --train-seed 0: the flag reaches the student's config (and trains one student)
    code = reproduce.main(
        ["--data", str(data), "--out", str(out), "--run-dir", str(run),
         "--epochs", "2", "--pseudo-label-threshold", "0.34", "--train-teacher",
         "--train-seed", "0"]
    )  # fmt: skip
    assert code == 0
    student = json.loads((tmp_path / "run" / "student" / "config.json").read_text())
    assert student["teacher"] == str((tmp_path / "run" / "teacher" / "best").resolve())
    assert student["train_seed"] == 0  # --train-seed reached the student's config
    assert not (tmp_path / "run" / "student" / "soup.json").exists()
    assert not list((tmp_path / "run").glob("student-seed*"))
    teacher = json.loads((tmp_path / "run" / "teacher" / "config.json").read_text())
    assert teacher["teacher"] is None and not teacher["checklist"] and not teacher["extra_data"]
    # the student also learns the news headlines: the suite's train split and the training file
    assert student["checklist"] and student["extra_data"] == [str(TRAINING_HEADLINES)]
    card = json.loads((out / "model_card.json").read_text())
    assert "labeled by a teacher model" in card["training_data"]
    assert "rows of training_headlines.jsonl" in card["training_data"]
    assert "rows of checklist:headlines.jsonl" in card["training_data"]
    assert (out / "model.int8.onnx").is_file()


def _teacher_file(data: Path, toy_run: Path, tiny_base_model: Path, path: Path) -> Path:
    """The toy run's soft labels on every training text of the recipe's split."""
    from models.data import RECIPE_SEED
    from models.training import reproduce
    from models.training.softlabels import label_training_texts

    files = {head: data / name for head, name in reproduce.DATA_FILES.items()}
    splits = split_files(files, _config(tiny_base_model, seed=RECIPE_SEED))
    split = {"split": {"val_fraction": 0.25, "seed": RECIPE_SEED}}
    label_training_texts(toy_run / "best", splits, path, meta=split)
    return path


def test_reproduce_with_a_teacher_file_distills_its_topics_and_pseudo_labels_sentiment(
    quick_recipe: Path, toy_run: Path, tiny_base_model: Path, tmp_path: Path
) -> None:
    """`make model`'s default: one soft-label file, hard sentiment labels and topic soft targets."""
    from models.training import reproduce

    data = quick_recipe
    teacher = _teacher_file(data, toy_run, tiny_base_model, tmp_path / "labels.npz")
    out, run = tmp_path / "model", tmp_path / "run"
    code = reproduce.main(
        ["--data", str(data), "--out", str(out), "--run-dir", str(run),
         "--epochs", "1", "--pseudo-label-threshold", "0.34", "--teacher", str(teacher)]
    )  # fmt: skip
    assert code == 0
    student = json.loads((run / "student" / "config.json").read_text())
    assert student["teacher"] == student["soft_labels"] == str(teacher.resolve())
    assert student["pseudo_label_heads"] == ["sentiment"] and student["distill_heads"] == ["topic"]
    used = json.loads((run / "student" / "data.json").read_text())
    assert used["topic"]["soft_labels"]["train_rows_with_targets"] > 0
    assert used["sentiment"]["pseudo_labels"]["candidates"] > 0
    card = json.loads((out / "model_card.json").read_text())
    assert "soft targets for the topic head" in card["training_data"]
    assert "train seed 1" in card["notes"] and not (run / "student" / "soup.json").exists()


def test_reproduce_with_soup_seeds_ships_the_average_of_students_from_one_initialisation(
    quick_recipe: Path, toy_run: Path, tiny_base_model: Path, tmp_path: Path
) -> None:
    from models.data import RECIPE_SEED
    from models.training import reproduce

    teacher = _teacher_file(quick_recipe, toy_run, tiny_base_model, tmp_path / "labels.npz")
    out, run = tmp_path / "model", tmp_path / "run"
    code = reproduce.main(
        ["--data", str(quick_recipe), "--out", str(out), "--run-dir", str(run),
         "--epochs", "1", "--pseudo-label-threshold", "0.34", "--teacher", str(teacher),
         "--soup-seeds", "1,2", "--jobs", "2"]
    )  # fmt: skip
    assert code == 0
    soup = json.loads((run / "student" / "soup.json").read_text())
    assert [m["train_seed"] for m in soup["members"]] == [1, 2]
    for seed in (1, 2):  # trained in two processes, one initialisation, the recipe otherwise
        member = json.loads((run / f"student-seed{seed}" / "config.json").read_text())
        assert member["train_seed"] == seed and member["init_seed"] == RECIPE_SEED
        assert member["soft_labels"] == str(teacher.resolve())
    card = json.loads((out / "model_card.json").read_text())
    assert "weight average of the students of train seeds 1, 2" in card["notes"]
    assert (out / "model.int8.onnx").is_file()


@pytest.mark.parametrize(
    "extra",
    [["--soup-seeds", "1"], ["--soup-seeds", "1,1"], ["--soup-seeds", "1,2", "--train-seed", "3"],
     ["--jobs", "0"]],
    ids=["one-seed", "repeated", "with-train-seed", "no-jobs"],
)  # fmt: skip
def test_reproduce_refuses_soup_options_that_make_no_soup(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from models.training import reproduce

    with pytest.raises(SystemExit) as exc:
        reproduce.main(["--data", "d", "--out", "o", *extra])
    assert exc.value.code == 2
    assert f"argument {extra[0]}" in capsys.readouterr().err  # argparse names the option


def test_the_committed_teacher_file_is_made_for_the_recipes_split() -> None:
    """`make model`'s default teacher: the MPNet + 0.3.1 ensemble, made for the recipe's split."""
    from models.data import RECIPE_SEED, RECIPE_VAL_FRACTION
    from models.training.reproduce import SHIPPED_TEACHER
    from models.training.softlabels import SoftLabels

    labels = SoftLabels.load(SHIPPED_TEACHER)
    labels.check_split(SHIPPED_TEACHER, RECIPE_VAL_FRACTION, RECIPE_SEED)
    assert labels.meta["complete"] and "ensemble" in labels.meta["teacher"]
    members = labels.meta["members"]
    assert set(members) == {"soft_labels.npz", "labels_0.3.1.npz"}
    # Both teachers labeled the same texts: the ensemble's intersection dropped none.
    assert [m["labeled"] for m in members.values()] == [len(labels)] * 2
    assert set(labels.meta["temperature"]) == {"sentiment", "topic"}
    assert labels.sentiment.shape == (len(labels), 3) and labels.topic.shape == (len(labels), 20)
    assert np.isfinite(labels.sentiment.astype(np.float32)).all()


def test_a_soft_label_file_is_a_teacher_without_running_one(
    toy_run: Path, toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    from dataclasses import replace

    from models.training.softlabels import label_training_texts

    config = _config(tiny_base_model)
    splits = split_files(toy_data, config)
    soft = tmp_path / "soft.npz"
    split_meta = {"split": {"val_fraction": config.val_fraction, "seed": config.seed}}
    labels = label_training_texts(toy_run / "best", splits, soft, meta=split_meta)
    # without a recorded calibration the file's raw logits are thresholded, as a checkpoint's are
    uncalibrated = {k: v for k, v in labels.meta.items() if k != "temperature"}
    replace(labels, meta=uncalibrated).save(soft)
    from_model = pseudo_label(toy_run / "best", splits, ("sentiment",), 0.4, 32)["sentiment"]
    from_file = pseudo_label(soft, splits, ("sentiment",), 0.4, 32)["sentiment"]
    # the file's logits are the teacher's (fp16 on disk): the same confident rows
    model_rows = dict(zip(from_model.rows.texts, from_model.rows.labels.tolist(), strict=True))
    file_rows = dict(zip(from_file.rows.texts, from_file.rows.labels.tolist(), strict=True))
    assert file_rows == model_rows
    assert from_file.candidates == len(splits["topic"].train)

    config = _config(tiny_base_model, teacher=str(soft), pseudo_label_threshold=0.4, epochs=1)
    run_training(config, toy_data, tmp_path / "r")
    data = json.loads((tmp_path / "r" / "data.json").read_text())
    assert data["sentiment"]["pseudo_labels"]["kept"] == len(file_rows)


def test_a_soft_label_file_for_another_split_is_refused(
    toy_run: Path, toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    from models.training.softlabels import label_training_texts

    splits = split_files(toy_data, _config(tiny_base_model))
    soft = tmp_path / "soft.npz"
    label_training_texts(
        toy_run / "best", splits, soft, meta={"split": {"val_fraction": 0.1, "seed": 0}}
    )
    with pytest.raises(TrainingError, match="made for the split"):
        run_training(_config(tiny_base_model, teacher=str(soft)), toy_data, tmp_path / "r")


def test_pseudo_labels_from_a_file_use_the_teachers_calibration(
    toy_run: Path, toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    from dataclasses import replace

    from models.training.softlabels import SoftLabels, label_training_texts

    config = _config(tiny_base_model)
    splits = split_files(toy_data, config)
    split_meta = {"split": {"val_fraction": config.val_fraction, "seed": config.seed}}
    raw = label_training_texts(toy_run / "best", splits, tmp_path / "raw.npz", meta=split_meta)
    logits = raw.lookup("topic", splits["topic"].train.texts)["sentiment"]

    def kept(temperature: float | None) -> list[str]:
        meta = {k: v for k, v in raw.meta.items() if k != "temperature"}
        if temperature is not None:
            meta["temperature"] = {"sentiment": temperature}
        path = tmp_path / f"t{temperature}.npz"
        replace(raw, meta=meta).save(path)
        return pseudo_label(path, splits, ("sentiment",), 0.6, 32)["sentiment"].rows.texts

    def expected(temperature: float) -> list[str]:
        z = logits / temperature
        probs = np.exp(z - z.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        texts = splits["topic"].train.texts
        return [t for t, p in zip(texts, probs.max(axis=1), strict=True) if p >= 0.6]

    assert kept(None) == expected(1.0)  # no calibration recorded: raw probabilities
    sharp = kept(0.2)
    assert sharp == expected(0.2)
    assert len(sharp) > len(kept(None))  # an under-confident teacher, calibrated, labels more
    assert SoftLabels.load(tmp_path / "t0.2.npz").temperature("topic") is None


def test_an_exported_model_directory_labels_training_texts_like_the_scorer(
    toy_run: Path, toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    """``--model DIR``: the shipped ONNX model as the teacher of the next round (no torch)."""
    from models.scoring import Classifier, softmax
    from models.training.ship import export_run
    from models.training.softlabels import SoftLabels, label_with_model_dir

    model_dir = export_run(
        toy_run, tmp_path / "model", version="toy-1", variants=("fp32",), min_agreement=0.9
    )
    config = _config(tiny_base_model)
    splits = split_files(toy_data, config)
    split_meta = {"split": {"val_fraction": config.val_fraction, "seed": config.seed}}
    label_with_model_dir(model_dir, splits, tmp_path / "soft.npz", meta=split_meta, chunk_size=7)
    saved = SoftLabels.load(tmp_path / "soft.npz")

    classifier = Classifier.load(model_dir, provider="cpu")
    assert saved.meta["temperature"] == classifier.card.temperature
    assert saved.meta["complete"] and "toy-1" in saved.meta["teacher"]
    for head, split in splits.items():
        assert saved.count(head, split.train.texts) == len(split.train)
        assert saved.count(head, split.validation.texts) == 0  # never a validation row
    # softmax(logits / card temperature) is what the scorer reports for those texts
    texts = splits["topic"].train.texts
    sent, topic = classifier.probabilities(classifier.tokenize(texts))
    stored = saved.lookup("topic", texts)
    np.testing.assert_allclose(
        softmax(stored["sentiment"], saved.temperature("sentiment")), sent, atol=5e-3
    )
    np.testing.assert_allclose(
        softmax(stored["topic"], saved.temperature("topic")), topic, atol=5e-3
    )

    # and it teaches like any soft-label file: confident rows become pseudo-labels
    kept = pseudo_label(tmp_path / "soft.npz", splits, ("sentiment",), 0.5, 32)["sentiment"]
    confidence = dict(zip(texts, sent.max(axis=1), strict=True))
    sure = {t for t, p in confidence.items() if p >= 0.505}  # float16 logits: a margin
    maybe = {t for t, p in confidence.items() if p >= 0.495}
    assert sure <= set(kept.rows.texts) <= maybe and sure


def test_softlabels_cli_labels_with_a_model_directory(
    toy_run: Path, toy_data: dict[str, Path], tmp_path: Path
) -> None:
    from models.training import softlabels
    from models.training.ship import export_run

    data = _data_dir(toy_data, tmp_path / "data")
    model_dir = export_run(toy_run, tmp_path / "m", version="toy-2", variants=("fp32",))
    out = tmp_path / "soft.npz"
    args = ["--model", str(model_dir), "--data", str(data), "--out", str(out)]
    assert softlabels.main([*args, "--val-fraction", "0.25", "--threads", "1"]) == 0
    saved = softlabels.SoftLabels.load(out)
    assert saved.meta["split"] == {"val_fraction": 0.25, "seed": 0}
    assert "toy-2" in saved.meta["teacher"] and saved.meta["complete"]
    with pytest.raises(SystemExit):  # a checkpoint or a model directory, not both
        softlabels.main([*args, "--teacher", str(toy_run / "best")])
