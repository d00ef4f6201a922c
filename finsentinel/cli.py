"""The ``finsentinel`` command: one console script, one subcommand per job.

This module is the composition root: it imports each package's ``register``
function and lets it add its commands. Heavy imports (ONNX Runtime, torch,
pandas) happen inside the commands, so ``finsentinel --help`` stays fast and
the streaming services never import torch.
"""

from __future__ import annotations

import importlib

import typer

from stream.contracts.errors import ConfigError
from stream.runtime import JsonLogsOpt, LogLevelOpt, LogOptions, configure_logging

__all__ = ["app", "main"]

app = typer.Typer(
    name="finsentinel",
    help="FinSentinel: streaming financial sentiment monitor "
    "(crawl -> score with ONNX Runtime -> alert on negative spikes).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Click's plain help: Rich's panels print a type such as <bool> even for flags,
    # which take no value (``--json-logs true`` then reads "true" as a command).
    rich_markup_mode=None,
)

#: Modules whose ``register(app)`` adds commands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "finsentinel.demo_cli",
    "ingest.cli",
    "stream.scorer.cli",
    "alerts.cli",
    "stream.history.cli",
    "alerts.backtest.cli",
    "models.cli",
    "finsentinel.feedback_cli",
    "finsentinel.models_cli",
)


@app.callback()
def _root(log_level: LogLevelOpt = None, json_logs: JsonLogsOpt = False) -> None:
    # Service commands take --log-level/--json-logs after their name too (stream.runtime).
    try:
        chosen = LogOptions(log_level, json_logs).resolve()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(chosen.log_level, json_logs=chosen.json_logs)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_all()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (Ctrl+C during a command is handled by it)."""
    try:
        app(args=argv, prog_name="finsentinel")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
