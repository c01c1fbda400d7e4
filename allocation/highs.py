"""Small dense LPs on scipy's HiGHS without ``scipy.optimize.linprog``'s per-call overhead.

``lp_min(c, A_ub, b_ub, A_eq, b_eq, lb, ub)`` returns what ``linprog(c, A_ub=A_ub, b_ub=b_ub,
A_eq=A_eq, b_eq=b_eq, bounds=list(zip(lb, ub)), method="highs")`` returns, bit for bit: the caps'
LPs (``allocation.constraints``) have 15-40 columns and 2-40 rows and take ~0.5 ms in HiGHS, while
``linprog`` spends another ~1 ms per call checking its options one by one (a new options manager per
option) and cleaning its inputs.

How: the HiGHS that scipy bundles (``scipy.optimize._highspy._core``, a private module) is handed the
model ``linprog`` builds (``_linprog_highs``: rows ``[A_ub; A_eq]`` in scipy's CSC layout, row bounds
``[-inf, b_ub]`` and ``[b_eq, b_eq]``, column bounds ``lb, ub``, infinities as ``kHighsInf``) with the
options it sets (presolve on, debug level none, no log or output, dual simplex strategy; the rest left
at HiGHS's defaults, as ``linprog`` leaves them), a new solver object per LP as ``linprog`` makes.
An optimal result that passes ``linprog``'s own feasibility check (``_check_result``: bounds, slack
and equality residuals within ``10 sqrt(1e-9)``) is returned; **any other outcome** (not optimal, a
failed check, NaN) is handed to ``linprog`` itself, so statuses and messages are ``linprog``'s. If the
private module is missing or changed (another scipy), every LP goes to ``linprog``.

``tests/allocation/test_highs.py`` compares with ``linprog`` bit for bit (objective, solution bytes,
status) on the LPs the caps build and on random LPs, feasible or not.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

try:  # scipy's bundled HiGHS (private; absent or different in other scipy versions: then linprog)
    import scipy.optimize._highspy._core as _h
    from scipy.optimize._highspy._core import simplex_constants as _s_c

    _OPTIMAL = _h.HighsModelStatus.kOptimal
    _INF = float(_h.kHighsInf)
    _OPTIONS = (("presolve", "on"), ("highs_debug_level", _h.HighsDebugLevel.kHighsDebugLevelNone),
                ("log_to_console", False), ("output_flag", False),
                ("simplex_strategy", _s_c.SimplexStrategy.kSimplexStrategyDual))
    _COLWISE = _h.MatrixFormat.kColwise
except (ImportError, AttributeError):  # pragma: no cover - depends on the installed scipy
    _h = None

#: linprog's feasibility tolerance for a reported optimum (``_check_result``: ``sqrt(tol) * 10``,
#: ``tol = 1e-9``).
_CHECK_TOL = float(np.sqrt(1e-9) * 10)


@dataclass(frozen=True)
class LPResult:
    """The fields of ``linprog``'s result that callers read: ``status`` (0 = optimal), ``message``,
    ``fun`` (``c . x``) and ``x`` (None unless solved)."""

    status: int
    message: str
    fun: float | None
    x: np.ndarray | None


def _csc(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``scipy.sparse.csc_array(A)``'s ``indptr, indices, data`` for a dense float64 ``A``: the
    non-zeros column by column, rows ascending (int32 indices, as scipy gives for these sizes)."""
    At = A.T
    cols, rows = np.nonzero(At)
    indptr = np.zeros(A.shape[1] + 1, dtype=np.int32)
    np.cumsum(np.count_nonzero(At, axis=1), out=indptr[1:])
    return indptr, rows.astype(np.int32), At[cols, rows]


def _via_linprog(c, A_ub, b_ub, A_eq, b_eq, lb, ub) -> LPResult:
    bounds = [(float(lo), None if np.isinf(hi) else float(hi)) for lo, hi in zip(lb, ub)]
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs")
    return LPResult(int(res.status), str(res.message), None if res.fun is None else float(res.fun), res.x)


def lp_min(c: np.ndarray, A_ub: np.ndarray | None, b_ub: np.ndarray | None, A_eq: np.ndarray,
           b_eq: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> LPResult:
    """``min c . x`` s.t. ``A_ub x <= b_ub``, ``A_eq x = b_eq``, ``lb <= x <= ub`` (``ub`` may hold
    ``inf``; ``A_ub``/``b_ub`` None for no inequality rows): ``linprog(method="highs")``'s result,
    bit for bit (module docstring). All arrays float64, dense."""
    c = np.asarray(c, dtype=np.float64)
    lb = np.asarray(lb, dtype=np.float64)
    ub = np.asarray(ub, dtype=np.float64)
    if _h is None or not np.all(np.isfinite(lb)):
        return _via_linprog(c, A_ub, b_ub, A_eq, b_eq, lb, ub)
    n = c.size
    if A_ub is None:
        A_ub, b_ub = np.zeros((0, n)), np.zeros(0)
    b_ub = np.asarray(b_ub, dtype=np.float64)
    b_eq = np.asarray(b_eq, dtype=np.float64)
    m_ub = b_ub.size
    indptr, indices, data = _csc(np.vstack((np.asarray(A_ub, dtype=np.float64),
                                            np.asarray(A_eq, dtype=np.float64))))
    lhs = np.concatenate((np.full(m_ub, -_INF), b_eq))
    rhs = np.concatenate((b_ub, b_eq))
    rhs[np.isinf(rhs)] = np.sign(rhs[np.isinf(rhs)]) * _INF
    lhs[np.isinf(lhs)] = np.sign(lhs[np.isinf(lhs)]) * _INF
    hub = np.where(np.isinf(ub), _INF, ub)
    lp = _h.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = rhs.size
    lp.a_matrix_.num_col_ = n
    lp.a_matrix_.num_row_ = rhs.size
    lp.a_matrix_.format_ = _COLWISE
    lp.col_cost_ = c
    lp.col_lower_ = lb
    lp.col_upper_ = hub
    lp.row_lower_ = lhs
    lp.row_upper_ = rhs
    lp.a_matrix_.start_ = indptr
    lp.a_matrix_.index_ = indices
    lp.a_matrix_.value_ = data
    highs = _h._Highs()
    options = _h.HighsOptions()
    for key, val in _OPTIONS:
        setattr(options, key, val)
    ok = (highs.passOptions(options) != _h.HighsStatus.kError
          and highs.passModel(lp) != _h.HighsStatus.kError
          and highs.run() != _h.HighsStatus.kError)
    status = highs.getModelStatus()
    ok = ok and status == _OPTIMAL
    if ok:
        sol = highs.getSolution()
        x = np.array(sol.col_value)
        fun = highs.getInfo().objective_function_value
        slack = rhs - sol.row_value
        with np.errstate(invalid="ignore"):
            ok = (x.shape == (n,) and not (np.isnan(x).any() or np.isnan(fun) or np.isnan(slack).any())
                  and bool(np.all((x >= lb - _CHECK_TOL) & (x <= ub + _CHECK_TOL)))
                  and not (slack[:m_ub] < -_CHECK_TOL).any()
                  and not (np.abs(slack[m_ub:]) > _CHECK_TOL).any())
        if ok:
            return LPResult(0, "Optimization terminated successfully. (HiGHS Status "
                            f"{int(status)}: {highs.modelStatusToString(status)})", float(fun), x)
    return _via_linprog(c, A_ub, b_ub, A_eq, b_eq, lb, ub)
