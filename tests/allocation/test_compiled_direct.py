"""The directly written compiled program of the native problems (allocation/compiled_direct.py).

``direct_clarabel`` replaces cvxpy's compilation of the two native problem kinds; it must equal
``compile_clarabel`` bit for bit (map, index arrays and their dtypes, cones, parameter columns,
variables), so that Clarabel gets the same data and every allocation is unchanged.
"""
from __future__ import annotations

import itertools

import cvxpy as cp
import numpy as np
import pytest

import allocation.native as native
from allocation.compiled import compile_clarabel, problem_data, solve_compiled
from allocation.compiled_direct import direct_clarabel
from allocation.native import ProblemCache, _build, _set, solve_native
from allocation.solve import solver_options
from tests.allocation.test_compiled import TOL, _case


def _same(x: np.ndarray, y: np.ndarray) -> bool:
    x, y = np.asarray(x), np.asarray(y)
    return x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)


def _assert_equal(c, d, where: str) -> None:
    for a, b in [(c.M.data, d.M.data), (c.M.indices, d.M.indices), (c.M.indptr, d.M.indptr),
                 (c.b_rows, d.b_rows), *zip(c.P_index + c.A_index, d.P_index + d.A_index)]:
        assert _same(a, b), where
    assert type(c.M) is type(d.M) and c.M.shape == d.M.shape, where
    assert (c.n_x, c.n_rows, c.n_param, c.const_col) == (d.n_x, d.n_rows, d.n_param, d.const_col), where
    assert repr(c.cones) == repr(d.cones), where
    assert [(p.id, a, s) for p, a, s in c.params] == [(p.id, a, s) for p, a, s in d.params], where
    leaf = lambda v: (v[0], v[1], v[2], v[3] is not None and v[3].id)  # noqa: E731
    assert {k: leaf(v) for k, v in c.variables.items()} == {k: leaf(v) for k, v in d.variables.items()}, where


@pytest.mark.parametrize("kind", ["min_variance", "max_sharpe"])
def test_direct_program_equals_cvxpy_compilation_bit_for_bit(kind: str) -> None:
    """Grid: N 2..80, 0..30 cluster rows, with and without atom bounds; then the Clarabel data at
    seeded parameter values and the solution, bit for bit."""
    for n, m, bounded in itertools.product([2, 3, 7, 20, 41, 80], [0, 1, 2, 9, 30], [False, True]):
        where = f"{kind} n={n} m={m} bounded={bounded}"
        prob = _build(kind, n, m, bounded, "quad")
        rng = np.random.default_rng(n * 100 + m * 2 + bounded)
        g = rng.normal(size=(n, n))
        cov = g @ g.T / n + np.eye(n) * 0.1
        ub = np.full(n, 0.45 if bounded else 1.0)
        A = (rng.random((m, n)) < 0.4).astype(float)
        caps = native.Caps(A, np.full(m, 0.6), [f"c{i}" for i in range(m)], ub, None)
        mu = rng.normal(size=n)
        mu[0] = abs(mu).max() + 0.1
        _set(prob, "quad", kind, cov, caps, mu, bounded)
        c = compile_clarabel(prob.problem, prob.variables)
        d = direct_clarabel(kind, prob.params, prob.variables, prob.problem)
        _assert_equal(c, d, where)
        for x, y in zip(problem_data(c), problem_data(d)):
            if hasattr(x, "indptr"):
                assert _same(x.data, y.data) and _same(x.indices, y.indices) and _same(x.indptr, y.indptr), where
            else:
                assert _same(x, y), where
        if n <= 20:  # the solve itself (Clarabel is deterministic on equal data)
            opts = solver_options("CLARABEL", TOL, n)
            (sc, vc), (sd, vd) = solve_compiled(c, opts), solve_compiled(d, opts)
            assert sc == sd and (vc is None) == (vd is None), where
            if vc is not None:
                assert all(_same(vc[k], vd[k]) for k in vc), where


def test_direct_program_refuses_another_kind() -> None:
    prob = _build("min_variance", 3, 0, False, "quad")
    with pytest.raises(ValueError, match="unknown kind"):
        direct_clarabel("max_return", prob.params, prob.variables, prob.problem)


@pytest.mark.parametrize("kind", ["min_variance", "max_sharpe"])
def test_solve_native_gives_the_cvxpy_compilation_bits(kind: str, monkeypatch) -> None:
    """solve_native on the direct program gives the weights (bytes), statuses and attempts of the
    same solves on cvxpy's compilation (the previous path), over windows of several shapes."""
    cases = [_case(n, t, seed, rows, bounded) for n, t, seed, rows, bounded in
             [(12, 120, 1, True, True), (5, 60, 2, False, False), (12, 120, 3, True, True),
              (30, 252, 4, True, False), (9, 12, 5, False, True)]]

    def run() -> list:
        cache = ProblemCache()
        out = []
        for cov, caps, mu in cases:
            r = solve_native(kind, cov, caps, mu, cache=cache, tol=TOL)
            out.append((None if r.weights is None else r.weights.tobytes(), r.status, r.solver, r.attempts))
        return out

    direct = run()
    monkeypatch.setattr(native, "_compile", lambda prob: compile_clarabel(prob.problem, prob.variables))
    assert direct == run()
    assert all(d[1] == "optimal" for d in direct)


