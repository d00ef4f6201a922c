"""The promotion gate on real tiny models trained here: the better one passes, the worse fails.

Three models of the tiny encoder on the toy recipe (``conftest``):

* ``old``: the recipe only;
* ``better``: the recipe plus the feedback's training rows (new slang it could not know);
* ``worse``: the same rows with the recipe's labels shuffled.

The feedback export follows the shared format (``doc_id, text, sentiment, topic, note,
created_at, split``); its hold-out rows are never trained on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from finsentinel.cli import app
from models.compare import compare_models, frozen_validation, read_feedback_holdout
from models.data import RECIPE_FILES, load_labeled, stratified_split
from models.labels import TOPIC_LABELS
from models.registry import ModelRegistry

pytestmark = pytest.mark.slow

VAL_FRACTION, SEED = 0.25, 0
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne"]
SLANG = {
    "positive": ["{} to the moon, diamond hands", "{} calls printing, lambo soon"],
    "negative": ["{} bagholders rekt again", "{} rugpull, puts printing"],
    "neutral": ["{} ticker chatter in the daily thread", "{} mentioned in the weekly thread"],
}


def _feedback() -> pd.DataFrame:
    rows = []
    for label, templates in SLANG.items():
        for t, template in enumerate(templates):
            for c, company in enumerate(COMPANIES):
                doc = f"{label[:3]}-{t}-{c}"
                rows.append(
                    {
                        "doc_id": doc,
                        "text": template.format(company),
                        "sentiment": label,
                        "topic": "",
                        "note": "slang",
                        "created_at": "2026-03-02T14:30:00Z",
                        # 1 in 4 held out (the real split hashes doc_id; any fixed rule will do)
                        "split": "holdout" if c % 4 == 0 else "train",
                    }
                )
    return pd.DataFrame(rows)


def _train(tmp: Path, name: str, files: dict[str, Path], base: Path) -> Path:
    from models.training.config import TrainConfig
    from models.training.run import run_training
    from models.training.ship import export_run

    config = TrainConfig(
        base_model=str(base), max_length=32, epochs=8, batch_size=16, learning_rate=5e-3,
        warmup_ratio=0.1, val_fraction=VAL_FRACTION, seed=SEED, patience=8, threads=1,
    )  # fmt: skip
    run = run_training(config, files, tmp / f"run-{name}").run_dir
    return export_run(
        run, tmp / name, name="toy", version=name, variants=("fp32", "int8"), min_agreement=0.8
    )


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, tiny_base_model: Path, toy_data: dict[str, Path]
) -> dict[str, Path]:
    """The recipe directory, the feedback export and the three models."""
    tmp = tmp_path_factory.mktemp("compare")
    recipe = tmp / "recipe"
    recipe.mkdir()
    sentiment = pd.read_csv(toy_data["sentiment"])
    sentiment.to_csv(recipe / RECIPE_FILES["sentiment"], index=False)
    pd.read_json(toy_data["topic"], lines=True).to_csv(recipe / RECIPE_FILES["topic"], index=False)
    feedback = _feedback()
    feedback.to_json(tmp / "feedback.jsonl", orient="records", lines=True)
    extra = feedback[feedback["split"] == "train"][["text", "sentiment"]]
    extra = extra.rename(columns={"sentiment": "label"})
    # Training adds the feedback's train rows (never its hold-out) to the recipe's.
    better = tmp / "better_sentiment.csv"
    pd.concat([sentiment, extra]).to_csv(better, index=False)
    shuffled = sentiment.copy()
    shuffled["label"] = np.random.default_rng(1).permutation(shuffled["label"].to_numpy())
    worse = tmp / "worse_sentiment.csv"
    pd.concat([shuffled, extra]).to_csv(worse, index=False)
    topic = recipe / RECIPE_FILES["topic"]
    recipe_only = {"sentiment": recipe / RECIPE_FILES["sentiment"], "topic": topic}
    return {
        "recipe": recipe,
        "feedback": tmp / "feedback.jsonl",
        "old": _train(tmp, "old", recipe_only, tiny_base_model),
        "better": _train(tmp, "better", {"sentiment": better, "topic": topic}, tiny_base_model),
        "worse": _train(tmp, "worse", {"sentiment": worse, "topic": topic}, tiny_base_model),
    }  # fmt: skip


def test_the_frozen_validation_is_the_split_training_held_out(world: dict[str, Path]) -> None:
    sets = frozen_validation(
        world["recipe"], topic_labels=TOPIC_LABELS, val_fraction=VAL_FRACTION, seed=SEED
    )
    held_out = pd.read_csv(world["old"].parent / "run-old" / "val_sentiment.csv")
    assert sets["sentiment"].texts == held_out["text"].tolist()
    # The same split when the training rows grow: new rows never enter the recipe's validation.
    rows = load_labeled(world["recipe"] / RECIPE_FILES["topic"], "topic")
    _, val = stratified_split(rows.labels, VAL_FRACTION, SEED)
    assert sets["topic"].texts == [rows.texts[i] for i in val]


def test_the_feedback_hold_out_is_read_from_the_export(tmp_path: Path) -> None:
    export = tmp_path / "feedback.csv"
    pd.DataFrame(
        [
            ("d1", "Acme rekt", "negative", "", "holdout", "2026-03-01"),
            ("d2", "Acme moon", "positive", "Earnings", "holdout", "2026-03-01"),
            ("d3", "Acme meh", "neutral", "", "train", "2026-03-01"),
            ("d4", "Globex ipo", "", "IPO", "holdout", "2026-03-01"),
            ("d1", "Acme rekt", "neutral", "", "holdout", "2026-03-02"),  # a later correction
        ],
        columns=["doc_id", "text", "sentiment", "topic", "split", "created_at"],
    ).to_csv(export, index=False)
    sets = read_feedback_holdout(export, topic_labels=TOPIC_LABELS)
    assert sets["sentiment"].texts == ["Acme moon", "Acme rekt"]
    assert [sets["sentiment"].label_names[i] for i in sets["sentiment"].labels] == [
        "positive", "neutral",
    ]  # fmt: skip
    assert sets["topic"].texts == ["Acme moon", "Globex ipo"]


def test_the_gate_passes_the_better_model_and_refuses_the_worse(world: dict[str, Path]) -> None:
    common = {
        "data": world["recipe"], "feedback": world["feedback"],
        "val_fraction": VAL_FRACTION, "seed": SEED,
    }  # fmt: skip
    good = compare_models(world["old"], world["better"], **common)  # type: ignore[arg-type]
    assert good["promotable"], good["reasons"]
    assert good["max_loss_macro_f1"] == 0.01
    combined = good["feedback_holdout"]["combined"]
    assert combined["n"] == 12 and combined["new_correct"] > combined["old_correct"]
    assert set(good["validation"]) == {"sentiment", "topic"}

    bad = compare_models(world["old"], world["worse"], **common)  # type: ignore[arg-type]
    assert not bad["promotable"]
    assert any(r.startswith("sentiment: frozen-validation macro-F1 falls") for r in bad["reasons"])

    same = compare_models(world["old"], world["old"], **common)  # type: ignore[arg-type]
    assert same["reasons"] == [
        f"feedback hold-out: new {combined['old_correct']}/12 correct, "
        f"not more than old {combined['old_correct']}/12"
    ]


def test_compare_and_promote_from_the_command_line(world: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    reg_dir = tmp_path / "registry"
    common = [
        "--data", str(world["recipe"]), "--feedback", str(world["feedback"]),
        "--val-fraction", str(VAL_FRACTION), "--seed", str(SEED),
    ]  # fmt: skip
    worse = runner.invoke(
        app, ["models", "compare", str(world["old"]), str(world["worse"]), *common,
              "--report", str(tmp_path / "worse.json")],
    )  # fmt: skip
    assert worse.exit_code == 3, worse.output
    assert "NOT promotable" in worse.output and "frozen validation" in worse.output
    better = runner.invoke(
        app, ["models", "compare", str(world["old"]), str(world["better"]), *common,
              "--report", str(tmp_path / "better.json")],
    )  # fmt: skip
    assert better.exit_code == 0, better.output
    assert "PROMOTABLE" in better.output

    first = runner.invoke(
        app, ["models", "promote", str(reg_dir), str(world["old"]), "--force",
              "--reason", "the model in production before the registry"],
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    refused = runner.invoke(
        app, ["models", "promote", str(reg_dir), str(world["worse"]),
              "--report", str(tmp_path / "worse.json")],
    )  # fmt: skip
    assert refused.exit_code == 2
    assert "failed the promotion gate" in refused.output
    promoted = runner.invoke(
        app, ["models", "promote", str(reg_dir), str(world["better"]),
              "--report", str(tmp_path / "better.json")],
    )  # fmt: skip
    assert promoted.exit_code == 0, promoted.output
    assert "toy-old -> toy-better" in promoted.output
    reg = ModelRegistry(reg_dir)
    assert reg.active_name() == "toy-better"
    last = reg.history()[-1]
    assert last.report == json.loads((tmp_path / "better.json").read_text())
    listed = runner.invoke(app, ["models", "list", str(reg_dir)])
    assert listed.exit_code == 0 and "toy-better" in listed.output and "toy-worse" in listed.output
    back = runner.invoke(app, ["models", "rollback", str(reg_dir), "--reason", "test"])
    assert back.exit_code == 0 and reg.active_name() == "toy-old"
