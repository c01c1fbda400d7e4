"""Clarabel fast path: evaluate cvxpy's own compiled parametric program and call Clarabel directly.

Why. A native problem is DPP and built once per shape (``native.ProblemCache``), but each
``problem.solve`` still re-runs cvxpy's per-solve parameter processing: ``ConeMatrixStuffing
.apply_parameters`` rebuilds ~16 scipy sparse matrices (``canonInterface.get_matrix_from_tensor``),
then ``clarabel_conif`` re-formats them (``triu``, ``tocsc``), builds the settings and cones, and
``unpack_results`` walks the inverse chain. Measured on the 20-asset min-variance walk-forward of
``benchmarks/tournament.py`` (20 cluster rows): ~2 ms per ``problem.solve``, of which Clarabel
(building its solver and solving) takes ~0.47 ms; this path takes ~0.33 ms in all.

What. Once per problem (shape), ``compile_clarabel`` asks cvxpy for its Clarabel compilation
(``problem.get_problem_data(CLARABEL)``) and keeps, from the ``ParamConeProg`` that cvxpy caches and
re-applies on every solve:

- cvxpy's reduced parameter-to-data maps (``ReducedMat.reduced_mat`` of ``P`` and ``A``, the tensor
  ``q``), stacked into one sparse matrix ``M`` so that ``M @ p`` (``p`` = cvxpy's parameter vector,
  last entry the constant 1) yields, in one product, the values of ``triu(P)`` (CSC), ``q``, the
  objective offset, ``-A`` (CSC) and the non-zero entries of ``b``, in exactly the layout
  ``clarabel_conif.solve_via_data`` passes to Clarabel (same sparsity pattern, same entry order),
  with one difference: the explicit zeros of ``A`` are dropped. A dense
  parameter ``A`` (the 0/1 cluster-membership rows) stores every zero; Clarabel factorises the
  pattern it is given, so the same matrix without them solves ~2x faster (20 atoms, 20 cluster
  rows: 0.22 ms instead of 0.47 ms). Same matrix, so the same problem; the solution agrees with
  ``problem.solve``'s to float noise (~1e-15 measured), not bit for bit;
- the chain's reductions (their ``update_parameters`` lowers e.g. a symmetric parameter to its
  triangle, as cvxpy's cached solve does), the cone list (cvxpy's ``dims_to_solver_cones``) and the
  offset of each requested variable in Clarabel's ``x`` (through ``CvxAttr2Constr``'s inverse data
  when a variable carries an attribute such as ``nonneg``, recovered by cvxpy's own
  ``recover_value_for_leaf``).

Per solve (``solve_compiled``): update the reduced parameters, fill ``p``, one sparse matvec, two
``csc_array`` built on the fixed index arrays (``A``'s pruned of its zeros), ``clarabel.DefaultSolver(P, q, A, b, cones,
settings)`` with the settings cvxpy would build (``DefaultSettings``, ``verbose=False``, then each
option), ``solve()``. No warm start and no state kept between solves, so the answer depends only on
the parameter values (reproducible across executors). The status is mapped by cvxpy's own
``CLARABEL.STATUS_MAP``. Only a clean ``Solved`` (cvxpy ``optimal``) with a finite primal point is
returned as an answer; the caller treats anything else as "not answered here" and falls back to the
full ``problem.solve`` along the solver chain, so inaccurate, infeasible and failed cases behave
exactly as they did without this module.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import clarabel
import cvxpy as cp
import numpy as np
import scipy.sparse as sp
from cvxpy.lin_ops import lin_op
from cvxpy.reductions.cvx_attr2constr import CvxAttr2Constr, recover_value_for_leaf
from cvxpy.reductions.solvers.conic_solvers.clarabel_conif import CLARABEL, dims_to_solver_cones


#: cvxpy canonicalisation backend of ``compile_clarabel`` (see there)
CANON_BACKEND = cp.settings.COO_CANON_BACKEND


@dataclass(frozen=True)
class CompiledClarabel:
    """cvxpy's compiled Clarabel program of one ``cp.Problem`` (see module docstring).

    ``M`` (CSR, rows ``[triu(P) values | q | offset | -A values | b non-zeros]`` by ``n_param``
    columns) maps cvxpy's parameter vector to Clarabel's data; ``*_index`` are the fixed CSC index
    arrays; ``variables`` maps each requested variable to its slice of Clarabel's ``x``, its shape
    and, when ``CvxAttr2Constr`` lists it (e.g. a ``nonneg`` variable it replaced), the original
    leaf, whose value cvxpy recovers with ``recover_value_for_leaf`` (else None: the raw slice)."""

    problem: cp.Problem | None
    reductions: tuple
    #: (parameter of the compiled program, first column of p, size); the parameter is a
    #: ``cp.Parameter`` (its ``.value`` is read) or, for a program written without cvxpy objects
    #: (``compiled_direct.direct_program``), a name looked up in the ``values`` passed per solve
    params: tuple
    n_param: int
    const_col: int
    M: sp.csr_array
    n_x: int
    n_rows: int
    P_index: tuple[np.ndarray, np.ndarray]
    A_index: tuple[np.ndarray, np.ndarray]
    b_rows: np.ndarray
    cones: tuple
    variables: dict  # variable id -> (start, stop, shape, leaf or None)


def _reduced(mat) -> tuple[sp.csr_array, np.ndarray, np.ndarray, tuple]:
    """cvxpy's reduced map of a ``ReducedMat``: (CSR map, CSC indices, CSC indptr, shape)."""
    mat.cache(False)  # the keep_zeros cvxpy's apply_parameters uses
    indices, indptr, shape = mat.problem_data_index
    return sp.csr_array(mat.reduced_mat), np.asarray(indices), np.asarray(indptr), shape


