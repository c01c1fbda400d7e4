"""The compiled Clarabel program of a native problem, written down directly (no cvxpy compilation).

Why. ``compiled.compile_clarabel`` asks cvxpy for its compilation (``get_problem_data``), ~20-40 ms
per problem shape, and a worker of the full tournament preset meets ~500 shapes (kind, N, rows,
bounds): ~15 s of CPU per worker, more than the solves themselves. The two native problem kinds
(``native._build``) have a simple fixed structure, so their ``CompiledClarabel`` (the map ``M`` from
cvxpy's parameter vector to Clarabel's data, the CSC index arrays, the cones and the variables'
offsets) is written here in closed form, in ~0.1-1 ms, in exactly cvxpy's layout:

- parameter vector ``p``: the problem's parameters in order of appearance (``P``, then ``mu`` for
  max_sharpe, ``ub`` when bounded, ``A`` and ``b`` when there are rows), each vectorised
  column-major, then the constant 1;
- ``x``: ``w`` (min_variance) or ``[y, kappa]`` (max_sharpe);
- Clarabel's ``P``: the upper triangle (CSC, dense pattern) of ``2 P`` over the first N entries of
  ``x``; ``q`` and the objective offset are zero;
- constraint rows, zero cone first: min_variance ``sum w = 1``; max_sharpe ``mu'y = 1``,
  ``sum y - kappa = 0``; then the non-negative cone: (max_sharpe: ``kappa >= 0``, the variable
  attribute cvxpy turns into the first inequality), ``w >= 0``, ``w <= ub`` (``y <= ub kappa``),
  ``A w <= b`` (``A y <= b kappa``); Clarabel's ``A`` holds each column's entries in row order and
  ``b`` the right-hand sides (constant 1, ``ub``, ``b``; max_sharpe only the 1 of ``mu'y = 1``).

Every entry of ``M`` is a single parameter entry (or the constant) times 2, 1 or -1, so ``M @ p``
gives the same floating-point values as cvxpy's map. tests/allocation/test_compiled_direct.py
checks that ``direct_clarabel`` equals ``compile_clarabel`` bit for bit (every array, its dtype,
the cones, the parameter columns, the variables) over a grid of kinds, N, rows and bounds, so the
solve, and every allocation, is the same as with cvxpy's compilation; a cvxpy upgrade that changed
its layout would fail that test (the program here would still be the same optimisation problem).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from allocation.compiled import CompiledClarabel

_INT32_MAX = np.iinfo(np.int32).max


def _index(a: list[int] | np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.int64)


def direct_clarabel(kind: str, params: dict, variables: list, problem) -> CompiledClarabel:
    """``CompiledClarabel`` of ``native._build(kind, N, m, bounded, "quad")`` from its parameters
    (by name: ``P``, ``mu``, ``ub``, ``A``, ``b``) and variables (``[w]`` or ``[y, kappa]``).
    Raises ValueError for another kind."""
    if kind not in ("min_variance", "max_sharpe"):
        raise ValueError(f"direct_clarabel: unknown kind {kind!r}")
    sharpe = kind == "max_sharpe"
    n = params["P"].shape[0]
    bounded = "ub" in params
    m = params["A"].shape[0] if "A" in params else 0
    # parameter columns, in order of appearance in the problem
    order = ["P"] + (["mu"] if sharpe else []) + (["ub"] if bounded else []) + (["A", "b"] if m else [])
    col, cols = 0, {}
    for name in order:
        cols[name] = col
        col += params[name].size
    const = col
    n_param = col + 1
    n_x = n + 1 if sharpe else n
    # rows: zero cone, then the non-negative cone
    n_zero = 2 if sharpe else 1
    r_kappa = n_zero  # max_sharpe only
    r_pos = n_zero + (1 if sharpe else 0)
    r_ub = r_pos + n
    r_a = r_ub + (n if bounded else 0)
    n_rows = r_a + m
    # M rows as (column of p, coefficient), in cvxpy's order: triu(P) | q | offset | -A | b
    m_cols: list[int] = []
    m_vals: list[float] = []
    m_ptr = [0]

    def row(c: int | None, v: float = 1.0) -> None:
        if c is not None:
            m_cols.append(c)
            m_vals.append(v)
        m_ptr.append(len(m_cols))

    p_ind, p_ptr = [], [0]
    for j in range(n):
        for i in range(j + 1):
            p_ind.append(i)
            row(cols["P"] + i + j * n, 2.0)
        p_ptr.append(len(p_ind))
    if sharpe:
        p_ptr.append(len(p_ind))  # kappa: no quadratic term
    for _ in range(n_x + 1):  # q, then the objective offset: zero
        row(None)
    a_ind, a_ptr = [], [0]
    for j in range(n):
        if sharpe:
            a_ind += [0, 1]
            row(cols["mu"] + j)
            row(const)
        else:
            a_ind.append(0)
            row(const)
        a_ind.append(r_pos + j)
        row(const, -1.0)
        if bounded:
            a_ind.append(r_ub + j)
            row(const)
        for i in range(m):
            a_ind.append(r_a + i)
            row(cols["A"] + i + j * m)
        a_ptr.append(len(a_ind))
    if sharpe:  # kappa's column
        a_ind += [1, r_kappa]
        row(const, -1.0)
        row(const, -1.0)
        for j in range(n if bounded else 0):
            a_ind.append(r_ub + j)
            row(cols["ub"] + j, -1.0)
        for i in range(m):
            a_ind.append(r_a + i)
            row(cols["b"] + i, -1.0)
        a_ptr.append(len(a_ind))
    b_rows = [0]
    row(const)
    if not sharpe:
        for j in range(n if bounded else 0):
            b_rows.append(r_ub + j)
            row(cols["ub"] + j)
        for i in range(m):
            b_rows.append(r_a + i)
            row(cols["b"] + i)
    shape = (len(m_ptr) - 1, n_param)
    idx = np.int32 if max(len(m_cols), n_param) <= _INT32_MAX else np.int64
    M = sp.csr_array((np.asarray(m_vals, dtype=np.float64), np.asarray(m_cols, dtype=idx),
                      np.asarray(m_ptr, dtype=idx)), shape=shape)
    from clarabel import NonnegativeConeT, ZeroConeT
    cones = (ZeroConeT(n_zero), NonnegativeConeT(n_rows - n_zero))
    if sharpe:
        y, kappa = variables
        where = {y.id: (0, n, y.shape, y), kappa.id: (n, n + 1, kappa.shape, kappa)}
    else:
        (w,) = variables
        where = {w.id: (0, n, w.shape, None)}
    return CompiledClarabel(
        problem=problem, reductions=(), params=tuple((params[k], cols[k], params[k].size) for k in order),
        n_param=n_param, const_col=const, M=M, n_x=n_x, n_rows=n_rows,
        P_index=(_index(p_ind), _index(p_ptr)), A_index=(_index(a_ind), _index(a_ptr)),
        b_rows=_index(b_rows), cones=cones, variables=where)
