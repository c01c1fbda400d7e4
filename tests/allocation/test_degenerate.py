"""Degenerate but legal inputs get a documented rule and a status; bad inputs raise typed errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import allocation.native as native
from allocation import AllocationConfig, allocate
from allocation.solve import SolveResult
from contracts import AllocationRequest, Profile
from contracts.errors import ConfigError, DataError

PROFILES = [p.value for p in Profile]
BACKENDS = ["native", "riskfolio"]


def _subset(req: AllocationRequest, k: int) -> AllocationRequest:
    atoms = req.atoms[:k]
    return AllocationRequest(atoms=atoms, atom_returns=req.atom_returns[[a.id for a in atoms]],
                             asset_returns=req.asset_returns, benchmark_returns=req.benchmark_returns)


def _with_column(req: AllocationRequest, col: int, values) -> AllocationRequest:
    df = req.atom_returns.copy()
    df.iloc[:, col] = values
    return req.model_copy(update={"atom_returns": df})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("profile", PROFILES)
def test_empty_atom_list_is_status_empty(make_request, profile: str, backend: str) -> None:
    req = _subset(make_request(n=3), 0)
    alloc = allocate(req, profile, backend)
    assert alloc.status == "empty" and alloc.weights == {}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("profile", PROFILES)
def test_one_atom_gets_all_the_weight(make_request, profile: str, backend: str) -> None:
    alloc = allocate(_subset(make_request(n=3), 1), profile, backend)
    assert alloc.weights == {"A0_mom_SHORT": 1.0} and alloc.status == "optimal"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("profile", PROFILES)
def test_constant_and_nan_columns_give_valid_allocations(make_request, profile: str,
                                                          backend: str) -> None:
    req = _with_column(_with_column(make_request(n=8, seed=3), 2, 0.001), 5, np.nan)
    alloc = allocate(req, profile, backend)
    assert alloc.status in {"optimal", "optimal_inaccurate", "relaxed", "fallback"}
    assert sum(alloc.weights.values()) == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_constant_returns_fall_back_with_reason(make_request, backend: str) -> None:
    req = make_request(n=4)
    df = req.atom_returns * 0.0
    alloc = allocate(req.model_copy(update={"atom_returns": df}), "min_variance", backend)
    assert alloc.fallback_used and alloc.status == "fallback" and "zero covariance" in alloc.reason
    assert list(alloc.weights.values()) == pytest.approx([0.25] * 4)


@pytest.mark.parametrize("method", ["sample", "ledoit_wolf"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("profile", ["min_variance", "max_sharpe", "market_neutral"])
def test_t_less_than_n_singular_sample_covariance(make_request, profile: str, backend: str,
                                                  method: str) -> None:
    # T = 12 < N = 30: the sample covariance (no ridge) is singular; Ledoit-Wolf is not
    req = make_request(n=30, t=12, seed=5, shrinkage=0.0, drift=2e-3)
    alloc = allocate(req, profile, backend, AllocationConfig(covariance=method))
    w = np.array(list(alloc.weights.values()))
    assert alloc.status in {"optimal", "optimal_inaccurate", "relaxed"}, alloc.reason
    assert w.min() >= 0 and w.max() <= 0.25 + 1e-7  # 30 clusters: cap 0.25


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_sharpe_all_negative_means_is_min_variance(make_request, backend: str) -> None:
    req = make_request(n=6, seed=6, drift=-5e-3, shorts=0)
    assert (req.atom_returns.mean() < 0).all()
    alloc = allocate(req, "max_sharpe", backend)
    mv = allocate(req, "min_variance", backend)
    assert alloc.fallback_used and alloc.status == "fallback" and "mean return" in alloc.reason
    np.testing.assert_allclose(list(alloc.weights.values()), list(mv.weights.values()), atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fewer_clusters_than_the_cap_needs(make_request, backend: str) -> None:
    req = make_request(n=6, seed=7, n_clusters=2)
    alloc = allocate(req, "equal_weight", backend)
    assert alloc.diagnostics["effective_cluster_cap"] == 0.5  # max(0.25, 1/2)
    assert list(alloc.weights.values()) == pytest.approx([1 / 6] * 6)  # cap 0.5 not exceeded


def test_solver_chain_failure_falls_back_to_equal_weight(make_request, monkeypatch) -> None:
    def failing(*args, **kwargs):
        return SolveResult(None, "failed", None, "forced failure", ["CLARABEL: forced"])

    monkeypatch.setattr("allocation.profiles.solve_native", failing)
    alloc = allocate(make_request(n=8, n_clusters=8), "min_variance", "native")
    assert alloc.fallback_used and alloc.status == "fallback" and "forced failure" in alloc.reason
    assert alloc.diagnostics["attempts"] == ["CLARABEL: forced"] and alloc.solver is None
    assert list(alloc.weights.values()) == pytest.approx([1 / 8] * 8)


@pytest.mark.parametrize("chain, tol", [(("ECOS",), 1e-4), (("SCS",), 1e-3)])
def test_later_solvers_of_the_chain_agree_with_clarabel(make_request, monkeypatch, chain, tol) -> None:
    # ECOS (interior point, 1e-9) matches to the backend tolerance; SCS is first-order: 1e-3.
    req = make_request(n=10, seed=8, n_clusters=4)
    ref = allocate(req, "min_variance", "native")
    monkeypatch.setattr(native, "SOLVER_CHAIN", chain)
    alloc = allocate(req, "min_variance", "native")
    assert alloc.solver == chain[0]
    np.testing.assert_allclose(list(alloc.weights.values()), list(ref.weights.values()), atol=tol)


def test_bad_inputs_raise_typed_errors(make_request) -> None:
    req = make_request(n=4)
    with pytest.raises(ConfigError, match="profile"):
        allocate(req, "max_return", "native")
    with pytest.raises(ConfigError, match="backend"):
        allocate(req, "hrp", "mosek")
    with pytest.raises(DataError, match="benchmark_returns"):
        allocate(req.model_copy(update={"benchmark_returns": None}), "market_neutral", "native")
    with pytest.raises(DataError, match="S1"):
        allocate(req.model_copy(update={"asset_returns": pd.DataFrame(
            {"S0": req.asset_returns["S0"]})}), "barbell", "native")
    with pytest.raises(ValueError):
        AllocationConfig(fallback_profile="min_variance")


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_sharpe_caps_forbid_a_positive_mean(make_request, backend: str) -> None:
    # 4 atoms in 4 clusters: the cap 0.25 forces w = 1/4 each; one atom has a positive mean, the
    # others negative ones, so the only admissible portfolio has a negative mean -> the rule applies.
    req = make_request(n=4, seed=9, drift=0.0, shorts=0)
    df = req.atom_returns - req.atom_returns.mean() + np.array([1e-4, -3e-3, -3e-3, -3e-3])
    alloc = allocate(req.model_copy(update={"atom_returns": df}), "max_sharpe", backend)
    assert alloc.fallback_used and "positive mean" in alloc.reason
    assert list(alloc.weights.values()) == pytest.approx([0.25] * 4, abs=1e-7)
