"""Fixtures of the models tests: toy labeled data and one tiny trained run per session.

``tiny_model_dir`` (a random tiny model directory) comes from the root conftest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer

COMPANIES = [
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay",
    "Stark", "Wayne", "Tyrell", "Cyberdyne", "Soylent", "Wonka",
]  # fmt: skip
SENTIMENT_TEMPLATES = {
    "positive": ["{} shares soar on record profit", "{} beats estimates and raises outlook"],
    "negative": ["{} shares plunge after huge loss", "{} misses estimates and slashes outlook"],
    "neutral": ["{} to hold annual meeting on Tuesday", "{} schedules conference call"],
}
TOPIC_TEMPLATES = {
    "Dividend": "{} declares quarterly dividend payout",
    "Fed | Central Banks": "Fed officials discuss interest rate path, {} watches",
    "Earnings": "{} reports third quarter earnings results",
}


def toy_sentiment() -> pd.DataFrame:
    rows = [
        {"text": t.format(c), "label": label}
        for label, templates in SENTIMENT_TEMPLATES.items()
        for t in templates
        for c in COMPANIES
    ]
    return pd.DataFrame(rows)


def toy_topic() -> pd.DataFrame:
    rows = [
        {"text": t.format(c), "label": label}
        for label, t in TOPIC_TEMPLATES.items()
        for c in COMPANIES
    ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Separable toy data: sentiment as CSV (names), topic as JSONL (names)."""
    root = tmp_path_factory.mktemp("toy_data")
    toy_sentiment().to_csv(root / "sentiment.csv", index=False)
    with (root / "topic.jsonl").open("w") as fh:
        for row in toy_topic().to_dict(orient="records"):
            fh.write(json.dumps(row) + "\n")
    return {"sentiment": root / "sentiment.csv", "topic": root / "topic.jsonl"}


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.training.tiny import save_tiny_base_model

    return save_tiny_base_model(tmp_path_factory.mktemp("tiny_base"))


@pytest.fixture(scope="session")
def toy_run(
    tmp_path_factory: pytest.TempPathFactory, toy_data: dict[str, Path], tiny_base_model: Path
) -> Path:
    """A training run of the tiny encoder on the toy data (a few seconds)."""
    from models.training.config import TrainConfig
    from models.training.run import run_training

    config = TrainConfig(
        base_model=str(tiny_base_model),
        max_length=32,
        epochs=8,
        batch_size=16,
        learning_rate=5e-3,
        warmup_ratio=0.1,
        val_fraction=0.25,
        patience=8,
        threads=1,
    )
    run_dir = tmp_path_factory.mktemp("toy_run")
    run_training(config, toy_data, run_dir)
    return run_dir


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    """The models CLI commands in a throwaway Typer app."""
    from models.cli import register

    app = typer.Typer()
    register(app)
    return app
