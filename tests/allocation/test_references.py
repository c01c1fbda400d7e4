"""Each convex profile and HRP against an independent library on the same covariance.

References: PyPortfolioOpt ``EfficientFrontier`` (min_volatility / max_sharpe with the same linear
constraints) and ``HRPOpt`` (same covariance, single linkage); riskfolio ``HCPortfolio`` for the HRP
backend comparison before the caps; skfolio ``MeanRisk`` minimum variance as a second reference.
Tolerances: weights 1e-4 and objectives 1e-6 relative (Clarabel at 1e-10 gaps on both sides, unique
optimum under Ledoit-Wolf covariance); HRP is closed-form, so 1e-10.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pypfopt import EfficientFrontier, HRPOpt

from allocation import AllocationConfig, allocate, estimate_covariance
from allocation.covariance import atom_betas, mean_returns
from allocation.hrp import hrp_native, hrp_riskfolio

BACKENDS = ["native", "riskfolio"]


def _pypfopt(cov: np.ndarray, mu: np.ndarray | None, clusters: list[int], cap: float,
             extra=None) -> EfficientFrontier:
    ef = EfficientFrontier(mu, cov, weight_bounds=(0, 1), solver="CLARABEL",
                           solver_options={"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10,
                                           "tol_feas": 1e-10})
    for c in sorted(set(clusters)):
        mask = np.array([k == c for k in clusters], dtype=float)
        ef.add_constraint(lambda w, m=mask: m @ w <= cap)
    for f in extra or []:
        ef.add_constraint(f)
    return ef


@pytest.mark.parametrize("backend", BACKENDS)
def test_min_variance_matches_pypfopt(make_request, backend: str) -> None:
    req = make_request(n=15, seed=21, n_clusters=5)
    cov = estimate_covariance(req.atom_returns, req.shrinkage)
    ef = _pypfopt(cov, None, [a.cluster for a in req.atoms], 0.25)
    ref = np.array(list(ef.min_volatility().values()))
    alloc = allocate(req, "min_variance", backend)
    w = np.array(list(alloc.weights.values()))
    assert alloc.status == "optimal" and alloc.diagnostics["cluster_cap_binds"]
    np.testing.assert_allclose(w, ref, atol=1e-4)
    assert alloc.diagnostics["objective"] == pytest.approx(ref @ cov @ ref, rel=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_sharpe_matches_pypfopt(make_request, backend: str) -> None:
    req = make_request(n=12, seed=22, n_clusters=6, drift=8e-4)
    cov = estimate_covariance(req.atom_returns, req.shrinkage)
    mu = req.atom_returns.fillna(0.0).mean().to_numpy()  # sample mean, NaN -> 0
    ef = _pypfopt(cov, mu, [a.cluster for a in req.atoms], 0.25)
    ref = np.array(list(ef.max_sharpe(risk_free_rate=0.0).values()))
    alloc = allocate(req, "max_sharpe", backend)
    w = np.array(list(alloc.weights.values()))
    assert alloc.status == "optimal", alloc.reason
    np.testing.assert_allclose(w, ref, atol=1e-4)
    ref_sharpe = mu @ ref / np.sqrt(ref @ cov @ ref)
    assert alloc.diagnostics["objective"] == pytest.approx(ref_sharpe, rel=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_market_neutral_matches_pypfopt_with_beta_rows(make_request, backend: str) -> None:
    req = make_request(n=12, shorts=5, seed=23, n_clusters=6)
    cov = estimate_covariance(req.atom_returns, req.shrinkage)
    beta = atom_betas(req.atom_returns, req.benchmark_returns)
    lng = np.array([a.sign > 0 for a in req.atoms], dtype=float)
    extra = [lambda w: beta @ w <= 0.05, lambda w: beta @ w >= -0.05,
             lambda w: lng @ w <= 0.6, lambda w: (1 - lng) @ w <= 0.6]
    ref = np.array(list(_pypfopt(cov, None, [a.cluster for a in req.atoms], 0.25, extra)
                        .min_volatility().values()))
    alloc = allocate(req, "market_neutral", backend)
    assert "beta_cap:upper" in alloc.binding  # the beta row is active on this draw
    assert abs(alloc.diagnostics["beta_p"]) <= 0.05 + 1e-6
    np.testing.assert_allclose(list(alloc.weights.values()), ref, atol=1e-4)


def test_min_variance_matches_skfolio_ledoit_wolf_without_ridge(make_request) -> None:
    """skfolio estimates its own Ledoit-Wolf covariance (shrinkage s = 0 here, so no ridge)."""
    from skfolio.moments import LedoitWolf
    from skfolio.optimization import MeanRisk, ObjectiveFunction
    from skfolio.prior import EmpiricalPrior

    req = make_request(n=6, seed=24, shrinkage=0.0)
    model = MeanRisk(objective_function=ObjectiveFunction.MINIMIZE_RISK,
                     prior_estimator=EmpiricalPrior(covariance_estimator=LedoitWolf()),
                     solver="CLARABEL", solver_params={"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10})
    ref = model.fit(req.atom_returns.to_numpy()).weights_
    alloc = allocate(req, "min_variance", "native", AllocationConfig(cluster_cap=1.0))  # no cap
    np.testing.assert_allclose(list(alloc.weights.values()), ref, atol=1e-4)


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_hrp_native_matches_pypfopt_and_riskfolio(make_request, seed: int) -> None:
    req = make_request(n=14, seed=seed)
    cov = estimate_covariance(req.atom_returns, req.shrinkage)
    names = list(req.atom_returns.columns)
    ref = HRPOpt(cov_matrix=pd.DataFrame(cov, index=names, columns=names)).optimize("single")
    w = hrp_native(cov)
    np.testing.assert_allclose(w, [ref[k] for k in names], atol=1e-10)
    np.testing.assert_allclose(hrp_riskfolio(cov, req.atom_returns.to_numpy()), w, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hrp_profile_is_capped_uncapped_hrp(make_request, backend: str) -> None:
    req = make_request(n=10, seed=34, n_clusters=3)
    alloc = allocate(req, "hrp", backend)
    cov = estimate_covariance(req.atom_returns, req.shrinkage)
    np.testing.assert_allclose(list(alloc.diagnostics["hrp_uncapped"].values()), hrp_native(cov),
                               atol=1e-10)
    sums = pd.Series(alloc.weights).groupby([a.cluster for a in req.atoms]).sum()
    assert sums.max() <= 1 / 3 + 1e-9  # k = 3 -> effective cap max(0.25, 1/3)


def test_mean_returns_are_sample_means_with_nan_as_zero() -> None:
    df = pd.DataFrame({"a": [0.01, np.nan, 0.03], "b": [0.0, 0.0, -0.03]})
    np.testing.assert_allclose(mean_returns(df), [0.04 / 3, -0.01])


@pytest.mark.parametrize("n", [3, 12, 25])
def test_riskfolio_integer_labels_give_the_string_label_weights_bit_for_bit(n: int) -> None:
    """The riskfolio wrappers label assets 0..n-1 (faster look-ups than pandas' Arrow strings);
    the labels must not reach the numbers: HCPortfolio HRP and Portfolio MinRisk/Sharpe (with
    cluster rows and an atom bound) give exactly the weights of the string labels ``a0..a{n-1}``
    (which sort differently from their positions once n > 10)."""
    import contextlib
    import io

    import riskfolio as rp

    from allocation.constraints import cluster_caps
    from allocation.riskfolio_backend import solve_riskfolio
    from allocation.solve import clean_weights, solver_options, solver_warnings

    rng = np.random.default_rng(n)
    x = rng.normal(3e-4, 0.02, size=(252, n)) + rng.normal(0, 0.01, size=(252, 1))
    cov = estimate_covariance(x, 0.0)
    mu = x.mean(axis=0)
    mu[0] = abs(mu).max() + 1e-4
    names = [f"a{i}" for i in range(n)]
    cov_df = pd.DataFrame(cov, index=names, columns=names)
    port = rp.HCPortfolio(returns=pd.DataFrame(x, columns=names))
    with contextlib.redirect_stdout(io.StringIO()):
        ref = port.optimization(model="HRP", codependence="custom_cov", rm="MV", rf=0, linkage="single",
                                leaf_order=False, method_cov="custom_cov", custom_cov=cov_df)
    w_ref = ref["weights"].reindex(names).to_numpy(dtype=np.float64)
    assert np.array_equal(hrp_riskfolio(cov, x), w_ref / w_ref.sum())

    caps = cluster_caps(names, [i % max(1, n // 3) for i in range(n)], 0.6, 0.3 if n > 3 else None)
    for kind, obj in (("min_variance", "MinRisk"), ("max_sharpe", "Sharpe")):
        port = rp.Portfolio(returns=pd.DataFrame(x, columns=names))
        port.cov = cov_df
        port.mu = pd.DataFrame(mu[None, :], columns=names)
        port.upperlng = float(np.max(caps.ub))
        port.ainequality = np.asarray(caps.A, dtype=np.float64)
        port.binequality = np.asarray(caps.b, dtype=np.float64).reshape(-1, 1)
        port.solvers = ["CLARABEL"]
        port.sol_params = {"CLARABEL": solver_options("CLARABEL", 1e-10)}
        with contextlib.redirect_stdout(io.StringIO()), solver_warnings():
            res = port.optimization(model="Classic", rm="MV", obj=obj, rf=0, hist=True)
        got = solve_riskfolio(kind, cov, caps, x, mu=mu, tol=1e-10)
        assert got.solver == "CLARABEL"
        assert np.array_equal(got.weights, clean_weights(res["weights"].to_numpy(dtype=np.float64))), kind
