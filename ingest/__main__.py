"""``python -m ingest``: run the crawler service until SIGTERM/Ctrl+C (see :mod:`ingest.cli`)."""

from __future__ import annotations

import os

import typer

from ingest.cli import crawl
from stream.runtime import configure_logging

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Configure logging, crawl until stopped, return the exit code."""
    configure_logging(
        os.environ.get(
            "FINSENTINEL_INGEST_LOG_LEVEL", os.environ.get("FINSENTINEL_LOG_LEVEL", "INFO")
        ),
        json_logs=os.environ.get("FINSENTINEL_INGEST_JSON_LOGS", "").lower()
        in ("1", "true", "yes"),
    )
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(crawl)
    try:
        app(args=argv, prog_name="python -m ingest")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
