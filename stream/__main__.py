"""``python -m stream``: run the stream scorer (see :mod:`stream.scorer.cli`)."""

from __future__ import annotations

import os

from stream.runtime import configure_logging, run_command
from stream.scorer.cli import score

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Configure logging, run the scorer until SIGTERM/Ctrl+C, return the exit code."""
    configure_logging(
        os.environ.get("FINSENTINEL_LOG_LEVEL", "INFO"),
        json_logs=os.environ.get("FINSENTINEL_JSON_LOGS", "").lower() in ("1", "true", "yes"),
    )
    return run_command(score, argv, "python -m stream")


if __name__ == "__main__":
    raise SystemExit(main())
