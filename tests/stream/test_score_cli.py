"""The ``score`` command as the root CLI registers it (no broker needed for these paths)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from stream.scorer.cli import register


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @root.callback()
    def _root() -> None:
        """A stand-in for the root app's callback."""

    register(root)
    return root


def test_score_is_registered_with_its_options(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["score", "--help"])
    assert result.exit_code == 0
    for option in ("--batch-max-size", "--provider", "--require-gpu", "--topic-prefix"):
        assert option in result.output


def test_contradicting_settings_exit_2_with_one_line(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINSENTINEL_SCORER_REQUIRE_GPU", "true")
    result = CliRunner().invoke(app, ["score", "--provider", "cpu"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: require_gpu=true contradicts provider=cpu")
    assert result.output.strip().count("\n") == 0


def test_bad_kafka_settings_exit_2(app: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    result = CliRunner().invoke(app, ["score"])
    assert result.exit_code == 2
    assert "KAFKA_SASL_MECHANISM" in result.output


def test_without_bootstrap_servers_refuses_to_start_before_loading_a_model(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    # An empty model directory: were the model loaded first, this would fail differently.
    result = CliRunner().invoke(app, ["score", "--model-dir", str(tmp_path), "--provider", "cpu"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no Kafka bootstrap servers")
    assert "KAFKA_BOOTSTRAP_SERVERS" in lines[0] and "--embedded-broker" in lines[0]


def test_embedded_broker_flag_is_documented(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["score", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    assert "--embedded-broker" in result.output and "never in production" in result.output
