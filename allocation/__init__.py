"""Allocation pillar: risk profiles, optimiser backends, covariance estimation and caps (DESIGN s. 4).

Public API (what the tournament calls)::

    allocate(request, profile, backend, config=None, cache=None) -> contracts.Allocation
    AllocationConfig, ProblemCache
    estimate_covariance(returns, shrinkage, method) -> np.ndarray (daily covariance)
    ex_ante_volatility(weights, cov, periods_per_year) -> float (annualised, fraction)

Imports only ``contracts`` of ours (import-linter).
"""
from allocation.config import AllocationConfig
from allocation.covariance import estimate_covariance, ex_ante_volatility
from allocation.engine import allocate
from allocation.native import ProblemCache

__all__ = ["allocate", "AllocationConfig", "ProblemCache", "estimate_covariance",
           "ex_ante_volatility"]