def compile_clarabel(problem: cp.Problem, variables: list[cp.Variable]) -> CompiledClarabel:
    """Compile ``problem`` (DPP, parameter values set) for Clarabel once, as cvxpy does, and keep
    its parametric data map. Raises ValueError if the program is not of the supported form (a
    conic program with a quadratic objective and only zero/non-negative cones)."""
    # no solver_opts: the same cache key as problem.solve(solver=CLARABEL), so a fallback re-uses
    # this compilation (cvxpy's cache key does not include the canonicalisation backend).
    # CANON_BACKEND (COO) builds the same parameter tensors as cvxpy's default (CPP) backend, about
    # a third faster on these small problems (tests/allocation/test_compiled.py compares the two
    # compilations' Clarabel data bit for bit over a grid of shapes)
    data, chain, inverse = problem.get_problem_data(cp.CLARABEL, canon_backend=CANON_BACKEND)
    prog = data[cp.settings.PARAM_PROB]
    dims = data["dims"]
    if prog.P is None or dims.soc or dims.psd or dims.exp or dims.p3d or dims.pnd:
        raise ValueError("compile_clarabel: only QPs over zero and non-negative cones are supported")
    if prog.lb_tensor is not None or prog.ub_tensor is not None:
        raise ValueError("compile_clarabel: variable bounds tensors are not supported")
    n_x = prog.x.size
    # P: cvxpy builds csc(values, indices, indptr) then clarabel_conif keeps sp.triu(P).tocsc();
    # replay that once on position markers (1..k, never zero) to learn which values land where
    p_map, p_ind, p_ptr, p_shape = _reduced(prog.reduced_P)
    marker = sp.csc_array((np.arange(1.0, len(p_ind) + 1.0), p_ind, p_ptr), shape=p_shape)
    tri = sp.triu(marker).tocsc()
    p_sel = tri.data.astype(np.int64) - 1
    # A and b: csc(values, indices, indptr) of shape (rows, n_x + 1); the last column is b; Clarabel
    # gets -A (ConicSolver.apply) and b dense
    a_map, a_ind, a_ptr, a_shape = _reduced(prog.reduced_A)
    split = int(a_ptr[n_x])
    q_map = sp.csr_array(prog.q)
    if q_map.shape[0] != n_x + 1:  # q then the objective offset d
        raise ValueError(f"compile_clarabel: q tensor has {q_map.shape[0]} rows, expected {n_x + 1}")
    M = sp.vstack([p_map[p_sel], q_map, -a_map[:split], a_map[split:]], format="csr")
    reductions = tuple(chain.reductions)
    attr_inverse = next((inv for red, inv in zip(reductions, inverse)
                         if isinstance(red, CvxAttr2Constr) and inv), None)
    where = {}
    for var in variables:
        vid, leaf = var.id, None
        if attr_inverse is not None and var.id in attr_inverse[0]:
            # CvxAttr2Constr replaced the variable; cvxpy recovers its value from the new one
            vid, leaf = attr_inverse[0][var.id].id, var
        if vid not in prog.var_id_to_col:
            raise ValueError(f"compile_clarabel: variable {var.name()} is not in the compiled program")
        start = prog.var_id_to_col[vid]
        where[var.id] = (start, start + var.size, var.shape, leaf)
    const_col = prog.param_id_to_col[lin_op.CONSTANT_ID]
    params = tuple((prog.id_to_param[pid], col, prog.param_id_to_size[pid])
                   for pid, col in prog.param_id_to_col.items() if pid in prog.id_to_param)
    return CompiledClarabel(
        problem=problem, reductions=reductions, params=params, n_param=prog.total_param_size + 1,
        const_col=const_col, M=M, n_x=n_x, n_rows=int(a_shape[0]),
        P_index=(tri.indices.copy(), tri.indptr.copy()),
        A_index=(a_ind[:split].copy(), a_ptr[: n_x + 1].copy()), b_rows=a_ind[split:].copy(),
        cones=tuple(dims_to_solver_cones(dims)), variables=where)


