"""Drift monitoring in the scorer: a sliding window of scored documents against the model's
reference profile, exported to Prometheus.

The window (:class:`models.drift.DriftWindow`, ``drift_window_documents``
documents) is updated once per scored micro-batch, O(1) per document; the
statistics are computed when Prometheus scrapes, not per document. Metrics
(``head`` is ``sentiment`` or ``topic``; all absent for a model whose directory
has no ``reference.json``, which is logged once at INFO):

* ``finsentinel_scorer_drift_window_documents``: documents in the window;
* ``finsentinel_scorer_drift_psi{head}``, ``finsentinel_scorer_drift_js_distance{head}``:
  the window's predicted-label shares against the reference's;
* ``finsentinel_scorer_confidence_mean{head}``, ``finsentinel_scorer_low_confidence_ratio{head}``:
  mean top-class probability, share under the confidence floor;
* ``finsentinel_scorer_unknown_token_ratio``: unknown tokens / tokens;
* ``finsentinel_scorer_text_length_psi``: the window's length histogram against the reference's;
* ``finsentinel_scorer_drift_reference_*``: the reference's confidence mean, low-confidence
  share (when the floors agree) and unknown-token ratio, for the dashboards.

The window statistics appear once the window holds a document; the alerting
rules (deploy/prometheus/rules/alerts.yml) also wait for 200. The window is a
statistic, not a ledger: a batch re-read after a delivery failure is counted again.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> drift = ScorerDrift(registry, window_documents=100)
>>> drift.active, registry.get_sample_value("finsentinel_scorer_drift_window_documents")
(False, None)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric

from models.drift import DriftSnapshot, DriftWindow, Reference, load_reference
from models.exceptions import ModelDirError
from models.labels import HEADS

if TYPE_CHECKING:
    from models.modeldir import ModelDir
    from models.scoring import Prediction

__all__ = ["ScorerDrift"]

logger = logging.getLogger(__name__)

_P: Final = "finsentinel_scorer_"
_HELP: Final = {
    "drift_window_documents": "Scored documents in the drift window.",
    "drift_psi": "Population stability index of the window's predicted labels vs the reference.",
    "drift_js_distance": "Jensen-Shannon distance (base 2) of the window's predicted labels "
    "vs the reference.",
    "confidence_mean": "Mean top-class probability over the drift window.",
    "low_confidence_ratio": "Share of the drift window's documents under the confidence floor.",
    "unknown_token_ratio": "Unknown tokens / all tokens over the drift window.",
    "text_length_psi": "Population stability index of the window's text lengths (tokens) "
    "vs the reference.",
    "drift_reference_confidence_mean": "Mean top-class probability on the reference texts.",
    "drift_reference_low_confidence_ratio": "Share of the reference texts under the "
    "confidence floor.",
    "drift_reference_unknown_token_ratio": "Unknown tokens / all tokens on the reference texts.",
}
_BY_HEAD: Final = frozenset(
    {
        "drift_psi",
        "drift_js_distance",
        "confidence_mean",
        "low_confidence_ratio",
        "drift_reference_confidence_mean",
        "drift_reference_low_confidence_ratio",
    }
)


class ScorerDrift:
    """The scorer's drift window and its Prometheus collector.

    :meth:`attach` a loaded model (again after a model change: the window starts
    empty), :meth:`observe` each micro-batch's predictions. Observing and
    scraping may happen on different threads.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        window_documents: int,
        confidence_floor: float | None = None,
    ) -> None:
        self.window_documents = window_documents
        self.confidence_floor = confidence_floor
        self._lock = threading.Lock()
        self._window: DriftWindow | None = None
        registry.register(_DriftCollector(self))

    @property
    def active(self) -> bool:
        """Whether a model with a reference profile is attached."""
        return self._window is not None

    def attach(self, model_dir: ModelDir) -> bool:
        """Monitor ``model_dir``'s model from now on; ``False`` if it has no usable reference."""
        try:
            reference = load_reference(model_dir)
        except ModelDirError as exc:
            logger.warning("drift monitoring is off: %s", exc)
            reference = None
        else:
            if reference is None:
                logger.info(
                    "drift monitoring is off: model directory %s has no reference profile "
                    "(add one with `python -m models.training.reference --model DIR --data FILE`)",
                    model_dir.path,
                )
        return self.use(reference)

    def use(self, reference: Reference | None) -> bool:
        """Compare from now on with ``reference`` (``None``: stop); the window starts empty."""
        window = None if reference is None else self._new_window(reference)
        with self._lock:
            self._window = window
        return window is not None

    def _new_window(self, reference: Reference) -> DriftWindow:
        window = DriftWindow(
            reference, size=self.window_documents, confidence_floor=self.confidence_floor
        )
        logger.info(
            "drift monitoring: a window of %s documents against the reference profile "
            "(%s texts: %s), confidence floor %s",
            self.window_documents, reference.n_documents, reference.source or "unknown source",
            window.confidence_floor,
        )  # fmt: skip
        return window

    def observe(self, predictions: Sequence[Prediction]) -> None:
        """Add one micro-batch's predictions to the window (nothing when off)."""
        with self._lock:
            window = self._window
            if window is None:
                return
            for prediction in predictions:
                window.update(prediction)

    def snapshot(self) -> tuple[Reference, float, DriftSnapshot] | None:
        """``(reference, confidence_floor, statistics)`` now; ``None`` when off."""
        with self._lock:
            window = self._window
            if window is None:
                return None
            return window.reference, window.confidence_floor, window.get()


class _DriftCollector:
    """Builds the drift families at scrape time from :meth:`ScorerDrift.snapshot`."""

    def __init__(self, drift: ScorerDrift) -> None:
        self._drift = drift

    def describe(self) -> list[Metric]:
        return [_family(name) for name in _HELP]

    def collect(self) -> Iterator[Metric]:
        state = self._drift.snapshot()
        if state is None:
            return
        reference, floor, snap = state
        families = {name: _family(name) for name in _HELP}
        families["drift_window_documents"].add_metric([], snap.n_documents)
        for head in HEADS:
            ref = reference.heads[head]
            families["drift_reference_confidence_mean"].add_metric([head], ref.confidence_mean)
            if floor == reference.confidence_floor:
                families["drift_reference_low_confidence_ratio"].add_metric(
                    [head], ref.low_confidence_ratio
                )
        families["drift_reference_unknown_token_ratio"].add_metric(
            [], reference.unknown_token_ratio
        )
        if snap.n_documents:
            _add_window(families, snap)
        for family in families.values():
            if family.samples:
                yield family


def _add_window(families: dict[str, GaugeMetricFamily], snap: DriftSnapshot) -> None:
    for head, stats in snap.heads.items():
        families["drift_psi"].add_metric([head], stats.psi)
        families["drift_js_distance"].add_metric([head], stats.js_distance)
        families["confidence_mean"].add_metric([head], stats.confidence_mean)
        families["low_confidence_ratio"].add_metric([head], stats.low_confidence_ratio)
    families["unknown_token_ratio"].add_metric([], snap.unknown_token_ratio)
    families["text_length_psi"].add_metric([], snap.text_length_psi)


def _family(name: str) -> GaugeMetricFamily:
    labels = ["head"] if name in _BY_HEAD else []
    return GaugeMetricFamily(_P + name, _HELP[name], labels=labels)
