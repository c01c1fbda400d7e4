"""The Clarabel fast path (allocation/compiled.py) against cvxpy's own ``problem.solve``.

Reference: cvxpy itself. ``problem.get_problem_data(CLARABEL)`` is the data cvxpy hands Clarabel
(``clarabel_conif`` then keeps ``triu(P)``), so the fast path's data must equal it exactly (``A``
as a matrix: the fast path drops its explicit zeros), and the solutions must agree. Weight
tolerance 1e-8: both paths give Clarabel the same matrices and settings (tolerances 1e-10 on the
gaps and feasibility); only the stored pattern of ``A`` differs, which changes the factorisation's
rounding (~1e-15 measured), two orders of magnitude below the solver tolerance; 1e-8 is the weight
precision the contracts ask for (contracts.WEIGHT_SUM_TOL).
"""
from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
import scipy.sparse as sp

import allocation.native as native
from allocation.compiled import compile_clarabel, problem_data, solve_compiled
from allocation.constraints import Caps, cluster_caps
from allocation.covariance import estimate_covariance
from allocation.native import ProblemCache, _build, _set, solve_native
from allocation.solve import clean_weights, solver_options

TOL = 1e-10
W_TOL = 1e-8  # see the module docstring


def _case(n: int, t: int, seed: int, rows: bool, bounded: bool) -> tuple[np.ndarray, Caps, np.ndarray]:
    """Ledoit-Wolf covariance of seeded returns (T x N), caps and means with a positive maximum."""
    rng = np.random.default_rng(seed)
    x = rng.normal(2e-4, 0.02, size=(t, n)) + rng.normal(0, 0.01, size=(t, 1))
    cov = estimate_covariance(x, 0.0)
    k = max(1, n // 3) if rows else n
    caps = cluster_caps([f"a{i}" for i in range(n)], [i % k for i in range(n)],
                        0.6 if rows else 1.0, 0.45 if bounded else None)
    if not rows:
        caps = Caps(np.zeros((0, n)), np.zeros(0), [], caps.ub, caps.ub_label)
    mu = x.mean(axis=0)
    mu[0] = abs(mu).max() + 1e-4  # at least one positive mean: max_sharpe is defined
    return cov, caps, mu


def _built(kind: str, cov: np.ndarray, caps: Caps, mu: np.ndarray):
    n = cov.shape[0]
    bounded = bool(np.any(caps.ub < 1.0))
    prob = _build(kind, n, len(caps.b), bounded, "quad")
    _set(prob, "quad", kind, cov, caps, mu, bounded)
    return prob


SHAPES = [(2, 60), (20, 252), (60, 252), (30, 12)]  # (N, T); the last: T < N


@pytest.mark.parametrize("bounded", [False, True])
@pytest.mark.parametrize("rows", [False, True])
@pytest.mark.parametrize("n, t", SHAPES)
@pytest.mark.parametrize("kind", ["min_variance", "max_sharpe"])
def test_fast_path_data_and_solution_equal_cvxpy(kind: str, n: int, t: int, rows: bool,
                                                 bounded: bool) -> None:
    cov, caps, mu = _case(n, t, seed=n + t, rows=rows, bounded=bounded)
    prob = _built(kind, cov, caps, mu)
    comp = compile_clarabel(prob.problem, prob.variables)
    data, _, _ = prob.problem.get_problem_data(cp.CLARABEL)
    ref_P = sp.triu(data["P"]).tocsc()
    for _ in range(2):  # twice: a solve must not alter the compiled (shared) index arrays
        P, q, A, b = problem_data(comp)
        assert P.shape == ref_P.shape
        assert np.array_equal(P.indptr, ref_P.indptr) and np.array_equal(P.indices, ref_P.indices)
        assert np.array_equal(P.data, ref_P.data)
        assert A.shape == data["A"].shape and np.array_equal(A.toarray(), data["A"].toarray())
        assert np.all(A.data != 0) and A.has_sorted_indices
        assert np.array_equal(q, data["c"]) and np.array_equal(b, data["b"])

    opts = solver_options("CLARABEL", TOL, n)
    status, values = solve_compiled(comp, opts)
    prob.problem.solve(solver="CLARABEL", warm_start=False, **opts)
    assert status == prob.problem.status == cp.OPTIMAL
    w_fast, w_ref = prob.weights(values), prob.weights(prob.values())
    np.testing.assert_allclose(clean_weights(w_fast), clean_weights(w_ref), rtol=0, atol=W_TOL)
    for v in prob.variables:
        assert np.shape(values[v.id]) == np.shape(v.value)


@pytest.mark.parametrize("kind", ["min_variance", "max_sharpe"])
def test_solve_native_answers_from_the_fast_path(kind: str, monkeypatch) -> None:
    cov, caps, mu = _case(20, 252, seed=1, rows=True, bounded=True)
    ref = solve_native(kind, cov, caps, mu=mu, cache=ProblemCache(), tol=TOL)

    def no_cvxpy_solve(self, *args, **kwargs):
        raise AssertionError("problem.solve must not run when the fast path answers")

    monkeypatch.setattr(cp.Problem, "solve", no_cvxpy_solve)
    res = solve_native(kind, cov, caps, mu=mu, cache=ProblemCache(), tol=TOL)
    assert res.status == "optimal" and res.solver == "CLARABEL"
    assert res.attempts == ["CLARABEL: optimal"]
    np.testing.assert_array_equal(res.weights, ref.weights)


@pytest.mark.parametrize("kind", ["min_variance", "max_sharpe"])
def test_forced_fallback_runs_problem_solve_with_the_same_answer(kind: str, monkeypatch) -> None:
    cov, caps, mu = _case(20, 252, seed=2, rows=True, bounded=False)
    fast = solve_native(kind, cov, caps, mu=mu, cache=ProblemCache(), tol=TOL)
    calls = []
    real_solve = cp.Problem.solve

    def counted(self, *args, **kwargs):
        calls.append(kwargs.get("solver"))
        return real_solve(self, *args, **kwargs)

    monkeypatch.setattr(native, "solve_compiled", lambda comp, opts, values=None, prune=True, accept=():
                        (cp.SOLVER_ERROR, None))
    monkeypatch.setattr(cp.Problem, "solve", counted)
    slow = solve_native(kind, cov, caps, mu=mu, cache=ProblemCache(), tol=TOL)
    assert calls == ["CLARABEL"]
    assert slow.status == "optimal" and slow.attempts == fast.attempts == ["CLARABEL: optimal"]
    np.testing.assert_allclose(slow.weights, fast.weights, rtol=0, atol=W_TOL)


def test_a_form_the_fast_path_refuses_is_solved_by_cvxpy_and_recorded(monkeypatch) -> None:
    cov, caps, mu = _case(20, 252, seed=2, rows=True, bounded=False)
    fast = solve_native("min_variance", cov, caps, cache=ProblemCache(), tol=TOL)

    def refuse(problem, variables):
        raise ValueError("compile_clarabel: only QPs over zero and non-negative cones are supported")

    monkeypatch.setattr(native, "compile_clarabel", refuse)
    monkeypatch.setattr(native, "direct_program", lambda kind, n, m, bounded: refuse(None, None))
    cache = ProblemCache()
    for _ in range(2):  # refused once per problem, then problem.solve every time
        res = solve_native("min_variance", cov, caps, cache=cache, tol=TOL)
        assert res.status == "optimal" and res.solver == "CLARABEL"
        assert res.attempts[0].startswith("CLARABEL fast path unavailable (compile_clarabel: only QPs")
        assert res.attempts[1:] == ["CLARABEL: optimal"]
        np.testing.assert_allclose(res.weights, fast.weights, rtol=0, atol=W_TOL)


def test_unsolved_status_is_reported_and_gives_no_values() -> None:
    cov, caps, mu = _case(20, 252, seed=3, rows=True, bounded=True)
    prob = _built("min_variance", cov, caps, mu)
    comp = compile_clarabel(prob.problem, prob.variables)
    status, values = solve_compiled(comp, {**solver_options("CLARABEL", TOL, 20), "max_iter": 1})
    assert status == cp.USER_LIMIT and values is None


def test_infeasible_problems_report_the_same_status_as_before() -> None:
    n = 20
    cov, caps, mu = _case(n, 252, seed=4, rows=False, bounded=True)
    # atom caps summing below 1: no portfolio
    tight = Caps(caps.A, caps.b, caps.labels, np.full(n, 0.01), caps.ub_label)
    # every mean negative: the Charnes-Cooper row mu'y = 1 has no y >= 0
    for kind, c, m in (("min_variance", tight, mu), ("max_sharpe", caps, -np.abs(mu) - 1e-4)):
        prob = _built(kind, cov, c, m)
        comp = compile_clarabel(prob.problem, prob.variables)
        status, values = solve_compiled(comp, solver_options("CLARABEL", TOL, n))
        prob.problem.solve(solver="CLARABEL", warm_start=False, **solver_options("CLARABEL", TOL, n))
        assert status == prob.problem.status == cp.INFEASIBLE and values is None
        res = solve_native(kind, cov, c, mu=m, cache=ProblemCache(), tol=TOL)
        assert res.status == "infeasible" and res.weights is None
        assert res.attempts == ["CLARABEL: infeasible"]


def test_fast_path_does_not_depend_on_earlier_solves() -> None:
    # no warm start, no state: the same inputs give the same bits whatever was solved before
    a = _case(20, 252, seed=5, rows=True, bounded=False)
    b = _case(20, 252, seed=6, rows=True, bounded=False)
    cache = ProblemCache()
    first = solve_native("min_variance", a[0], a[1], cache=cache, tol=TOL).weights
    solve_native("min_variance", b[0], b[1], cache=cache, tol=TOL)
    again = solve_native("min_variance", a[0], a[1], cache=cache, tol=TOL).weights
    fresh = solve_native("min_variance", a[0], a[1], cache=ProblemCache(), tol=TOL).weights
    assert cache.hits == 2 and cache.misses == 1
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, fresh)


