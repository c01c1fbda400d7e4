"""``allocate``: one window's weights for one profile and optimiser backend, with what happened.

Statuses (contracts.Allocation): ``optimal`` / ``optimal_inaccurate`` (the solver's word; the
non-convex profiles EqualWeight, HRP and Barbell report ``optimal`` when computed as defined),
``relaxed`` (a constraint or target was relaxed, see ``relaxed``: ``atom_cap``, the market-neutral
``long_share_cap``/``short_share_cap``/``beta_cap``, the Barbell's ``barbell_core_share`` when the
cluster caps cannot hold its Core/Aggressor split or a sleeve is empty; ``reason`` says why and
``diagnostics`` carries the realised ``core_share``/``aggressor_share``), ``fallback`` (a documented rule replaced the
profile: every solver of the chain failed -> ``config.fallback_profile`` under the caps; or MaxSharpe
undefined -> min variance), ``empty`` (no atom: weights {}).

Rules for degenerate inputs: no atom -> ``empty`` (cash: objective and volatility 0); one atom ->
weight 1 (every profile, no solve);
a covariance that is zero everywhere (every stream constant) makes every portfolio minimum-variance,
so the profile is replaced by the fallback profile (reason recorded).

Diagnostics: ``objective`` (daily variance ``w'Sw`` for MinVariance/MarketNeutral/EqualWeight/HRP/
Barbell, the daily Sharpe ratio ``mu'w / sqrt(w'Sw)`` for MaxSharpe unless a rule replaced it),
``ex_ante_vol_annual``
(``sqrt(w'Sw P)``, fraction), ``effective_cluster_cap``, ``n_clusters``, ``cluster_cap_binds``,
``attempts`` (solver chain), ``cache_hits``/``cache_misses`` (native, when a cache is passed).
"""
from __future__ import annotations

import hashlib
from typing import Optional

import numpy as np

from allocation import profiles as pf
from allocation.config import AllocationConfig
from allocation.constraints import binding
from allocation.covariance import (VARIANCE_FLOOR, clean_returns, estimate_covariance,
                                   ex_ante_volatility)
from allocation.native import ProblemCache
from contracts.allocation import Allocation, AllocationRequest
from contracts.enums import Backend, Profile
from contracts.errors import ConfigError, DataError, SolverError

_PROFILES = {
    Profile.EQUAL_WEIGHT: pf.equal_weight,
    Profile.HRP: pf.hrp_profile,
    Profile.MIN_VARIANCE: pf.min_variance,
    Profile.MAX_SHARPE: pf.max_sharpe,
    Profile.MARKET_NEUTRAL: pf.market_neutral,
    Profile.BARBELL: pf.barbell,
}


def _enum(cls, value, field: str):
    try:
        return cls(value)
    except ValueError:
        raise ConfigError(f"{field}: {value!r} is not one of {[m.value for m in cls]}") from None


def _to_dict(ids: list[str], w: np.ndarray) -> dict[str, float]:
    w = np.where(w < 1e-12, 0.0, w)
    w = w / w.sum()
    return {a: float(x) for a, x in zip(ids, w)}


def _covariance(request: AllocationRequest, returns: np.ndarray, config: AllocationConfig,
                cache: Optional[ProblemCache]) -> np.ndarray:
    """Covariance of the train-slice atom streams (``returns``: the request's, NaN -> 0), computed
    once per window and atom set when a cache is passed (every profile and backend of the window
    reuses it). The key digests the cleaned streams, which are all the estimate reads."""
    compute = lambda: estimate_covariance(returns, request.shrinkage, config.covariance)  # noqa: E731
    if cache is None:
        return compute()
    digest = hashlib.sha256(np.ascontiguousarray(returns).tobytes()).hexdigest()
    # the atom ids are the frame's columns (AllocationRequest checks it)
    key = (digest, returns.shape, tuple(a.id for a in request.atoms), float(request.shrinkage),
           config.covariance)
    return cache.covariance(key, compute)


