"""Distillation: the soft-target loss, the soft-label file, and that validation stays untaught."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from models.calibration import fit_temperature
from models.data import LabeledSet
from models.exceptions import TrainingError
from models.training.config import TrainConfig
from models.training.distill import distillation_loss, hard_loss_scale, soft_loss
from models.training.loop import weighted_cross_entropy
from models.training.run import SplitData, _soft_targets, run_training, split_files
from models.training.selftrain import extend_train, pseudo_label_from_file
from models.training.softlabels import (
    SoftLabels,
    candidates,
    ensemble,
    label_training_texts,
    main,
    text_key,
)


def _softmax(row: list[float], t: float) -> list[float]:
    exps = [math.exp(x / t) for x in row]
    return [e / sum(exps) for e in exps]


def _kl(teacher: list[float], student: list[float], t: float) -> float:
    p, q = _softmax(teacher, t), _softmax(student, t)
    return sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q, strict=True))


def test_soft_target_loss_equals_a_hand_computation() -> None:
    student = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [0.3, 0.2, 0.1]]
    teacher = [[2.0, 0.0, 1.0], [0.5, 0.5, 2.5], [math.nan] * 3]  # row 3: no target
    t = 2.0
    # T^2 * KL, averaged over the two rows that have a target
    expected_soft = t**2 * (_kl(teacher[0], student[0], t) + _kl(teacher[1], student[1], t)) / 2
    got = distillation_loss(torch.tensor(student), torch.tensor(teacher), t)
    assert math.isclose(float(got), expected_soft, rel_tol=1e-6)

    topic_student, topic_teacher = [[0.1, 0.9], [1.2, -0.3], [0.0, 0.0]], [[1.0, 0.0]] * 3
    pairs = zip(topic_teacher, topic_student, strict=True)
    expected_topic = t**2 * sum(_kl(a, b, t) for a, b in pairs) / 3
    soft = soft_loss(
        {"sentiment": torch.tensor(student), "topic": torch.tensor(topic_student)},
        {"sentiment": torch.tensor(teacher), "topic": torch.tensor(topic_teacher)},
        t,
    )
    assert math.isclose(float(soft), expected_soft + expected_topic, rel_tol=1e-6)


def _ce(logits: list[float], label: int) -> float:
    return math.log(sum(math.exp(x) for x in logits)) - logits[label]


def test_the_mixed_loss_keeps_the_whole_hard_loss_of_rows_without_a_target() -> None:
    """A sentiment batch of three rows; the teacher labels the first two (row 3: a headline)."""
    student = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [0.3, 0.2, 0.1]]
    teacher = [[2.0, 0.0, 1.0], [0.5, 0.5, 2.5], [math.nan] * 3]
    labels, t, alpha = [1, 2, 0], 2.0, 0.3
    soft = {"sentiment": torch.tensor(teacher)}
    scale = hard_loss_scale(soft, alpha)
    hard = weighted_cross_entropy(
        torch.nn.CrossEntropyLoss(), torch.tensor(student), torch.tensor(labels), None, scale
    )
    loss = hard + alpha * soft_loss({"sentiment": torch.tensor(student)}, soft, t)

    ce = [_ce(row, y) for row, y in zip(student, labels, strict=True)]
    kl = t**2 * (_kl(teacher[0], student[0], t) + _kl(teacher[1], student[1], t)) / 2
    expected = ((1 - alpha) * ce[0] + (1 - alpha) * ce[1] + ce[2]) / 3 + alpha * kl
    assert math.isclose(float(loss), expected, rel_tol=1e-6)
    # every row taught: the classic (1 - alpha) * CE + alpha * KL
    everyone = {"sentiment": torch.tensor(teacher[:2])}
    hard2 = weighted_cross_entropy(
        torch.nn.CrossEntropyLoss(),
        torch.tensor(student[:2]),
        torch.tensor(labels[:2]),
        None,
        hard_loss_scale(everyone, alpha),
    )
    assert math.isclose(float(hard2), (1 - alpha) * (ce[0] + ce[1]) / 2, rel_tol=1e-6)


def test_a_batch_without_targets_adds_nothing_but_keeps_the_graph() -> None:
    student = torch.tensor([[1.0, 2.0]], requires_grad=True)
    loss = distillation_loss(student, torch.full((1, 2), math.nan), 3.0)
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert student.grad is not None and float(student.grad.abs().sum()) == 0.0


def test_config_takes_one_kind_of_teacher_per_head() -> None:
    with pytest.raises(ValidationError, match=r"sentiment head would get hard pseudo-labels"):
        TrainConfig(base_model="x", teacher="t", soft_labels="s.npz")
    with pytest.raises(ValidationError, match=r"distill_heads"):
        TrainConfig(base_model="x", soft_labels="s.npz", distill_heads=())
    # hard pseudo-labels for sentiment, soft targets for topic: one teacher kind per head
    both = TrainConfig(base_model="x", teacher="t", soft_labels="s.npz", distill_heads=("topic",))
    assert both.pseudo_label_heads == ("sentiment",) and both.distill_heads == ("topic",)
    # both kinds for one head only where its soft targets stay on its own rows
    own = TrainConfig(
        base_model="x",
        teacher="t",
        soft_labels="s.npz",
        distill_heads=("topic", "sentiment"),
        distill_own_rows=("sentiment",),
    )
    assert own.distill_own_rows == ("sentiment",)
    with pytest.raises(ValidationError, match=r"distill_own_rows names sentiment"):
        TrainConfig(
            base_model="x",
            soft_labels="s.npz",
            distill_heads=("topic",),
            distill_own_rows=("sentiment",),
        )


def _toy_soft_labels(
    toy_run: Path, toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> tuple[dict[str, SplitData], Path]:
    """The toy split, and the toy run's logits on its training texts as a soft-label file."""
    splits = split_files(toy_data, _config(tiny_base_model))
    out = tmp_path / "soft.npz"
    label_training_texts(
        toy_run / "best", splits, out, meta={"split": {"val_fraction": 0.25, "seed": 0}}
    )
    return splits, out


