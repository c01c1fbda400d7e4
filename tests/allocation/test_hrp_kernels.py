"""HRP kernels: the vectorised bisection and the leaf order against their plain twins.

Oracles: scipy's ``leaves_list`` for ``leaves_order`` (equal, integer output), and the per-cluster
loop below (Lopez de Prado's recursive bisection written out, as ``hrp_native`` computed it before
it was vectorised by level) for ``hrp_native``. Tolerance 1e-14: the two sum the same products in a
different order (float noise ~1e-16 on weights of order 1/N).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.spatial.distance import squareform

from allocation.covariance import estimate_covariance
from allocation.hrp import correlation_distance, hrp_native, leaves_order


def _hrp_loop(cov: np.ndarray) -> np.ndarray:
    """Plain recursive bisection: each half's inverse-variance portfolio variance, one at a time."""
    n = cov.shape[0]
    if n == 1:
        return np.ones(1)
    z = linkage(squareform(correlation_distance(cov), checks=False), method="single")
    w = np.ones(n)
    items = [leaves_list(z)]

    def variance(it: np.ndarray) -> float:
        sub = cov[np.ix_(it, it)]
        ivp = 1.0 / np.diag(sub)
        ivp /= ivp.sum()
        return float(ivp @ sub @ ivp)

    while items:
        items = [p for it in items if len(it) > 1 for p in (it[: len(it) // 2], it[len(it) // 2:])]
        for left, right in zip(items[0::2], items[1::2]):
            v_l, v_r = variance(left), variance(right)
            alpha = 1.0 - v_l / (v_l + v_r)
            w[left] *= alpha
            w[right] *= 1.0 - alpha
    return w / w.sum()


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 20, 37, 60])
def test_vectorised_hrp_matches_the_loop(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(5):
        x = rng.normal(0, 0.02, size=(120, n)) + rng.normal(0, 0.01, size=(120, 1))
        cov = estimate_covariance(x, 0.0)
        np.testing.assert_allclose(hrp_native(cov), _hrp_loop(cov), rtol=0, atol=1e-14)


@pytest.mark.parametrize("n", [2, 3, 7, 20, 64])
def test_leaves_order_is_scipy_leaves_list(n: int) -> None:
    rng = np.random.default_rng(100 + n)
    for method in ("single", "ward", "average"):
        z = linkage(rng.normal(size=(n, 4)), method=method)
        np.testing.assert_array_equal(leaves_order(z), leaves_list(z))
