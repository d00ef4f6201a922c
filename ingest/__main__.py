"""``python -m ingest``: run the crawler service until SIGTERM/Ctrl+C (see :mod:`ingest.cli`)."""

from __future__ import annotations

import os

from ingest.cli import crawl
from stream.runtime import configure_logging, run_command

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
    return run_command(crawl, argv, "python -m ingest")


if __name__ == "__main__":
    raise SystemExit(main())
