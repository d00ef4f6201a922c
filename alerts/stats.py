"""Vectorised upper-tail probabilities and the score transform the detectors share.

The tails are exact (regularised incomplete gamma and beta functions from
``scipy.special``), vectorised over series:

>>> import numpy as np
>>> round(float(poisson_sf(np.array([3.0]), np.array([1.0]))[0]), 6)  # P(X >= 3 | mu=1)
0.080301
>>> round(float(binom_sf(np.array([2.0]), np.array([2.0]), np.array([0.5]))[0]), 6)
0.25
>>> float(tail_score(np.array([1e-4]), full_at_p=1e-8)[0])
0.5
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import special

__all__ = [
    "betabinom_sf",
    "binom_sf",
    "nb2_sf",
    "negbin_sf",
    "poisson_sf",
    "surprise",
    "tail_score",
]

FloatArray = NDArray[np.float64]


def _on(rows: NDArray[np.bool_], f: Callable[..., FloatArray], *args: FloatArray) -> FloatArray:
    """``f(*args)`` where ``rows`` holds, 1 elsewhere; f runs on those rows only.

    The series are sparse (most windows hold no negative document, whose tail is
    1), and the special functions are elementwise, so the result is the same as
    evaluating every row, at a fraction of the cost.
    """
    out = np.ones(rows.shape)
    if rows.any():
        out[rows] = f(*(a[rows] for a in args))
    return out


def _poisson_tail(k: FloatArray, mu: FloatArray) -> FloatArray:
    return special.gammainc(np.maximum(k, 1.0), np.maximum(mu, 1e-12))  # type: ignore[no-any-return]


def _binom_tail(k: FloatArray, n: FloatArray, p: FloatArray) -> FloatArray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    b = np.maximum(n - k + 1.0, 1e-12)
    return special.betainc(np.maximum(k, 1.0), b, p)  # type: ignore[no-any-return]


def _negbin_tail(k: FloatArray, mu: FloatArray, var: FloatArray) -> FloatArray:
    mu = np.maximum(mu, 1e-12)
    over = var > mu * (1 + 1e-9)
    r = np.where(over, mu * mu / np.where(over, var - mu, 1.0), 1.0)
    q = r / (r + mu)  # success probability in the failures-before-r-successes form
    nb = special.betainc(np.maximum(k, 1.0), r, 1.0 - q)
    return np.where(over, nb, _poisson_tail(k, mu))


def _floats(*a: object) -> list[FloatArray]:
    """The arguments as float arrays of one shape (broadcast only when they differ)."""
    arrays = [np.asarray(x, dtype=np.float64) for x in a]
    if all(x.shape == arrays[0].shape for x in arrays):
        return arrays
    return list(np.broadcast_arrays(*arrays))


def poisson_sf(k: FloatArray, mu: FloatArray) -> FloatArray:
    """``P(X >= k)`` for ``X ~ Poisson(mu)``; 1 where ``k <= 0``."""
    k, mu = _floats(k, mu)
    return _on(~(k <= 0), _poisson_tail, k, mu)


def binom_sf(k: FloatArray, n: FloatArray, p: FloatArray) -> FloatArray:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)``; 1 where ``k <= 0``, 0 where ``k > n``."""
    k, n, p = _floats(k, n, p)
    some = ~(k <= 0)
    out = _on(some & ~(k > n), _binom_tail, k, n, p)
    return np.where(some & (k > n), 0.0, out)


def _betabinom_tail(
    k: FloatArray, n: FloatArray, a: FloatArray, b: FloatArray, terms: int = 512
) -> FloatArray:
    # pmf(k) in logs, then the tail as pmf(k) x (1 + r_k + r_k r_{k+1} + ...) with the
    # pmf ratio r_j = pmf(j+1) / pmf(j): no 1 - cdf cancellation, so tiny tails stay exact.
    log_pmf = (
        special.gammaln(n + 1.0)
        - special.gammaln(k + 1.0)
        - special.gammaln(n - k + 1.0)
        + special.betaln(k + a, n - k + b)
        - special.betaln(a, b)
    )
    term, total, j = np.ones(k.shape), np.ones(k.shape), k.copy()
    for _ in range(terms):
        live = j < n
        if not live.any():
            break
        ratio = np.where(
            live, (n - j) * (j + a) / ((j + 1.0) * np.maximum(n - j - 1.0 + b, 1e-300)), 0.0
        )
        term = term * ratio
        total += term
        j = j + 1.0
        if (term <= 1e-16 * total).all():
            break
    return np.minimum(np.exp(log_pmf) * total, 1.0)  # type: ignore[no-any-return]