def test_problem_cache_is_bounded_least_recently_used_first() -> None:
    """A worker's cache of compiled problems is bounded (issue 16: unbounded, it grew a ``large``
    preset worker by about 1 GiB per 20 units); a hit keeps a problem, the least recently used goes."""
    cache = ProblemCache(max_problems=3)
    keys = [("min_variance", n, 0, False, "quad") for n in (3, 4, 5)]
    for k in keys:
        cache.get(k)
    _, hit = cache.get(keys[0])                      # refreshed: now the most recently used
    assert hit and list(cache.problems) == [keys[1], keys[2], keys[0]]
    cache.get(("min_variance", 6, 0, False, "quad"))  # evicts keys[1], the least recently used
    assert len(cache.problems) == 3 and keys[1] not in cache.problems and keys[0] in cache.problems
    assert (cache.hits, cache.misses) == (1, 4)
    assert ProblemCache().max_problems == 48

def _clarabel_data(kind: str, cov: np.ndarray, caps: Caps, mu: np.ndarray, backend: str):
    """The fast path's Clarabel data of a freshly built problem compiled on ``backend``."""
    import allocation.compiled as compiled

    prob = _built(kind, cov, caps, mu)
    old = compiled.CANON_BACKEND
    compiled.CANON_BACKEND = backend
    try:
        comp = compile_clarabel(prob.problem, prob.variables)
    finally:
        compiled.CANON_BACKEND = old
    P, q, A, b = problem_data(comp)
    return comp, (P, q, A, b)


