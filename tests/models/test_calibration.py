"""Temperature scaling and ECE against direct computations."""

from __future__ import annotations

import math

import numpy as np

from models.calibration import expected_calibration_error, fit_temperature, nll
from models.scoring import softmax


def test_fitted_temperature_undoes_overconfidence() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 3000)
    logits = 2.0 * np.eye(3)[labels] + rng.normal(size=(3000, 3))
    hot = 5.0 * logits
    t = fit_temperature(hot, labels)
    assert math.isclose(t / fit_temperature(logits, labels), 5.0, rel_tol=0.02)
    assert nll(hot, labels, t) < nll(hot, labels, 1.0)
    before = expected_calibration_error(softmax(hot), labels)
    after = expected_calibration_error(softmax(hot, t), labels)
    assert after < before


def test_ece_matches_a_direct_computation() -> None:
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    labels = np.array([0, 1, 1, 1])
    # bins (15): 0.9 -> bin 13, 0.6 -> bin 9, 0.7 -> bin 10, 0.8 -> bin 12; one sample each
    expected = (abs(1 - 0.9) + abs(0 - 0.6) + abs(1 - 0.7) + abs(1 - 0.8)) / 4
    assert math.isclose(expected_calibration_error(probs, labels), expected, rel_tol=1e-9)
