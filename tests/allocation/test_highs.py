"""``allocation.highs.lp_min`` is ``scipy.optimize.linprog(method="highs")`` bit for bit.

The caps' LPs (max-Sharpe feasibility, the two market-neutral LPs) are solved by HiGHS directly,
without ``linprog``'s per-call option checks; a decision may not move by one ulp. Compared here: the
objective's and the solution's bytes and the status (and the message when not optimal) on every LP
the caps build over seeded random books, and on random LPs of the same sizes, feasible, infeasible
and unbounded.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog
from scipy.sparse import csc_array

import allocation.constraints as C
import allocation.highs as H


def _reference(c, A_ub, b_ub, A_eq, b_eq, lb, ub):
    bounds = [(float(lo), None if np.isinf(hi) else float(hi)) for lo, hi in zip(lb, ub)]
    return linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs")


def _assert_same(got: H.LPResult, ref) -> None:
    assert got.status == ref.status
    if ref.status == 0:
        assert np.float64(got.fun).tobytes() == np.float64(ref.fun).tobytes()
        assert got.x.dtype == ref.x.dtype and got.x.tobytes() == ref.x.tobytes()
    else:
        assert got.message == ref.message


def _book(rng: np.random.Generator, n: int) -> tuple[list[str], list[int], np.ndarray, np.ndarray, np.ndarray]:
    ids = [f"a{i}" for i in range(n)]
    clusters = rng.integers(0, max(1, n // 3), size=n).tolist()
    mu = rng.normal(0.0, 0.01, size=n)
    beta = rng.normal(0.6, 0.5, size=n)
    signs = np.where(rng.random(n) < 0.3, -1.0, 1.0)
    return ids, clusters, mu, beta, signs


def test_the_caps_lps_equal_linprog_bit_for_bit(monkeypatch):
    seen = []
    real = H.lp_min

    def check(c, A_ub, b_ub, A_eq, b_eq, lb, ub):
        got = real(c, A_ub, b_ub, A_eq, b_eq, lb, ub)
        _assert_same(got, _reference(c, A_ub, b_ub, A_eq, b_eq, lb, ub))
        seen.append(got.status)
        return got

    monkeypatch.setattr(C, "lp_min", check)
    rng = np.random.default_rng(20261206)
    for trial in range(60):
        n = int(rng.integers(2, 41))
        ids, clusters, mu, beta, signs = _book(rng, n)
        caps = C.cluster_caps(ids, clusters, float(rng.choice([0.2, 0.35, 1.0])),
                              None if trial % 3 == 0 else float(rng.choice([0.05, 0.1, 0.3])))
        C.max_feasible_mean(mu, caps)
        if trial % 4 == 0:
            signs = np.ones(n)  # no SHORT atom: the share-cap LP relaxes
        C.market_neutral_caps(caps, beta, signs, 0.1, 0.6, 0.5)
    assert len(seen) == 180 and set(seen) == {0}


def test_random_lps_equal_linprog_including_failures():
    rng = np.random.default_rng(7)
    statuses = []
    for trial in range(300):
        n = int(rng.integers(1, 30))
        m = int(rng.integers(0, 12))
        c = rng.normal(size=n)
        A_ub = np.where(rng.random((m, n)) < 0.4, 0.0, rng.normal(size=(m, n)))
        if m:
            A_ub[0, 0] = -0.0  # a signed zero is no entry, in scipy's CSC and here
        b_ub = rng.normal(0.5, 1.0, size=m)
        A_eq = np.ones((1, n))
        b_eq = np.array([rng.choice([1.0, 1.0, -1.0])])  # sum x = -1 with x >= 0: infeasible
        lb = np.zeros(n)
        ub = np.where(rng.random(n) < 0.3, np.inf, rng.uniform(0.05, 1.0, size=n))
        if trial % 10 == 0:  # unbounded: one free direction with a negative cost, no row on it
            A_eq = np.zeros((0, n))
            b_eq = np.zeros(0)
            ub[:] = np.inf
            c[0] = -1.0
            if m:
                A_ub[:, 0] = 0.0
        got = H.lp_min(c, A_ub if m else None, b_ub if m else None, A_eq, b_eq, lb, ub)
        _assert_same(got, _reference(c, A_ub if m else None, b_ub if m else None, A_eq, b_eq, lb, ub))
        statuses.append(got.status)
    assert {0, 2, 3} <= set(statuses)


def test_optimal_lps_take_the_direct_path(monkeypatch):
    """The fast path is used (linprog is not called) when HiGHS is optimal and the check passes;
    a failure still reaches linprog (its status and message)."""
    if H._h is None:
        pytest.skip("this scipy has no bundled _highspy._core: every LP goes to linprog")
    calls = []

    def spy(*a, **k):
        calls.append(1)
        return linprog(*a, **k)

    monkeypatch.setattr(H, "linprog", spy)
    n = 6
    got = H.lp_min(-np.arange(n, dtype=float), np.r_[np.zeros(3), np.ones(3)][None], np.array([0.7]), np.ones((1, n)),
                   np.ones(1), np.zeros(n), np.full(n, 0.5))
    assert got.status == 0 and not calls
    assert got.fun == pytest.approx(-(0.5 * 5 + 0.2 * 4 + 0.3 * 2), abs=1e-12)
    bad = H.lp_min(np.ones(n), None, None, np.ones((1, n)), np.array([9.0]), np.zeros(n), np.full(n, 0.5))
    assert bad.status == 2 and calls == [1]


def test_csc_layout_equals_scipy():
    rng = np.random.default_rng(3)
    for _ in range(50):
        A = np.where(rng.random((rng.integers(0, 9), rng.integers(1, 9))) < 0.5, 0.0, rng.normal(size=1))
        A = np.where(rng.random(A.shape) < 0.3, rng.normal(size=A.shape), A)
        A[rng.random(A.shape) < 0.1] = -0.0
        indptr, indices, data = H._csc(A)
        ref = csc_array(A)
        for a, b in ((indptr, ref.indptr), (indices, ref.indices), (data, ref.data)):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
