"""Per-source cursor state (ETags, since-ids, processed files) as small JSON files.

Writes are atomic (temporary file, fsync, rename), so a crash leaves either
the old or the new state, never a torn file.

>>> import tempfile
>>> store = CursorStore(Path(tempfile.mkdtemp()))
>>> store.load("wire")
{}
>>> store.save("wire", {"etag": "abc"}); store.load("wire")
{'etag': 'abc'}
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

__all__ = ["CursorStore"]

logger = logging.getLogger(__name__)


class CursorStore:
    """One JSON file per source under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _path(self, name: str) -> Path:
        return self._dir / f"{name}.json"

    def load(self, name: str) -> dict[str, Any]:
        """The saved state of source ``name`` (empty if none or unreadable)."""
        path = self._path(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            logger.warning("cursor %s unreadable (%s): starting from scratch", path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, name: str, state: dict[str, Any]) -> None:
        """Replace the state of source ``name`` atomically."""
        path = self._path(name)
        with self._lock:
            fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=f".{name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(state, fh, sort_keys=True)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
