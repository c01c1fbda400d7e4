"""riskfolio-lib optimiser backend (``riskfolio.Portfolio``), wrapped once, at the edge.

riskfolio's ``optimization()`` prints a message and returns None when no solver of its list answers;
here each solver of the chain is tried on its own (so that the answering solver is known), its stdout
is captured, and None becomes a ``SolveResult`` status. riskfolio does not expose the cvxpy status;
cvxpy's "solution may be inaccurate" warning is caught (``solve.solver_warnings``) and becomes the
status ``optimal_inaccurate``, otherwise an answer is ``optimal``. cvxpy's deprecation notice about
riskfolio's use of ``*`` for a matrix product is dropped there, by its message.

Mapping (riskfolio >= 6.2: ``ainequality @ w <= binequality``):
- ``min_variance``: ``model='Classic', rm='MV', obj='MinRisk'`` with our covariance as ``port.cov``;
- ``max_sharpe``: ``obj='Sharpe', rf=0`` (riskfolio's own Charnes-Cooper transform) with ``port.mu``;
- cluster and market-neutral rows go to ``ainequality``/``binequality``; atom bounds to ``upperlng``
  (a scalar: every atom bound of one allocation is the same cap).
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import riskfolio as rp

from allocation.constraints import Caps
from allocation.solve import (SOLVER_CHAIN, SolveResult, clean_weights, riskfolio_runtime,
                             solver_options, solver_warnings)


def solve_riskfolio(kind: str, cov: np.ndarray, caps: Caps, returns: np.ndarray,
                    mu: np.ndarray | None = None, tol: float = 1e-10) -> SolveResult:
    """Solve ``kind`` (``min_variance`` or ``max_sharpe``) with ``riskfolio.Portfolio``.

    ``returns`` (T x N, NaN already 0) is only what riskfolio needs to size its problem; the risk is
    taken from ``cov`` and the mean from ``mu``. Each call runs under ``solve.riskfolio_runtime``
    (pandas string storage, garbage collector paused: neither reaches the weights).
    """
    n = cov.shape[0]
    # integer labels 0..n-1 (label = position): riskfolio indexes its frames by label, and
    # pandas >= 3 stores string labels as Arrow strings, whose look-ups cost ~25% of a call;
    # the labels never reach the numbers (tests/allocation/test_references.py checks the
    # weights are bit-identical to string labels)
    names = list(range(n))
    ret = pd.DataFrame(np.asarray(returns, dtype=np.float64), columns=names)
    port = rp.Portfolio(returns=ret)
    port.cov = pd.DataFrame(cov, index=names, columns=names)
    mu_v = np.zeros(n) if mu is None else np.asarray(mu, dtype=np.float64)
    port.mu = pd.DataFrame(mu_v[None, :], columns=names)
    port.upperlng = float(np.max(caps.ub)) if len(caps.ub) else 1.0
    if len(caps.b):
        port.ainequality = np.asarray(caps.A, dtype=np.float64)
        port.binequality = np.asarray(caps.b, dtype=np.float64).reshape(-1, 1)
    obj = {"min_variance": "MinRisk", "max_sharpe": "Sharpe"}[kind]
    attempts: list[str] = []
    for solver in SOLVER_CHAIN:
        port.solvers = [solver]
        port.sol_params = {solver: solver_options(solver, tol)}
        out = io.StringIO()
        with contextlib.redirect_stdout(out), solver_warnings() as notes, riskfolio_runtime():
            try:
                res = port.optimization(model="Classic", rm="MV", obj=obj, rf=0, hist=True)
            except (ValueError, ArithmeticError) as exc:  # riskfolio/cvxpy numerical errors
                attempts.append(f"{solver}: {type(exc).__name__}: {exc}"[:200])
                continue
        if res is None:
            attempts.append(f"{solver}: no solution ({out.getvalue().strip()[:120]})")
            continue
        w = res["weights"].to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(w)):
            attempts.append(f"{solver}: non-finite weights")
            continue
        status = "optimal_inaccurate" if notes else "optimal"
        attempts.append(f"{solver}: {status}")
        return SolveResult(clean_weights(w), status, solver, None, attempts)
    return SolveResult(None, "failed", None, "; ".join(attempts), attempts)