def clarabel_settings(options: dict) -> "clarabel.DefaultSettings":
    """The settings cvxpy's ``CLARABEL.parse_solver_opts`` builds for ``options`` (verbose off)."""
    return CLARABEL.parse_solver_opts(False, options)


def problem_data(comp: CompiledClarabel, values: Optional[dict] = None, prune: bool = True
                 ) -> tuple[sp.csc_array, np.ndarray, sp.csc_array, np.ndarray]:
    """Clarabel's ``(P upper triangle, q, A, b)`` for the current parameter values (``A`` without
    explicit zeros; ``prune`` False keeps them: cvxpy's own data, entry for entry): each
    ``cp.Parameter``'s ``.value``, or ``values[name]`` for a parameter given by name
    (``CompiledClarabel.params``)."""
    for red in comp.reductions:
        red.update_parameters(comp.problem)
    p = np.zeros(comp.n_param)
    p[comp.const_col] = 1.0
    for param, col, size in comp.params:
        val = values[param] if isinstance(param, str) else param.value
        p[col: col + size] = np.asarray(val, dtype=np.float64).ravel(order="F")
    v = comp.M @ p
    kp = len(comp.P_index[0])
    ka = len(comp.A_index[0])
    n = comp.n_x
    P = sp.csc_array((v[:kp], *comp.P_index), shape=(n, n))
    q = v[kp: kp + n]
    # A without its explicit zeros (see the module docstring); the compiled index arrays are shared
    # across solves, so the pruned pattern is built anew (never scipy's in-place eliminate_zeros)
    a_val = v[kp + n + 1: kp + n + 1 + ka]
    if not prune:
        A = sp.csc_array((a_val, *comp.A_index), shape=(comp.n_rows, n))
        b = np.zeros(comp.n_rows)
        b[comp.b_rows] = v[kp + n + 1 + ka:]
        return P, q, A, b
    keep = a_val != 0.0
    kept = np.concatenate(([0], np.cumsum(keep)))
    A = sp.csc_array((a_val[keep], comp.A_index[0][keep], kept[comp.A_index[1]]),
                     shape=(comp.n_rows, n))
    b = np.zeros(comp.n_rows)
    b[comp.b_rows] = v[kp + n + 1 + ka:]
    return P, q, A, b


def solve_compiled(comp: CompiledClarabel, options: dict, values: Optional[dict] = None,
                   prune: bool = True, accept: tuple = (cp.OPTIMAL,)) -> tuple[str, Optional[dict]]:
    """One Clarabel solve of the compiled program at the current parameter values (``values``:
    those of the parameters given by name; ``prune``: see ``problem_data``).

    Returns ``(cvxpy status, values)``: ``values`` maps each compiled variable id to its value (a
    float array, projected as cvxpy projects it) when the status is in ``accept`` and the primal
    point is finite, else None (the caller then falls back to ``problem.solve``)."""
    P, q, A, b = problem_data(comp, values, prune)
    solver = clarabel.DefaultSolver(P, q, A, b, list(comp.cones), clarabel_settings(options))
    sol = solver.solve()
    status = CLARABEL.STATUS_MAP.get(str(sol.status), cp.SOLVER_ERROR)
    if status not in accept:
        return status, None
    x = np.asarray(sol.x, dtype=np.float64)
    if x.shape != (comp.n_x,) or not np.all(np.isfinite(x)):
        return cp.SOLVER_ERROR, None
    out = {}
    for vid, (start, stop, shape, leaf) in comp.variables.items():
        val = x[start:stop].reshape(shape, order="F")  # cvxpy vectorises column-major
        out[vid] = recover_value_for_leaf(leaf, val) if leaf is not None else val
    return status, out
