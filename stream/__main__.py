"""``python -m stream``: run the stream scorer (see :mod:`stream.scorer.cli`).

The same command as ``finsentinel score``, launched the same way
(:func:`stream.runtime.launch`): options, environment, logging and exit codes.
"""

from __future__ import annotations

from stream.runtime import run_command
from stream.scorer.cli import score

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the scorer until SIGTERM/Ctrl+C; its exit code."""
    return run_command(score, argv, "python -m stream")


if __name__ == "__main__":
    raise SystemExit(main())
