"""The riskfolio backend under ``solve.riskfolio_runtime`` gives exactly what it gave before.

``riskfolio_runtime`` changes only how the Python runtime treats riskfolio's objects (pandas string
storage for the label frames riskfolio builds, the cyclic garbage collector paused), never an input
of riskfolio. The oracle is the backend as it was at commit 28c63d8 (copied below, called without
the runtime settings): over problems of the tournament's shapes (T = 252 daily bars, 2 to 79
atoms, min-variance and max-Sharpe, with cluster rows, atom bounds, market-neutral rows, no rows
at all, and all-negative means) and HRP, the weights must be bit-identical and the statuses,
solvers and attempt strings equal.
"""
from __future__ import annotations

import contextlib
import gc
import io

import numpy as np
import pandas as pd
import pytest
import riskfolio as rp

from allocation.constraints import Caps, cluster_caps, market_neutral_caps
from allocation.covariance import estimate_covariance
from allocation.hrp import hrp_riskfolio
from allocation.riskfolio_backend import solve_riskfolio
from allocation.solve import (SOLVER_CHAIN, SolveResult, clean_weights, riskfolio_runtime,
                              solver_options, solver_warnings)

SIZES = (2, 3, 5, 8, 11, 15, 19, 21, 27, 40, 79)


def _oracle_solve(kind, cov, caps, returns, mu=None, tol=1e-10) -> SolveResult:
    """``solve_riskfolio`` at 28c63d8, verbatim but for the name."""
    n = cov.shape[0]
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
        with contextlib.redirect_stdout(out), solver_warnings() as notes:
            try:
                res = port.optimization(model="Classic", rm="MV", obj=obj, rf=0, hist=True)
            except (ValueError, ArithmeticError) as exc:
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


def _oracle_hrp(cov: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """``hrp_riskfolio`` at 28c63d8, verbatim but for the name."""
    n = cov.shape[0]
    if n == 1:
        return np.ones(1)
    names = list(range(n))
    cov_df = pd.DataFrame(cov, index=names, columns=names)
    port = rp.HCPortfolio(returns=pd.DataFrame(returns, columns=names))
    with contextlib.redirect_stdout(io.StringIO()):
        res = port.optimization(model="HRP", codependence="custom_cov", rm="MV", rf=0,
                                linkage="single", leaf_order=False, method_cov="custom_cov",
                                custom_cov=cov_df)
    w = res["weights"].reindex(names).to_numpy(dtype=np.float64)
    return w / w.sum()


def _problem(n: int, seed: int):
    """T = 252 streams on 3 factors (the synthetic market's structure), their Ledoit-Wolf
    covariance with the tournament's 0.05 ridge, sample means, betas to the first factor and
    signs (a third SHORT)."""
    rng = np.random.default_rng(seed)
    f = rng.normal(0.0, 0.01, size=(252, 3))
    load = rng.normal(1.0, 0.5, size=(3, n)) * np.array([[1.0], [0.5], [0.3]])
    x = 3e-4 + f @ load + rng.normal(0.0, 0.015, size=(252, n)) * rng.uniform(0.5, 2.0, size=n)
    x[rng.random(x.shape) < 0.02] = 0.0  # NaN -> 0 bars, as clean_returns leaves them
    cov = estimate_covariance(x, 0.05)
    fc = f[:, 0] - f[:, 0].mean()
    beta = (x - x.mean(axis=0)).T @ fc / (fc @ fc)
    signs = np.where(np.arange(n) < n // 3, -1.0, 1.0)
    return x, cov, x.mean(axis=0), beta, signs


def _caps_variants(n: int, beta: np.ndarray, signs: np.ndarray, seed: int) -> dict[str, Caps]:
    rng = np.random.default_rng(seed)
    ids = [f"a{i}" for i in range(n)]
    clusters = [int(c) for c in rng.integers(0, max(1, (n + 1) // 2), size=n)]
    out = {"free": Caps(np.zeros((0, n)), np.zeros(0), [], np.ones(n), []),
           "clusters": cluster_caps(ids, clusters, 0.25, None),
           "clusters_atom_cap": cluster_caps(ids, clusters, 0.35, 0.2)}
    out["market_neutral"] = market_neutral_caps(out["clusters"], beta, signs, 0.05, 0.6, 0.6)
    return out


def _same(a: SolveResult, b: SolveResult) -> bool:
    weights = (a.weights is None and b.weights is None) or (
        a.weights is not None and b.weights is not None and np.array_equal(a.weights, b.weights))
    return weights and (a.status, a.solver, a.reason, a.attempts) == (b.status, b.solver, b.reason,
                                                                        b.attempts)


@pytest.mark.parametrize("n", SIZES)
def test_meanrisk_weights_statuses_and_attempts_are_the_oracle_s(n: int) -> None:
    x, cov, mu, beta, signs = _problem(n, 100 + n)
    neg = -np.abs(mu) - 1e-5  # every mean negative: riskfolio's (mu < 0).all() branch
    checked = 0
    for name, caps in _caps_variants(n, beta, signs, 200 + n).items():
        for kind, m in (("min_variance", None), ("max_sharpe", mu), ("max_sharpe", neg)):
            got = solve_riskfolio(kind, cov, caps, x, mu=m, tol=1e-10)
            ref = _oracle_solve(kind, cov, caps, x, mu=m, tol=1e-10)
            assert _same(got, ref), (n, name, kind, got.attempts, ref.attempts)
            checked += got.weights is not None
    assert checked >= 8  # most of the 12 problems have a solution to compare


@pytest.mark.parametrize("n", SIZES + (1, 4, 6, 17))
def test_hrp_weights_are_the_oracle_s(n: int) -> None:
    for seed in range(3):
        x, cov, *_ = _problem(n, 300 + 10 * n + seed)
        assert np.array_equal(hrp_riskfolio(cov, x), _oracle_hrp(cov, x)), (n, seed)


@pytest.mark.parametrize("enabled", [True, False])
def test_runtime_restores_the_collector_and_pandas_options(enabled: bool) -> None:
    storage = pd.get_option("mode.string_storage")
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with pytest.raises(RuntimeError):
            with riskfolio_runtime():
                assert not gc.isenabled()
                assert pd.get_option("mode.string_storage") == "python"
                raise RuntimeError("restored on the way out")
        assert gc.isenabled() is enabled
        assert pd.get_option("mode.string_storage") == storage
    finally:
        (gc.enable if was else gc.disable)()