def allocate(request: AllocationRequest, profile: Profile | str, backend: Backend | str,
             config: Optional[AllocationConfig] = None,
             cache: Optional[ProblemCache] = None) -> Allocation:
    """Weights over ``request.atoms`` for ``profile`` on optimiser ``backend`` (train slice only).

    Raises ConfigError for an unknown profile/backend, DataError for bad inputs (non-finite returns,
    fewer than 2 bars, missing benchmark for market_neutral, missing asset returns for barbell).
    """
    profile = _enum(Profile, profile, "profile")
    backend = _enum(Backend, backend, "backend")
    config = config or AllocationConfig()
    ids = [a.id for a in request.atoms]
    base = {"profile": profile, "backend": backend}
    if not ids:
        return Allocation(**base, weights={}, status="empty", reason="no atom to allocate: cash",
                          diagnostics={"objective": 0.0, "ex_ante_vol_annual": 0.0})
    if len(request.atom_returns) < 2:
        raise DataError(f"atom_returns: {len(request.atom_returns)} train bar(s); at least 2 are needed")
    returns = clean_returns(request.atom_returns)
    cov = _covariance(request, returns, config, cache)
    if len(ids) == 1:
        var = float(cov[0, 0])
        return Allocation(**base, weights={ids[0]: 1.0}, status="optimal",
                          reason="single atom: weight 1 (no optimisation)",
                          diagnostics={"objective": var, "variance_daily": var,
                                       "ex_ante_vol_annual": ex_ante_volatility(
                                           np.ones(1), cov, request.periods_per_year)})
    inp = pf.Inputs(request, cov, backend, config, cache, clean=returns)
    reason: list[str] = []
    fallback = False
    failed = None
    if float(np.max(np.diag(cov))) <= VARIANCE_FLOOR * (1.0 + 1e-9):
        raw = _fallback(inp)
        reason.append("zero covariance (every atom stream constant): "
                      f"{config.fallback_profile.value} under the caps")
        fallback = True
    else:
        try:
            raw = _PROFILES[profile](inp)
        except SolverError as exc:
            raw = pf.Raw(None, inp.caps(), None, [f"{type(exc).__name__}: {exc}"])
        reason += raw.notes
        fallback = raw.rule_fallback
        if raw.weights is None:
            why = raw.result.reason if raw.result is not None else "; ".join(raw.notes)
            reason.append(f"solver chain failed ({why}): {config.fallback_profile.value} under the caps")
            diag_keep, failed = raw.diagnostics, raw.result
            raw = _fallback(inp)
            raw.diagnostics.update(diag_keep)
            fallback = True
    w = raw.weights
    res = raw.result
    mu = inp.returns().mean(axis=0)  # = covariance.mean_returns, without converting again
    var = float(w @ cov @ w)
    objective = float(mu @ w / np.sqrt(var)) if profile is Profile.MAX_SHARPE and not fallback else var
    bind = binding(w, raw.caps)
    diag = dict(raw.caps.diagnostics)
    diag.update(raw.diagnostics)
    diag.update({"objective": objective, "variance_daily": var,
                 "ex_ante_vol_annual": ex_ante_volatility(w, cov, request.periods_per_year),
                 "cluster_cap_binds": any(b.startswith("cluster_cap:") for b in bind),
                 "covariance": config.covariance, "shrinkage": request.shrinkage})
    if res is not None or failed is not None:
        diag["attempts"] = (res or failed).attempts
    if cache is not None and backend is Backend.NATIVE:
        diag.update({"cache_hits": cache.hits, "cache_misses": cache.misses})
    if fallback:
        status = "fallback"
    elif raw.caps.relaxed:
        status = "relaxed"
        reason.append("relaxed to stay feasible: " + ", ".join(
            f"{k}={v:.6g}" for k, v in raw.caps.relaxed.items()))
    else:
        status = res.status if res is not None else "optimal"
    return Allocation(**base, weights=_to_dict(ids, w), solver=res.solver if res else None,
                      status=status, fallback_used=fallback, reason="; ".join(reason) or None,
                      binding=bind, relaxed=dict(raw.caps.relaxed), diagnostics=diag)


def _fallback(inp: pf.Inputs) -> pf.Raw:
    """The configured fallback profile (EqualWeight or native HRP: no solver needed) under the caps."""
    if inp.config.fallback_profile is Profile.HRP:
        native = pf.Inputs(inp.request, inp.cov, Backend.NATIVE, inp.config, None, clean=inp.clean)
        return pf.hrp_profile(native)
    return pf.equal_weight(inp)
