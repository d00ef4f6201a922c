"""``python -m stream``: run the stream scorer (see :mod:`stream.score_cli`)."""

from __future__ import annotations

import os

import typer

from stream.runtime import configure_logging
from stream.score_cli import score

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Configure logging, run the scorer until SIGTERM/Ctrl+C, return the exit code."""
    configure_logging(
        os.environ.get("FINSENTINEL_LOG_LEVEL", "INFO"),
        json_logs=os.environ.get("FINSENTINEL_JSON_LOGS", "").lower() in ("1", "true", "yes"),
    )
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(score)
    try:
        app(args=argv, prog_name="python -m stream")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