def test_distill_heads_teach_only_those_heads(
    toy_run: Path, toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    splits, out = _toy_soft_labels(toy_run, toy_data, tiny_base_model, tmp_path)
    config = _config(
        tiny_base_model, teacher=str(out), soft_labels=str(out), distill_heads=("topic",)
    )
    targets, summary = _soft_targets(out, config, splits)
    assert {head: list(t) for head, t in targets.items()} == {
        "sentiment": ["topic"],  # the sentiment texts learn the teacher's topics only
        "topic": ["topic"],
    }
    assert all(s["heads"] == ["topic"] for s in summary.values())
    run_training(config, toy_data, tmp_path / "run")
    data = json.loads((tmp_path / "run" / "data.json").read_text())
    assert data["sentiment"]["pseudo_labels"]["candidates"] > 0  # and pseudo-labels for sentiment
    assert data["topic"]["soft_labels"]["heads"] == ["topic"]
    from models.training.ship import _training_data

    assert "with soft targets for the topic head from teacher" in _training_data(tmp_path / "run")


def test_distill_own_rows_keeps_a_head_off_the_other_heads_texts(
    toy_run: Path, toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    splits, out = _toy_soft_labels(toy_run, toy_data, tiny_base_model, tmp_path)
    config = _config(
        tiny_base_model,
        teacher=str(out),
        soft_labels=str(out),
        distill_heads=("topic", "sentiment"),
        distill_own_rows=("sentiment",),
    )
    people = len(splits["sentiment"].train)
    pseudo = pseudo_label_from_file(SoftLabels.load(out), splits, ("sentiment",), 0.01)
    assert len(pseudo["sentiment"].rows) > 0
    splits = extend_train(splits, pseudo)  # appended after the people's rows
    targets, summary = _soft_targets(out, config, splits)
    assert {head: sorted(t) for head, t in targets.items()} == {
        "sentiment": ["sentiment", "topic"],  # people's sentiment rows learn both heads
        "topic": ["topic"],  # the topic texts never learn the teacher's sentiment
    }
    sentiment = targets["sentiment"]["sentiment"]
    assert not np.isnan(sentiment[:people]).all(axis=1).any()  # every people's row is taught
    # the pseudo-labeled topic texts keep their hard label alone: no sentiment target there
    assert np.isnan(sentiment[people:]).all()
    assert summary["topic"]["heads_on_these_rows"] == ["topic"]
    assert summary["sentiment"]["own_rows_only"] == ["sentiment"]
    run_training(config, toy_data, tmp_path / "run")
    data = json.loads((tmp_path / "run" / "data.json").read_text())
    assert data["sentiment"]["soft_labels"]["heads_on_these_rows"] == ["sentiment", "topic"]
    assert data["sentiment"]["pseudo_labels"]["candidates"] > 0
    from models.training.ship import _training_data

    note = _training_data(tmp_path / "run")
    assert "with soft targets for both heads" in note  # the sentiment file's rows
    assert "with soft targets for the topic head" in note  # the topic file's rows


def _labeled(head: str, texts: list[str]) -> LabeledSet:
    return LabeledSet(head, texts, np.zeros(len(texts), dtype=np.int64), ["a", "b", "c"])


def test_candidates_never_include_validation_texts() -> None:
    splits = {
        "sentiment": SplitData(
            _labeled("sentiment", ["up", "down", "shared", "up"]), _labeled("sentiment", ["held"])
        ),
        "topic": SplitData(
            _labeled("topic", ["fed", "held", "up"]), _labeled("topic", ["shared", "tv"])
        ),
    }
    expected = [("sentiment", "up"), ("sentiment", "down"), ("topic", "fed"), ("topic", "up")]
    assert candidates(splits) == expected


def test_soft_label_file_round_trip_and_lookup(tmp_path: Path) -> None:
    keys = np.array([text_key("topic", "fed hikes"), text_key("sentiment", "fed hikes")])
    sent = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    topic = np.arange(40, dtype=np.float32).reshape(2, 20)
    SoftLabels(keys, sent, topic, {"format": 1, "x": "y"}).save(tmp_path / "s.npz")
    loaded = SoftLabels.load(tmp_path / "s.npz")
    assert loaded.sentiment.dtype == np.float16 and loaded.meta["x"] == "y"
    found = loaded.lookup("sentiment", ["fed hikes", "unknown"])
    assert found["sentiment"][0].tolist() == [4, 5, 6]
    assert np.isnan(found["sentiment"][1]).all() and np.isnan(found["topic"][1]).all()
    assert loaded.count("topic", ["fed hikes", "unknown"]) == 1
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(TrainingError, match="not a soft-label file"):
        SoftLabels.load(tmp_path / "bad.npz")


def _member(keys: list[int], scale: float, temperature: float | None) -> SoftLabels:
    rng = np.random.default_rng(len(keys))
    meta: dict[str, object] = {
        "format": 1,
        "split": {"val_fraction": 0.1, "seed": 0},
        "data_sha256": {"topic": "ab"},
        "teacher_base_model": f"t{scale}",
    }
    if temperature is not None:
        meta["temperature"] = {"sentiment": temperature, "topic": temperature}
    sent = rng.normal(0, scale, (len(keys), 3)).round(2)
    topic = rng.normal(0, scale, (len(keys), 20)).round(2)
    return SoftLabels(np.array(keys, dtype=np.uint64), sent, topic, meta)


def test_an_ensemble_of_teachers_averages_their_calibrated_log_probabilities(
    tmp_path: Path,
) -> None:
    a, b = _member([5, 6, 7], 2.0, 0.5), _member([7, 9, 5], 1.0, None)
    both = ensemble({"mpnet": a, "minilm": b})
    assert both.keys.tolist() == [5, 7]  # labeled by both, in the first file's order
    for head, n in (("sentiment", 3), ("topic", 20)):
        for row, (i, j) in enumerate([(0, 2), (2, 0)]):
            by_hand = []
            for k in range(n):
                pa = _softmax([x / 0.5 for x in getattr(a, head)[i].tolist()], 1.0)[k]
                pb = _softmax(getattr(b, head)[j].tolist(), 1.0)[k]
                by_hand.append((math.log(pa) + math.log(pb)) / 2)
            np.testing.assert_allclose(getattr(both, head)[row], by_hand, rtol=1e-9)
    assert both.temperature("topic") == 1.0 and both.meta["teacher"] == "ensemble of mpnet + minilm"
    assert both.meta["members"]["mpnet"]["temperature"] == {"sentiment": 0.5, "topic": 0.5}
    other = _member([5], 1.0, None)
    other.meta["split"] = {"val_fraction": 0.2, "seed": 0}
    with pytest.raises(TrainingError, match="other: made for another split"):
        ensemble({"mpnet": a, "other": other})
    with pytest.raises(TrainingError, match="at least two"):
        ensemble({"mpnet": a})
    # the command line writes a file a student run accepts for the same split
    a.save(tmp_path / "a.npz")
    b.save(tmp_path / "b.npz")
    out = tmp_path / "ab.npz"
    files = [str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]
    assert main(["--ensemble", *files, "--out", str(out)]) == 0
    loaded = SoftLabels.load(out)
    loaded.check_split(out, 0.1, 0)
    assert loaded.keys.tolist() == [5, 7] and set(loaded.meta["members"]) == {"a.npz", "b.npz"}
    np.testing.assert_allclose(loaded.topic, both.topic, atol=1e-2)  # float16 on disk
    assert main(["--ensemble", files[0], "--out", str(out)]) == 2


def _config(base: Path, **given: object) -> TrainConfig:
    values: dict[str, object] = {
        "base_model": str(base),
        "max_length": 32,
        "epochs": 1,
        "batch_size": 16,
        "learning_rate": 5e-3,
        "val_fraction": 0.25,
        "threads": 1,
    }
    return TrainConfig(**{**values, **given})  # type: ignore[arg-type]


def test_teacher_labels_both_heads_on_training_texts_only(
    toy_run: Path, toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    config = _config(tiny_base_model)
    splits = split_files(toy_data, config)
    split_meta = {"val_fraction": 0.25, "seed": 0}
    out = tmp_path / "soft.npz"
    labels = label_training_texts(
        toy_run / "best", splits, out, meta={"split": split_meta}, chunk_size=20
    )
    saved = SoftLabels.load(out)
    assert saved.meta["complete"] and saved.meta["split"] == split_meta
    n_train = {head: len(s.train) for head, s in splits.items()}
    assert len(saved) == sum(n_train.values()) == sum(saved.meta["labeled"].values())
    assert saved.sentiment.shape == (len(saved), 3) and saved.topic.shape == (len(saved), 20)
    for head, split in splits.items():
        assert saved.count(head, split.train.texts) == n_train[head]
        assert saved.count(head, split.validation.texts) == 0  # never a validation row
    np.testing.assert_allclose(labels.topic, saved.topic.astype(np.float32), atol=1e-2, rtol=1e-2)
    # the teacher's calibration, fitted on its own validation logits, travels with the file
    val = np.load(toy_run / "best" / "val_logits.npz")
    for head in ("sentiment", "topic"):
        expected = fit_temperature(val[f"{head}_logits"], val[f"{head}_labels"])
        assert saved.temperature(head) == pytest.approx(expected, abs=1e-4)

    # a student distilled from that file records what it was taught with
    student = _config(
        tiny_base_model, soft_labels=str(out), distill_temperature=3.0, distill_alpha=0.25
    )
    run_training(student, toy_data, tmp_path / "student")
    data = json.loads((tmp_path / "student" / "data.json").read_text())
    for head in ("sentiment", "topic"):
        soft = data[head]["soft_labels"]
        assert soft["temperature"] == 3.0 and soft["alpha"] == 0.25
        assert soft["teacher_calibration"] == {
            h: saved.temperature(h) for h in ("sentiment", "topic")
        }
        assert soft["train_rows_with_targets"] == soft["train_rows"] == n_train[head]
        assert soft["validation_rows_in_file"] == 0

    # a file made for another split is refused
    other = _config(tiny_base_model, soft_labels=str(out), seed=1)
    with pytest.raises(TrainingError, match="made for the split"):
        run_training(other, toy_data, tmp_path / "other")


def test_a_file_that_labels_validation_texts_teaches_nothing_on_them(
    toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    """Even a file that holds a validation text: that text gets no target."""
    config = _config(tiny_base_model)
    splits = split_files(toy_data, config)
    val_text = splits["sentiment"].validation.texts[0]
    train_text = splits["sentiment"].train.texts[0]
    texts = [("sentiment", val_text), ("topic", val_text), ("sentiment", train_text)]
    keys = np.array([text_key(h, t) for h, t in texts], dtype=np.uint64)
    meta = {"format": 1, "split": {"val_fraction": 0.25, "seed": 0}}
    path = tmp_path / "leaky.npz"
    SoftLabels(keys, np.zeros((3, 3)), np.zeros((3, 20)), meta).save(path)
    run_training(_config(tiny_base_model, soft_labels=str(path)), toy_data, tmp_path / "run")
    data = json.loads((tmp_path / "run" / "data.json").read_text())
    assert data["sentiment"]["soft_labels"]["validation_rows_in_file"] == 1
    assert data["sentiment"]["soft_labels"]["train_rows_with_targets"] == 1  # train_text only
    assert data["topic"]["soft_labels"]["train_rows_with_targets"] == 0