def betabinom_sf(k: FloatArray, n: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
    """``P(X >= k)`` for ``X ~ BetaBinomial(n, a, b)``; 1 where ``k <= 0``, 0 where ``k > n``.

    A binomial whose success probability is itself uncertain, ``Beta(a, b)``: the
    tail of a window share tested against a baseline share known from ``a + b``
    documents. Sums the tail from ``k`` up (at most 512 terms: callers use it for
    upper tails, where the terms fall fast), so it stays exact where ``1 - cdf``
    would cancel. Same as ``scipy.stats.betabinom.sf(k - 1, n, a, b)``:

    >>> round(float(betabinom_sf(np.array([5.0]), np.array([8.0]), np.array([5.0]),
    ...                          np.array([15.0]))[0]), 6)
    0.052397
    """
    k, n, a, b = _floats(k, n, a, b)
    some = ~(k <= 0)
    out = _on(some & ~(k > n), _betabinom_tail, k, n, a, b)
    return np.where(some & (k > n), 0.0, out)


def negbin_sf(k: FloatArray, mu: FloatArray, var: FloatArray) -> FloatArray:
    """``P(X >= k)`` for a negative binomial with mean ``mu`` and variance ``var``.

    Falls back to Poisson where the data are not over-dispersed (``var <= mu``).
    """
    k, mu, var = _floats(k, mu, var)
    return _on(~(k <= 0), _negbin_tail, k, mu, var)


def _nb2_tail(k: FloatArray, mu: FloatArray, alpha: FloatArray) -> FloatArray:
    mu = np.maximum(mu, 1e-12)
    over = alpha > 1e-9
    r = 1.0 / np.where(over, alpha, 1.0)
    nb = special.betainc(np.maximum(k, 1.0), r, mu / (r + mu))
    return np.where(over, nb, _poisson_tail(k, mu))


def nb2_sf(k: FloatArray, mu: FloatArray, alpha: FloatArray) -> FloatArray:
    """``P(X >= k)`` for a negative binomial with mean ``mu`` and variance ``mu + alpha mu^2``.

    Exact for small counts (the regularised incomplete beta function); Poisson
    where ``alpha`` is 0. Same as ``scipy.stats.nbinom.sf(k - 1, 1/alpha, 1/(1 + alpha mu))``:

    >>> round(float(nb2_sf(np.array([5.0]), np.array([2.0]), np.array([0.5]))[0]), 6)
    0.109375
    """
    k, mu, alpha = _floats(k, mu, alpha)
    return _on(~(k <= 0), _nb2_tail, k, mu, alpha)


def surprise(p: FloatArray) -> FloatArray:
    """``-log10 p``, floored so it stays finite (p is at least 1e-300).

    >>> surprise(np.array([1.0, 1e-4])).tolist()
    [0.0, 4.0]
    """
    return 0.0 - np.log10(np.minimum(np.maximum(p, 1e-300), 1.0))


def tail_score(p: FloatArray, *, full_at_p: float = 1e-8) -> FloatArray:
    """Map a tail probability to a score in [0, 1]: ``-log10(p) / -log10(full_at_p)``.

    ``p = 1`` scores 0, ``p = full_at_p`` (or smaller) scores 1; NaN stays NaN
    (a detector that has no opinion yet).
    """
    p = np.asarray(p, dtype=np.float64)
    # p is floored at 1e-300 (NaN stays NaN), so log10 never sees 0: no errstate needed.
    raw = -np.log10(np.minimum(np.maximum(p, 1e-300), 1.0)) / -np.log10(full_at_p)
    return np.where(np.isnan(p), np.nan, np.clip(raw, 0.0, 1.0))
