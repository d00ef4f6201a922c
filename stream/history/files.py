"""File-system care shared by every Parquet writer: atomic finalisation, the root lock,
orphan clean-up and errors that name the file.

:func:`finalise` is the one way a finished ``*.tmp`` file becomes visible: fsync
the file, rename it to its final name, fsync the directory, so after a crash a
file is either complete under its final name or absent. :class:`RootLock`
tells a sink starting on an archive root whether another sink is using it: if
none is, every ``*.parquet.tmp`` under the root is an orphan of a crash (its
records were never committed) and :func:`remove_orphans` deletes it.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "a.parquet.tmp").write_bytes(b"PAR1")
>>> finalise(d / "a.parquet.tmp", d / "a.parquet")
>>> sorted(p.name for p in d.iterdir())
['a.parquet']
>>> with RootLock(d) as lock:
...     lock.exclusive
True
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path
from types import TracebackType

from stream.contracts.errors import FinSentinelError
from stream.files import durable_replace

__all__ = ["TMP_SUFFIX", "ArchiveWriteError", "RootLock", "finalise", "remove_orphans"]

logger = logging.getLogger(__name__)

TMP_SUFFIX = ".parquet.tmp"
LOCK_NAME = ".finsentinel-archive.lock"


class ArchiveWriteError(FinSentinelError, OSError):
    """A Parquet file could not be written or finalised; the message names the file."""

    retriable = True

    def __init__(self, path: Path, cause: BaseException) -> None:
        super().__init__(f"cannot write archive file {path}: {cause}")
        self.path = path


def finalise(tmp: Path, final: Path) -> None:
    """Make the closed file ``tmp`` durable as ``final``: fsync, rename, fsync the directory.

    Raises :class:`ArchiveWriteError` naming ``tmp`` (the final name does not exist then).
    """
    try:
        durable_replace(tmp, final)
    except OSError as exc:
        raise ArchiveWriteError(tmp, exc) from exc


class RootLock:
    """A shared ``flock`` on ``root/.finsentinel-archive.lock`` for a sink's lifetime.

    On entry it first tries an exclusive lock: ``exclusive`` is True when no
    other sink (process or thread) holds the root, so leftovers are orphans.
    It then holds a shared lock until exit, so sinks started later see it.
    """

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOCK_NAME
        self.exclusive = False
        self._fd: int | None = None

    def __enter__(self) -> RootLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ArchiveWriteError(self.path, exc) from exc
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.exclusive = True
        except BlockingIOError:
            self.exclusive = False
        fcntl.flock(self._fd, fcntl.LOCK_SH)  # converts the exclusive lock, if held
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


def remove_orphans(root: Path, *, older_than_s: float | None, now: float | None = None) -> int:
    """Delete ``*.parquet.tmp`` files under ``root``: all of them (``older_than_s=None``, no
    other sink holds the root) or those untouched for ``older_than_s``. Returns how many."""
    now = time.time() if now is None else now
    removed = 0
    for path in Path(root).rglob(f"*{TMP_SUFFIX}"):
        try:
            if older_than_s is not None and now - path.stat().st_mtime < older_than_s:
                continue
            path.unlink()
        except FileNotFoundError:
            continue  # another sink finished or removed it meanwhile
        except OSError as exc:
            logger.warning("cannot remove unfinished archive file %s: %s", path, exc)
            continue
        logger.warning("removed unfinished archive file %s (left by a crash)", path)
        removed += 1
    return removed
