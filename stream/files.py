"""Durable file finalisation: the one implementation every writer uses.

A file is written under a temporary name, then :func:`durable_replace` fsyncs
it, renames it to its final name and fsyncs the directory, so after a crash the
final name holds either the complete new file or what was there before.

>>> import pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "a.tmp").write_text("done")
>>> durable_replace(d / "a.tmp", d / "a.txt")
>>> (d / "a.txt").read_text(), (d / "a.tmp").exists()
('done', False)
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["durable_replace", "fsync_path"]


def fsync_path(path: Path) -> None:
    """``fsync`` a file or a directory by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_replace(tmp: Path, final: Path) -> None:
    """Move the complete file ``tmp`` to ``final``: fsync, rename, fsync the directory."""
    fsync_path(tmp)
    os.replace(tmp, final)
    fsync_path(final.parent)
