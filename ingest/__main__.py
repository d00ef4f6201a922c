"""``python -m ingest``: run the crawler service until SIGTERM/Ctrl+C (see :mod:`ingest.cli`).

The same command as ``finsentinel crawl``, launched the same way
(:func:`stream.runtime.launch`): options, environment, logging and exit codes.
"""

from __future__ import annotations

from ingest.cli import crawl
from stream.runtime import run_command

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Crawl until stopped; the exit code."""
    return run_command(crawl, argv, "python -m ingest")


if __name__ == "__main__":
    raise SystemExit(main())
