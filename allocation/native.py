"""Native optimiser backend: cvxpy problems built once per shape and re-solved through Parameters.

Problems (N atoms, m linear rows ``A w <= b``, atom bounds ``w <= ub``):

- ``min_variance``: minimise ``w' (S/s) w`` over ``w >= 0``, ``sum w = 1``, ``A w <= b`` (and
  ``w <= ub`` when an atom cap is set); S is the daily covariance and ``s = mean(diag S)`` scales the
  objective to O(1) so that the solver's absolute tolerances do not stop it early on daily variances
  of ~1e-4.
- ``max_sharpe``: Charnes-Cooper transform of ``max mu'w / sqrt(w'Sw)`` (rf = 0 daily): minimise
  ``y' (S/s) y`` over ``y >= 0``, ``kappa >= 0`` with ``(mu/|mu|_max)' y = 1``, ``sum y = kappa``,
  ``A y <= b kappa`` (``y <= ub kappa``); then ``w = y / kappa``. Infeasible when no admissible
  portfolio has a positive mean.

Every problem is DPP: its data (S/s, mu, A, b, ub) are ``cp.Parameter`` values, so a ``ProblemCache``
passed by the caller compiles a shape once and re-solves it across windows; hits are counted. The
quadratic objective is ``quad_form(w, psd_wrap(P))`` with a parameter P, which cvxpy (>= 1.7) keeps
DPP for solvers with a quadratic objective (Clarabel, SCS). ECOS has none, so its problems use
``||G w||^2`` with a factor ``G' G = S/s`` (also DPP), built and cached separately.

Clarabel, the first solver of the chain, is called through ``compiled.py``: the problem's Parameters
are set as above, then cvxpy's compiled parametric program (kept once per problem; for these two
kinds written down directly in cvxpy's layout by ``compiled_direct.py``, ~1 ms instead of cvxpy's
~20-40 ms compilation per shape) maps them to Clarabel's data and Clarabel is called directly,
skipping cvxpy's per-solve re-processing (~1.5 ms of a ~2 ms solve on 20 atoms). Rule: only a clean ``Solved`` with finite weights is taken from it;
any other outcome (inaccurate, infeasible, failed) runs ``problem.solve`` with Clarabel and then the
rest of the chain exactly as before, so every status is decided by cvxpy's full path. The fast
path reads the parameter values by name and the program is written from the problem's shape
(``compiled_direct.direct_program``), so a ``_Problem`` builds its cvxpy problem only when
``problem.solve`` needs it (``_Problem.cvx``: ~1.4 ms per shape and ~0.5 ms per solve of cvxpy
expression building and value validation saved when Clarabel answers; same data, same bits:
tests/allocation/test_compiled_direct.py). A problem
whose compiled form the fast path refuses is always solved by ``problem.solve`` (recorded in the
attempts).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cvxpy as cp
import numpy as np

from allocation.compiled import CompiledClarabel, compile_clarabel, solve_compiled
from allocation.compiled_direct import direct_program
from allocation.constraints import Caps
from allocation.covariance import factor
from allocation.solve import (SOLVER_CHAIN, SolveResult, clean_weights, solver_options,
                             solver_warnings)


@dataclass
class _Cvx:
    """A built cvxpy problem, its parameters, its variables, and ``weights(values)`` mapping the
    variables' values (by variable id) to portfolio weights (None when undefined)."""

    problem: cp.Problem
    params: dict[str, cp.Parameter]
    variables: list[cp.Variable]
    weights: Callable[[dict], np.ndarray | None]


@dataclass
class _Problem:
    """A native problem of one shape: its parameter values (``data``, by name, set by ``_set``), its
    compiled Clarabel program and, built on first use only (``cvx``), the cvxpy problem.

    The fast path needs no cvxpy object: ``compiled_direct.direct_program`` writes the program from
    the shape and ``solve_compiled`` reads the values by name. The cvxpy problem (``problem``,
    ``params``, ``variables``, ``weights``, ``values``) is built when ``problem.solve`` or cvxpy's
    compilation needs it, its parameters set from ``data`` at each access: the same problem and
    values as when it was built up front (~1.4 ms per shape and ~0.5 ms per solve of cvxpy
    expression building and value validation that the fast path did not read)."""

    kind: str
    n: int
    m: int
    bounded: bool
    form: str
    #: the parameter values by name (``P`` or ``G``, ``ub``, ``A``, ``b``, ``mu``), float64
    data: dict[str, np.ndarray] = field(default_factory=dict)
    #: the compiled Clarabel program (compiled.py), compiled on the first Clarabel solve
    compiled: CompiledClarabel | None = None
    #: why the compilation was refused (then ``problem.solve`` is always used)
    compile_error: str | None = None
    _cvx: _Cvx | None = None

    def cvx(self) -> _Cvx:
        """The cvxpy problem (built once), its parameters set to ``data``."""
        if self._cvx is None:
            self._cvx = _build_cvx(self.kind, self.n, self.m, self.bounded, self.form)
        for name, value in self.data.items():
            _assign(self._cvx.params[name], value)
        return self._cvx

    @property
    def problem(self) -> cp.Problem:
        return self.cvx().problem

    @property
    def params(self) -> dict[str, cp.Parameter]:
        return self.cvx().params

    @property
    def variables(self) -> list[cp.Variable]:
        return self.cvx().variables

    def weights(self, val: dict) -> np.ndarray | None:
        """Weights from the cvxpy variables' values (by variable id)."""
        return self.cvx().weights(val)

    def values(self) -> dict:
        """The variables' values after ``problem.solve`` (by variable id)."""
        return {v.id: v.value for v in self.cvx().variables}


