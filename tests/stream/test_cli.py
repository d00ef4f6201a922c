"""The root ``finsentinel`` command."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from finsentinel.cli import app, main

SUBCOMMANDS = (
    "demo",
    "broker",
    "crawl",
    "sources",
    "score",
    "alert",
    "alerts",
    "archive",
    "replay",
    "backtest",
    "train",
    "evaluate",
    "export",
    "classify",
    "feedback",
)


def test_help_lists_every_subcommand_with_a_description() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    for name in SUBCOMMANDS:
        row = next((ln for ln in lines if ln.strip("│ ").startswith(name + " ")), None)
        assert row is not None, f"{name} missing from --help"
        assert len(row.strip("│ ").split(maxsplit=1)) == 2, f"{name} has no description"


def test_main_returns_exit_codes() -> None:
    assert main(["--help"]) == 0
    assert main(["no-such-command"]) == 2


def test_console_entry_point_runs_without_torch() -> None:
    code = (
        "import sys, finsentinel.cli; finsentinel.cli.main(['--help']); "
        "sys.exit(1 if 'torch' in sys.modules or 'onnxruntime' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
