"""Switching the live model between two batches: on SIGHUP, or when the registry's pointer moves.

The scorer asks :meth:`ModelSwitcher.poll` after every batch (and every idle
poll). A batch is delivered and its offsets committed before the question is
asked, so everything the old model scored is committed as the old model's, and
the new model scores from the next offset on: no document is lost and none is
scored twice in the live output. The consumer stays in its group throughout.

What triggers a switch:

* **SIGHUP** (``kill -HUP``, via :class:`stream.runtime.ReloadFlag`): load the
  registry's ACTIVE version, or, without a registry, ``model_dir`` again;
* with ``FINSENTINEL_SCORER_REGISTRY_DIR``: the ``ACTIVE`` pointer changed.
  It is checked at most every ``registry_poll_s`` seconds with one ``stat``
  (a promotion replaces the file, so its inode changes), and read only then.

A model that fails to load (missing files, a hash mismatch, a session that
cannot open) leaves the old one scoring: one ERROR line and
``finsentinel_scorer_model_switches_total{outcome="failed"}``. The same pointer
is not retried until it moves again or a SIGHUP asks.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from models.exceptions import ModelDirError, ModelError, RegistryError
from models.registry import ModelRegistry
from stream.runtime import ReloadFlag
from stream.scorer.metrics import SwitchMetrics

if TYPE_CHECKING:
    from models.scoring import Classifier

__all__ = ["ModelSwitcher"]

logger = logging.getLogger(__name__)

_Stamp = tuple[int, int, int] | None


class ModelSwitcher:
    """Decide between batches whether to switch models, and load the new one.

    ``load(path)`` opens a model directory (``None``: the shipped default) the
    way the scorer does.
    """

    def __init__(
        self,
        load: Callable[[Path | None], Classifier],
        *,
        metrics: SwitchMetrics,
        model_dir: Path | None = None,
        registry_dir: Path | None = None,
        poll_s: float = 5.0,
        reload: ReloadFlag | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._metrics = metrics
        self._model_dir = model_dir
        self._registry = ModelRegistry(registry_dir) if registry_dir is not None else None
        self._poll_s = poll_s
        self._reload = reload
        self._monotonic = monotonic
        self._next_check = 0.0
        self._stamp: _Stamp = None
        #: The registry version scoring now (None without a registry).
        self.current: str | None = None

    def initial(self) -> Path | None:
        """The model directory to start with: the registry's ACTIVE version, else ``model_dir``."""
        if self._registry is None:
            return self._model_dir
        self._stamp = self._pointer_stamp()
        try:
            entry = self._registry.active()
        except RegistryError as exc:  # a pointer to a version that is not there: fix the input
            raise ModelDirError(str(exc)) from exc
        if entry is None:
            raise ModelDirError(
                f"model registry {self._registry.root} has no ACTIVE version: promote one "
                "(finsentinel models promote REGISTRY VERSION ...)"
            )
        self.current = entry.name
        self._next_check = self._monotonic() + self._poll_s
        return entry.path

    def poll(self) -> Classifier | None:
        """The newly loaded model when a switch is due and it loaded; else ``None``."""
        target = self._due()
        if target is None:
            return None
        path, name = target
        try:
            classifier = self._load(path)
        except Exception as exc:  # whatever breaks the new model, the old one keeps scoring
            logger.error(
                "model switch to %s failed; still scoring with the previous model: %s",
                path or "the default model", exc,
            )  # fmt: skip
            logger.debug("the failed model switch", exc_info=exc)
            self._metrics.switches.labels(outcome="failed").inc()
            return None
        self.current = name
        self._metrics.switches.labels(outcome="switched").inc()
        card = classifier.card
        logger.info("scorer switched to model %s %s (%s)", card.name, card.version, path)
        return classifier

    def _due(self) -> tuple[Path | None, str | None] | None:
        """``(model dir, registry version)`` to switch to, if a switch is due."""
        asked = self._reload is not None and self._reload.take()
        if self._registry is None:
            return (self._model_dir, None) if asked else None
        if not asked and not self._pointer_moved():
            return None
        try:
            entry = self._registry.active()
        except ModelError as exc:
            logger.error("model registry pointer unusable; still scoring: %s", exc)
            self._metrics.switches.labels(outcome="failed").inc()
            return None
        if entry is None or entry.name == self.current:
            if asked:
                logger.info("SIGHUP: %s is already the active version", self.current)
            return None
        return entry.path, entry.name

    def _pointer_moved(self) -> bool:
        if self._poll_s == 0:
            return False
        now = self._monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + self._poll_s
        stamp = self._pointer_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        return True

    def _pointer_stamp(self) -> _Stamp:
        assert self._registry is not None
        try:
            st = os.stat(self._registry.pointer_path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)