@pytest.mark.parametrize("kind", ["min_variance", "max_sharpe"])
def test_shape_only_program_without_cvxpy_gives_the_built_problems_bits(kind: str, monkeypatch) -> None:
    """The fast path's program written from the shape alone (``direct_program``: no cvxpy problem
    built, values by name) gives the weights (bytes), statuses and attempts of the previous path
    (``direct_clarabel`` on the cvxpy problem built up front, its Parameters holding the values),
    and builds no cvxpy problem when Clarabel answers."""
    cases = [_case(n, t, seed, rows, bounded) for n, t, seed, rows, bounded in
             [(12, 120, 1, True, True), (5, 60, 2, False, False), (12, 120, 3, True, True),
              (30, 252, 4, True, False), (9, 12, 5, False, True), (2, 60, 6, False, False)]]

    def run() -> tuple[list, ProblemCache]:
        cache = ProblemCache()
        out = []
        for cov, caps, mu in cases:
            r = solve_native(kind, cov, caps, mu, cache=cache, tol=TOL)
            out.append((None if r.weights is None else r.weights.tobytes(), r.status, r.solver, r.attempts,
                        r.cache_hit))
        return out, cache

    lazy, cache = run()
    assert all(p._cvx is None for p in cache.problems.values())
    monkeypatch.setattr(native, "_compile",
                        lambda prob: direct_clarabel(prob.kind, prob.params, prob.variables, prob.problem))
    built, cache = run()
    assert all(p._cvx is not None for p in cache.problems.values())
    assert lazy == built
    assert all(d[1] == "optimal" for d in lazy)


@pytest.mark.parametrize("kind", ["min_variance", "max_sharpe"])
def test_unpruned_solve_gives_problem_solves_bits(kind: str, monkeypatch) -> None:
    """When the pruned fast solve is not a clean ``Solved``, the direct program is solved on cvxpy's
    own data (``prune=False``) instead of ``problem.solve``: same weights (bytes), status, solver
    and attempts as ``problem.solve`` with Clarabel (the previous path), and no cvxpy solve. The
    pruned solve is made to fail here; on the full preset the three ``optimal_inaccurate``
    market-neutral solves of ``benchmarks/unit_parity.py`` take this path (parity 12 of 12)."""
    cases = [_case(n, t, seed, rows, bounded) for n, t, seed, rows, bounded in
             [(12, 120, 1, True, True), (5, 60, 2, False, False), (30, 252, 4, True, False),
              (9, 12, 5, False, True), (20, 252, 7, True, True)]]
    real = native.solve_compiled

    def pruned_fails(comp, opts, values=None, prune=True, accept=(cp.OPTIMAL,)):
        return (cp.SOLVER_ERROR, None) if prune else real(comp, opts, values, prune, accept)

    def run() -> list:
        out = []
        for cov, caps, mu in cases:
            r = solve_native(kind, cov, caps, mu, cache=ProblemCache(), tol=TOL)
            out.append((None if r.weights is None else r.weights.tobytes(), r.status, r.solver, r.attempts))
        return out

    solves = []
    real_solve = cp.Problem.solve
    monkeypatch.setattr(cp.Problem, "solve", lambda self, *a, **k: solves.append(1) or real_solve(self, *a, **k))
    monkeypatch.setattr(native, "solve_compiled", pruned_fails)
    replica = run()
    assert solves == []
    monkeypatch.setattr(native, "solve_compiled", lambda comp, opts, values=None, prune=True, accept=():
                        (cp.SOLVER_ERROR, None))
    cvxpy_path = run()
    assert len(solves) == len(cases)
    assert replica == cvxpy_path
    assert all(r[1] == "optimal" and r[3] == ["CLARABEL: optimal"] for r in replica)


def test_direct_programs_are_shared_by_shape_across_evictions() -> None:
    """A ``ProblemCache`` keeps the direct programs by shape apart from its problems: a problem
    rebuilt after an eviction reuses its shape's program, with the same weights (bytes) as a fresh
    cache, and the problem hits/misses count as before."""
    a = _case(12, 120, 1, True, True)
    b = _case(5, 60, 2, False, False)
    cache = ProblemCache(max_problems=1)
    first = solve_native("min_variance", *a[:2], cache=cache, tol=TOL)
    prog = cache.problems[next(iter(cache.problems))].compiled
    solve_native("min_variance", *b[:2], cache=cache, tol=TOL)  # evicts a's problem
    again = solve_native("min_variance", *a[:2], cache=cache, tol=TOL)
    assert cache.problems[next(iter(cache.problems))].compiled is prog
    assert (cache.hits, cache.misses) == (0, 3) and len(cache.programs) == 2
    fresh = solve_native("min_variance", *a[:2], cache=ProblemCache(), tol=TOL)
    assert first.weights.tobytes() == again.weights.tobytes() == fresh.weights.tobytes()