@dataclass
class ProblemCache:
    """Compiled native problems keyed by (kind, N, m, atom bounds?, form): explicit, passed by the
    caller, never global; ``hits``/``misses`` count look-ups.

    At most ``max_problems`` are kept, the least recently used evicted first: a compiled problem
    holds cvxpy's canonicalisation and Clarabel's program (several MB at N = 20-40), and on a large
    candidate pool the keys keep changing (N and m follow each window's atoms), so an unbounded cache
    grew a worker by about 1 GiB per 20 units of the ``large`` preset. A rebuilt problem gives the
    same solution as a cached one (tests/allocation/test_compiled.py)."""

    problems: dict[tuple, _Problem] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    max_problems: int = 48
    # covariance once per window and atom set (every profile and backend of a window shares it):
    # keyed by a digest of the train-slice streams, their ids, the shrinkage and the method
    covariances: dict[tuple, np.ndarray] = field(default_factory=dict)
    cov_hits: int = 0
    cov_misses: int = 0
    max_covariances: int = 64
    # direct programs (compiled_direct.direct_program) by (kind, N, m, bounded, form): a function
    # of the shape only, holding no problem's objects, so every problem of a shape shares one (also
    # after its problem was evicted); small at N <= max_program_atoms (index arrays and a sparse map
    # of O(N^2 + N m) entries: ~50 kB at N = 40), so more are kept; larger ones only with their problem
    programs: dict[tuple, CompiledClarabel] = field(default_factory=dict)
    max_programs: int = 512
    max_program_atoms: int = 64

    def program(self, key: tuple, compute) -> CompiledClarabel:
        """The direct program of ``key`` (``(kind, N, m, bounded, form)``), else ``compute()``
        (kept when it is a direct program, i.e. holds no cvxpy problem, of at most
        ``max_program_atoms`` atoms; oldest evicted first)."""
        if key in self.programs:
            return self.programs[key]
        comp = compute()
        if comp.problem is None and key[1] <= self.max_program_atoms:
            self.programs[key] = comp
            while len(self.programs) > self.max_programs:
                self.programs.pop(next(iter(self.programs)))
        return comp

    def covariance(self, key: tuple, compute) -> np.ndarray:
        """The cached covariance for ``key``, else ``compute()`` stored read-only (oldest evicted)."""
        if key in self.covariances:
            self.cov_hits += 1
            return self.covariances[key]
        self.cov_misses += 1
        cov = np.array(compute(), dtype=np.float64)
        cov.setflags(write=False)
        self.covariances[key] = cov
        while len(self.covariances) > self.max_covariances:
            self.covariances.pop(next(iter(self.covariances)))
        return cov

    def get(self, key: tuple) -> tuple[_Problem, bool]:
        if key in self.problems:
            self.hits += 1
            self.problems[key] = self.problems.pop(key)  # most recently used last
            return self.problems[key], True
        self.misses += 1
        self.problems[key] = _build(*key)
        while len(self.problems) > self.max_problems:
            self.problems.pop(next(iter(self.problems)))
        return self.problems[key], False


def _build(kind: str, n: int, m: int, bounded: bool, form: str) -> _Problem:
    """The native problem of this shape (its cvxpy problem built on first use: ``_Problem.cvx``)."""
    if kind not in ("min_variance", "max_sharpe"):
        raise ValueError(f"unknown native problem kind {kind!r}")
    return _Problem(kind, n, m, bounded, form)


