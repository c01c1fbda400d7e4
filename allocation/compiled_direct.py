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

import dataclasses

import clarabel
import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from allocation.compiled import CompiledClarabel

_INT32_MAX = np.iinfo(np.int32).max


def _index(a: list[int] | np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.int64)


def direct_clarabel(kind: str, params: dict, variables: list, problem) -> CompiledClarabel:
    """``CompiledClarabel`` of ``native._build(kind, N, m, bounded, "quad")`` from its parameters
    (by name: ``P``, ``mu``, ``ub``, ``A``, ``b``) and variables (``[w]`` or ``[y, kappa]``):
    ``direct_program`` of the problem's shape with the problem's own ``cp.Parameter`` objects,
    variable ids and leaves. Raises ValueError for another kind."""
    if kind not in ("min_variance", "max_sharpe"):
        raise ValueError(f"direct_clarabel: unknown kind {kind!r}")
    n = params["P"].shape[0]
    m = params["A"].shape[0] if "A" in params else 0
    prog = direct_program(kind, n, m, "ub" in params)
    where = {}
    for var, (start, stop, shape, leaf) in zip(variables, prog.variables.values()):
        where[var.id] = (start, stop, shape, None if leaf is None else var)
    return dataclasses.replace(prog, problem=problem,
                               params=tuple((params[k], col, size) for k, col, size in prog.params),
                               variables=where)


def direct_program(kind: str, n: int, m: int, bounded: bool) -> CompiledClarabel:
    """The compiled program of ``native._build(kind, n, m, bounded, "quad")`` from its shape alone,
    without building the cvxpy problem: ``params`` name the parameters (``P``, ``mu``, ``ub``,
    ``A``, ``b``; their values are passed to ``compiled.solve_compiled`` by name), ``variables`` are
    keyed by the variables' names (``w``; ``y``, ``kappa``), each ``y``/``kappa`` with a leaf of the
    same attributes as the problem's (``cp.Variable(n)``, ``cp.Variable(nonneg=True)``) through
    which ``recover_value_for_leaf`` recovers its value as for the problem's own variables.
    ``direct_clarabel`` is this program with the problem's objects (tests compare it with cvxpy's
    compilation bit for bit). Raises ValueError for another kind."""
    if kind not in ("min_variance", "max_sharpe"):
        raise ValueError(f"direct_clarabel: unknown kind {kind!r}")
    sharpe = kind == "max_sharpe"
    size = {"P": n * n, "mu": n, "ub": n, "A": m * n, "b": m}
    # parameter columns, in order of appearance in the problem
    order = ["P"] + (["mu"] if sharpe else []) + (["ub"] if bounded else []) + (["A", "b"] if m else [])
    col, cols = 0, {}
    for name in order:
        cols[name] = col
        col += size[name]
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
    # M rows (each one entry, or none for q and the offset), in cvxpy's order:
    # triu(P) | q | offset | -A | b; P and A in CSC order (column by column, rows ascending)
    jj, ii = np.tril_indices(n)  # (j, i) with i <= j, j outer: triu(P)'s CSC order
    p_ind = ii
    p_ptr = np.concatenate(([0], np.cumsum(np.arange(1, n + 1)), [n * (n + 1) // 2] if sharpe else []))
    p_cols = cols["P"] + ii + jj * n
    j = np.arange(n)[:, None]
    parts = []  # (rows, columns of p, coefficients) per entry of a w/y column, each of shape (n, 1 or m)
    if sharpe:
        parts += [(np.zeros((n, 1)), cols["mu"] + j, 1.0), (np.ones((n, 1)), np.full((n, 1), const), 1.0)]
    else:
        parts.append((np.zeros((n, 1)), np.full((n, 1), const), 1.0))
    parts.append((r_pos + j, np.full((n, 1), const), -1.0))
    if bounded:
        parts.append((r_ub + j, np.full((n, 1), const), 1.0))
    if m:
        i = np.arange(m)[None, :]
        parts.append((np.broadcast_to(r_a + i, (n, m)), cols["A"] + i + j * m, 1.0))
    a_rows = np.hstack([np.broadcast_to(r, (n, np.shape(r)[1])) for r, _, _ in parts]).ravel()
    a_cols = np.hstack([np.broadcast_to(c, (n, np.shape(c)[1])) for _, c, _ in parts]).ravel()
    a_vals = np.hstack([np.full((n, np.shape(c)[1]), v) for _, c, v in parts]).ravel()
    per_col = sum(np.shape(c)[1] for _, c, _ in parts)
    a_ptr = np.arange(n + 1) * per_col
    if sharpe:  # kappa's column: sum row, kappa >= 0, -ub, -b
        k_rows = np.concatenate(([1, r_kappa], r_ub + np.arange(n if bounded else 0), r_a + np.arange(m)))
        k_cols = np.concatenate(([const, const], cols["ub"] + np.arange(n) if bounded else [],
                                 cols["b"] + np.arange(m) if m else []))
        a_rows = np.concatenate((a_rows, k_rows))
        a_cols = np.concatenate((a_cols, k_cols))
        a_vals = np.concatenate((a_vals, np.full(len(k_rows), -1.0)))
        a_ptr = np.append(a_ptr, len(a_rows))
        b_rows, b_cols = np.zeros(1), np.full(1, const)
    else:
        b_rows = np.concatenate(([0], r_ub + np.arange(n if bounded else 0), r_a + np.arange(m)))
        b_cols = np.concatenate(([const], cols["ub"] + np.arange(n) if bounded else [],
                                 cols["b"] + np.arange(m) if m else []))
    m_cols = np.concatenate((p_cols, a_cols, b_cols))
    m_vals = np.concatenate((np.full(len(p_cols), 2.0), a_vals, np.ones(len(b_cols))))
    counts = np.concatenate((np.ones(len(p_cols)), np.zeros(n_x + 1), np.ones(len(a_cols) + len(b_cols))))
    shape = (len(counts), n_param)
    idx = np.int32 if max(len(m_cols), n_param) <= _INT32_MAX else np.int64
    M = sp.csr_array((m_vals.astype(np.float64), m_cols.astype(idx),
                      np.concatenate(([0], np.cumsum(counts))).astype(idx)), shape=shape)
    cones = (clarabel.ZeroConeT(n_zero), clarabel.NonnegativeConeT(n_rows - n_zero))
    if sharpe:
        y, kappa = cp.Variable(n, name="y"), cp.Variable(nonneg=True, name="kappa")
        where = {"y": (0, n, y.shape, y), "kappa": (n, n + 1, kappa.shape, kappa)}
    else:
        where = {"w": (0, n, (n,), None)}
    return CompiledClarabel(
        problem=None, reductions=(), params=tuple((k, cols[k], size[k]) for k in order),
        n_param=n_param, const_col=const, M=M, n_x=n_x, n_rows=n_rows,
        P_index=(_index(p_ind), _index(p_ptr)), A_index=(_index(a_rows), _index(a_ptr)),
        b_rows=_index(b_rows), cones=cones, variables=where)
