"""Temperature scaling, its choice, expected calibration error and reliability (numpy only).

:func:`choose_temperature` picks each head's temperature the way it is judged:
candidates (none, the log-loss optimum, the ECE optimum) are fitted on one half
of the validation rows and applied to the other, both ways, and compared by the
ECE of those out-of-fold probabilities; the winner is refitted on all rows. The
card keeps the comparison and reliability tables.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "choose_temperature",
    "expected_calibration_error",
    "fit_temperature",
    "fit_temperature_ece",
    "log_softmax",
    "nll",
    "reliability",
]

_GOLDEN = (math.sqrt(5) - 1) / 2


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``log(softmax(logits / temperature))`` along the last axis, in float64."""
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / T)``."""
    logp = log_softmax(logits, temperature)
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


def _softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    return np.exp(log_softmax(logits, temperature))


#: Temperatures tried by :func:`fit_temperature_ece` (log-spaced).
ECE_GRID = np.exp(np.linspace(math.log(0.2), math.log(8.0), 241))


def fit_temperature_ece(logits: np.ndarray, labels: np.ndarray, *, n_bins: int = 15) -> float:
    """The temperature on :data:`ECE_GRID` with the lowest ECE (ties: the lower NLL).

    ECE is piecewise constant in T, so this is a grid search, not a descent.

    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 3, 3000)
    >>> logits = 2.0 * np.eye(3)[labels] + rng.normal(size=(3000, 3))
    >>> ece_t, nll_t = fit_temperature_ece(3 * logits, labels), fit_temperature(3 * logits, labels)
    >>> abs(ece_t / nll_t - 1) < 0.1  # on well-specified logits both find the same scale
    True
    """
    if len(labels) == 0:
        return 1.0
    scored = [
        (expected_calibration_error(_softmax(logits, t), labels, n_bins), nll(logits, labels, t), t)
        for t in ECE_GRID
    ]
    return float(min(scored)[2])


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """A reliability diagram as rows: per confidence bin, its count, mean confidence and
    accuracy (top label); empty bins are left out.

    >>> reliability(np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([0, 1]), n_bins=2)
    [{'low': 0.5, 'high': 1.0, 'n': 2, 'confidence': 0.85, 'accuracy': 0.5}]
    """
    confidence = probs.max(axis=-1)
    correct = probs.argmax(axis=-1) == labels
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    rows = []
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            rows.append(
                {
                    "low": round(b / n_bins, 4),
                    "high": round((b + 1) / n_bins, 4),
                    "n": int(in_bin.sum()),
                    "confidence": round(float(confidence[in_bin].mean()), 4),
                    "accuracy": round(float(correct[in_bin].mean()), 4),
                }
            )
    return rows


def _halves(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified 50/50 split of row indices: ``(fit, check)``."""
    rng = np.random.default_rng(seed)
    fit: list[int] = []
    check: list[int] = []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        fit.extend(rows[: len(rows) // 2])
        check.extend(rows[len(rows) // 2 :])
    return np.sort(np.array(fit, dtype=np.int64)), np.sort(np.array(check, dtype=np.int64))


def choose_temperature(
    logits: np.ndarray, labels: np.ndarray, *, seed: int = 0, n_bins: int = 15
) -> tuple[float, dict[str, object]]:
    """Choose a head's temperature by out-of-fold ECE; returns ``(T, report)``.

    Candidates: ``none`` (T = 1), ``nll`` (:func:`fit_temperature`) and ``ece``
    (:func:`fit_temperature_ece`). The rows are split in two stratified halves; each
    candidate is fitted on one half and applied to the other, both ways, so every row
    gets a probability from a temperature fitted without it. The candidate with the
    lowest ECE over those out-of-fold probabilities wins (ties: lower log-loss) and is
    refitted on all rows. The report has every candidate's out-of-fold ECE and
    log-loss and the reliability table of all rows at T = 1 and out of fold.

    >>> rng = np.random.default_rng(1)
    >>> labels = rng.integers(0, 3, 2000)
    >>> logits = 3.0 * (2.0 * np.eye(3)[labels] + rng.normal(size=(2000, 3)))
    >>> t, report = choose_temperature(logits, labels)
    >>> report["method"] != "none", 1.3 < t < 1.7
    (True, True)
    """
    halves = _halves(labels, seed)
    fitters = {
        "none": lambda lg, lb: 1.0,
        "nll": fit_temperature,
        "ece": lambda lg, lb: fit_temperature_ece(lg, lb, n_bins=n_bins),
    }
    candidates: dict[str, dict[str, object]] = {}
    out_of_fold: dict[str, np.ndarray] = {}
    for name, fitter in fitters.items():
        probs = np.empty(logits.shape, dtype=np.float64)
        temps = []
        for fit, check in (halves, halves[::-1]):
            t = float(fitter(logits[fit], labels[fit]))
            probs[check] = _softmax(logits[check], t)
            temps.append(round(t, 4))
        out_of_fold[name] = probs
        picked = np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)
        candidates[name] = {
            "fold_temperatures": temps,
            "out_of_fold_ece": round(expected_calibration_error(probs, labels, n_bins), 4),
            "out_of_fold_nll": round(float(-np.log(picked).mean()), 4),
        }
    method = min(
        candidates,
        key=lambda n: (candidates[n]["out_of_fold_ece"], candidates[n]["out_of_fold_nll"]),
    )
    temperature = float(fitters[method](logits, labels))
    report: dict[str, object] = {
        "method": method,
        "temperature": round(temperature, 4),
        "rows": len(labels),
        "folds": 2,
        "seed": seed,
        "candidates": candidates,
        "nll_before": nll(logits, labels),
        "nll_after": nll(logits, labels, temperature),
        "reliability_before": reliability(_softmax(logits, 1.0), labels),
        "reliability_out_of_fold": reliability(out_of_fold[method], labels),
    }
    return temperature, report