def _build_cvx(kind: str, n: int, m: int, bounded: bool, form: str) -> _Cvx:
    params: dict[str, cp.Parameter] = {}
    if form == "quad":
        # psd_wrap: S/s is PSD by construction (estimate_covariance); it skips cvxpy's eigen-check.
        # P is not declared symmetric: cvxpy would then lower it to its triangle (CvxAttr2Constr)
        # and check its symmetry (np.allclose) at every assignment, ~0.1 ms per solve at N = 20;
        # _set symmetrises the value exactly, so Clarabel gets the same upper triangle
        params["P"] = cp.Parameter((n, n), name="P")
        risk = lambda x: cp.quad_form(x, cp.psd_wrap(params["P"]))  # noqa: E731
    else:
        params["G"] = cp.Parameter((n, n), name="G")
        risk = lambda x: cp.sum_squares(params["G"] @ x)  # noqa: E731
    if bounded:
        params["ub"] = cp.Parameter(n, nonneg=True, name="ub")
    if m:
        params["A"] = cp.Parameter((m, n), name="A")
        params["b"] = cp.Parameter(m, name="b")
    if kind == "min_variance":
        w = cp.Variable(n, name="w")
        cons = [cp.sum(w) == 1, w >= 0]
        if bounded:
            cons.append(w <= params["ub"])
        if m:
            cons.append(params["A"] @ w <= params["b"])
        prob = cp.Problem(cp.Minimize(risk(w)), cons)
        return _Cvx(prob, params, [w], lambda val: val[w.id])
    if kind == "max_sharpe":
        y = cp.Variable(n, name="y")
        kappa = cp.Variable(nonneg=True, name="kappa")
        mu = cp.Parameter(n, name="mu")
        params["mu"] = mu
        cons = [mu @ y == 1, cp.sum(y) == kappa, y >= 0]
        if bounded:
            cons.append(y <= params["ub"] * kappa)
        if m:
            cons.append(params["A"] @ y <= params["b"] * kappa)
        prob = cp.Problem(cp.Minimize(risk(y)), cons)

        def weights(val: dict) -> np.ndarray | None:
            yv, kv = val[y.id], val[kappa.id]
            if yv is None or kv is None or kv <= 0:
                return None
            return yv / kv

        return _Cvx(prob, params, [y, kappa], weights)
    raise ValueError(f"unknown native problem kind {kind!r}")


def _set(prob: _Problem, form: str, kind: str, cov: np.ndarray, caps: Caps, mu: np.ndarray | None,
         bounded: bool) -> None:
    """Set the problem's parameter values (``prob.data``; its cvxpy parameters, when built, take
    them on their next use)."""
    scale = float(np.mean(np.diag(cov)))
    data = prob.data
    if form == "quad":
        p = cov / scale
        data["P"] = 0.5 * (p + p.T)
    else:
        data["G"] = factor(cov) / np.sqrt(scale)
    if bounded:
        data["ub"] = np.asarray(caps.ub, dtype=np.float64)
    if len(caps.b):
        data["A"] = np.asarray(caps.A, dtype=np.float64)
        data["b"] = np.asarray(caps.b, dtype=np.float64)
    if kind == "max_sharpe":
        data["mu"] = np.asarray(mu, dtype=np.float64) / float(np.max(np.abs(mu)))


def _assign(param: cp.Parameter, value) -> None:
    """Set ``param`` to ``value`` (float64) unless it already holds exactly that value (cvxpy
    validates every assignment)."""
    value = np.asarray(value, dtype=np.float64)
    if param.value is None or not np.array_equal(param.value, value):
        param.value = value


def solve_native(kind: str, cov: np.ndarray, caps: Caps, mu: np.ndarray | None = None,
                 cache: ProblemCache | None = None, tol: float = 1e-10) -> SolveResult:
    """Solve ``kind`` with the native backend along the solver chain (see module docstring).

    ``cov`` is the daily covariance (positive semi-definite), ``mu`` the daily mean (max_sharpe only).
    Without a ``cache`` the problem is built for this call only.
    """
    n = cov.shape[0]
    cache = cache if cache is not None else ProblemCache()
    bounded = bool(np.any(np.asarray(caps.ub) < 1.0))
    attempts: list[str] = []
    hit = None
    for solver in SOLVER_CHAIN:
        form = "factor" if solver == "ECOS" else "quad"
        prob, h = cache.get((kind, n, len(caps.b), bounded, form))
        hit = h if hit is None else hit
        _set(prob, form, kind, cov, caps, mu, bounded)
        opts = solver_options(solver, tol, n)
        if solver == "CLARABEL":
            fast = _fast(prob, opts, attempts, cache)
            if fast is not None:
                status, w = fast
                attempts.append(f"{solver}: {status}")
                st = "optimal" if status == cp.OPTIMAL else "optimal_inaccurate"
                return SolveResult(clean_weights(w), st, solver, None, attempts, hit)
        try:
            # warm_start=False: cvxpy otherwise updates a cached Clarabel solver in place, which makes
            # the answer depend on earlier solves in the process (not reproducible across executors)
            with solver_warnings():  # "may be inaccurate" is recorded by the status below
                prob.problem.solve(solver=solver, warm_start=False, **opts)
        except cp.error.SolverError as exc:
            attempts.append(f"{solver}: {exc}".splitlines()[0][:200])
            continue
        status = prob.problem.status
        attempts.append(f"{solver}: {status}")
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            return SolveResult(None, "infeasible", solver, f"{solver} reports {status}", attempts, hit)
        w = prob.weights(prob.values())
        if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) and w is not None and np.all(np.isfinite(w)):
            st = "optimal" if status == cp.OPTIMAL else "optimal_inaccurate"
            return SolveResult(clean_weights(w), st, solver, None, attempts, hit)
    return SolveResult(None, "failed", None, "; ".join(attempts), attempts, hit)


