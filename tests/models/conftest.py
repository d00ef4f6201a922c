"""Fixtures of the models tests: one tiny random model directory per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.tiny import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid model directory with a random tiny BERT (same as the root fixture)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))