@pytest.mark.parametrize("kind", ["min_variance", "max_sharpe"])
def test_coo_compilation_equals_cpp_bit_for_bit(kind: str) -> None:
    """compile_clarabel canonicalises with cvxpy's COO backend (faster); it must hand Clarabel
    exactly the data of cvxpy's default CPP backend (same map M, index arrays, values, cones), so
    that the solve, and every allocation, is bit-identical. Grid: N 2..80, with/without cluster
    rows and atom bounds."""
    for n, t in [(2, 60), (7, 60), (20, 252), (33, 252), (80, 252)]:
        for rows in (False, True):
            for bounded in (False, True):
                cov, caps, mu = _case(n, t, n * 7 + rows + 2 * bounded, rows, bounded)
                ca, da = _clarabel_data(kind, cov, caps, mu, cp.settings.CPP_CANON_BACKEND)
                cb, db = _clarabel_data(kind, cov, caps, mu, cp.settings.COO_CANON_BACKEND)
                where = f"{kind} n={n} rows={rows} bounded={bounded}"
                assert ca.M.shape == cb.M.shape and (ca.M != cb.M).nnz == 0, where
                for x, y in zip(ca.P_index + ca.A_index + (ca.b_rows,), cb.P_index + cb.A_index + (cb.b_rows,)):
                    assert np.array_equal(x, y), where
                assert repr(ca.cones) == repr(cb.cones), where
                assert [v[:3] for v in ca.variables.values()] == [v[:3] for v in cb.variables.values()], where
                for x, y in zip(da, db):
                    if sp.issparse(x):
                        assert x.shape == y.shape and np.array_equal(x.indptr, y.indptr), where
                        assert np.array_equal(x.indices, y.indices), where
                        assert np.array_equal(x.data, y.data), where
                    else:
                        assert np.array_equal(x, y), where
                sa, va = solve_compiled(ca, solver_options("CLARABEL", TOL, n))
                sb, vb = solve_compiled(cb, solver_options("CLARABEL", TOL, n))
                assert sa == sb == cp.OPTIMAL, where
                for x, y in zip(va.values(), vb.values()):
                    assert np.array_equal(x, y), where