def _fast(prob: _Problem, opts: dict, attempts: list[str],
          cache: ProblemCache | None = None) -> tuple[str, np.ndarray] | None:
    """``(cvxpy status, weights)`` from the compiled Clarabel fast path (compiled.py) when Clarabel
    reports a clean ``Solved`` with finite weights; None otherwise (the caller then runs
    ``problem.solve``).

    Direct programs (``direct_program``) take one more step before giving up: when the solve on the
    pruned data is not a clean ``Solved``, the same program is solved on cvxpy's own data (``A``
    with its explicit zeros, ``prune=False``: entry for entry what ``problem.solve`` hands Clarabel,
    with the settings it builds), which is what ``problem.solve`` with Clarabel computes; an
    ``optimal`` or ``optimal_inaccurate`` outcome with finite weights is then that call's answer, bit
    for bit (its variable values are Clarabel's ``x`` recovered as cvxpy recovers them), without
    cvxpy's compilation of the problem (~25 ms per shape). Any other outcome goes to
    ``problem.solve`` as before, so statuses other than these two, the messages and the rest of the
    chain stay cvxpy's. tests/allocation/test_compiled_direct.py compares with ``problem.solve``.

    A problem that cvxpy compiles into a form the fast path does not handle (``compile_clarabel``
    raises ValueError) is solved by ``problem.solve`` from then on; the reason is added to
    ``attempts`` (recorded with the allocation)."""
    if prob.compiled is None and prob.compile_error is None:
        try:
            with solver_warnings():
                if cache is None:
                    prob.compiled = _compile(prob)
                else:  # a direct program is shared by every problem of its shape
                    prob.compiled = cache.program((prob.kind, prob.n, prob.m, prob.bounded, prob.form),
                                                  lambda: _compile(prob))
        except ValueError as exc:
            prob.compile_error = str(exc).splitlines()[0][:200]
    if prob.compiled is None:
        attempts.append(f"CLARABEL fast path unavailable ({prob.compile_error}); cvxpy's problem.solve used")
        return None
    comp = prob.compiled
    if comp.problem is None:  # the direct program: parameters and variables by name
        status, values = solve_compiled(comp, opts, prob.data)
        w = _direct_weights(prob.kind, values) if status == cp.OPTIMAL and values is not None else None
        if w is not None and np.all(np.isfinite(w)):
            return status, w
        status, values = solve_compiled(comp, opts, prob.data, prune=False,
                                        accept=(cp.OPTIMAL, cp.OPTIMAL_INACCURATE))
        w = _direct_weights(prob.kind, values) if values is not None else None
        return (status, w) if w is not None and np.all(np.isfinite(w)) else None
    # cvxpy's objects: its parameters must hold the values
    prob.cvx()
    status, values = solve_compiled(comp, opts)
    if status != cp.OPTIMAL or values is None:
        return None
    w = prob.weights(values)
    return (status, w) if w is not None and np.all(np.isfinite(w)) else None


def _direct_weights(kind: str, values: dict) -> np.ndarray | None:
    """``_Cvx.weights`` of the direct program's variable values (by name)."""
    if kind == "min_variance":
        return values["w"]
    yv, kv = values["y"], values["kappa"]
    if yv is None or kv is None or kv <= 0:
        return None
    return yv / kv


def _compile(prob: _Problem) -> CompiledClarabel:
    """The problem's compiled Clarabel program: written down directly from the shape for the
    quadratic form of both kinds (compiled_direct.py: cvxpy's layout bit for bit, ~1 ms instead of
    cvxpy's ~20-40 ms compilation, and no cvxpy problem built), else cvxpy's compilation
    (``compile_clarabel``)."""
    if prob.form == "quad" and prob.kind in ("min_variance", "max_sharpe"):
        return direct_program(prob.kind, prob.n, prob.m, prob.bounded)
    return compile_clarabel(prob.problem, prob.variables)
