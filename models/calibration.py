"""Temperature scaling and expected calibration error (numpy only)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["expected_calibration_error", "fit_temperature", "nll"]

_GOLDEN = (math.sqrt(5) - 1) / 2


def _log_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / T)``."""
    logp = _log_softmax(logits, temperature)
    return float(-logp[np.arange(len(labels)), labels].mean())


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, *, low: float = 0.05, high: float = 20.0
) -> float:
    """The temperature minimising validation NLL (golden-section search on log T).

    NLL is unimodal in log T, so the search converges to the optimum.

    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 3, 2000)
    >>> logits = 3.0 * np.eye(3)[labels] + rng.normal(size=(2000, 3))
    >>> round(fit_temperature(4.0 * logits, labels) / fit_temperature(logits, labels), 2)
    4.0
    """
    if len(labels) == 0:
        return 1.0
    a, b = math.log(low), math.log(high)
    for _ in range(60):
        c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
        if nll(logits, labels, math.exp(c)) < nll(logits, labels, math.exp(d)):
            b = d
        else:
            a = c
    return float(math.exp((a + b) / 2))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE with equal-width confidence bins (top-label calibration).

    >>> expected_calibration_error(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]))
    0.0
    """
    if len(labels) == 0:
        return 0.0
    confidence = probs.max(axis=-1)
    correct = (probs.argmax(axis=-1) == labels).astype(np.float64)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            gap = abs(correct[in_bin].mean() - confidence[in_bin].mean())
            ece += in_bin.mean() * gap
    return float(ece)
