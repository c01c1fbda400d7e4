"""One function per risk profile: weights over the request's atoms, before the Allocation is built.

Each returns a ``Raw`` outcome: weights (numpy, request order), the caps they satisfy, solver
information and notes. ``engine.allocate`` turns it into a ``contracts.Allocation``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from allocation.barbell import sleeves, split
from allocation.config import AllocationConfig
from allocation.constraints import (Caps, cluster_caps, market_neutral_caps, max_feasible_mean,
                                    project)
from allocation.covariance import atom_betas, clean_returns
from allocation.hrp import hrp_native, hrp_riskfolio
from allocation.native import ProblemCache, solve_native
from allocation.riskfolio_backend import solve_riskfolio
from allocation.solve import SolveResult
from contracts.allocation import AllocationRequest
from contracts.enums import Backend


@dataclass
class Raw:
    """A profile's outcome. ``weights`` None means the convex solve failed (``result`` says why)."""

    weights: Optional[np.ndarray]
    caps: Caps
    result: Optional[SolveResult] = None
    notes: list[str] = field(default_factory=list)
    rule_fallback: bool = False
    diagnostics: dict = field(default_factory=dict)


@dataclass
class Inputs:
    """What every profile reads: the request, its covariance (daily) and the backend settings."""

    request: AllocationRequest
    cov: np.ndarray
    backend: Backend
    config: AllocationConfig
    cache: Optional[ProblemCache]

    @property
    def ids(self) -> list[str]:
        return [a.id for a in self.request.atoms]

    def caps(self, idx: Optional[np.ndarray] = None) -> Caps:
        atoms = self.request.atoms if idx is None else [self.request.atoms[i] for i in idx]
        return cluster_caps([a.id for a in atoms], [a.cluster for a in atoms],
                            self.config.cluster_cap, self.config.atom_cap)

    clean: Optional[np.ndarray] = None  # the request's streams, NaN -> 0, converted once

    def returns(self) -> np.ndarray:
        if self.clean is None:
            self.clean = clean_returns(self.request.atom_returns)
        return self.clean


def solve(inp: Inputs, kind: str, cov: np.ndarray, caps: Caps, returns: np.ndarray,
          mu: Optional[np.ndarray] = None) -> SolveResult:
    """One convex solve on the chosen backend."""
    tol = inp.config.clarabel_tol
    if inp.backend is Backend.NATIVE:
        return solve_native(kind, cov, caps, mu=mu, cache=inp.cache, tol=tol)
    return solve_riskfolio(kind, cov, caps, returns, mu=mu, tol=tol)


def hrp(inp: Inputs, cov: np.ndarray, returns: np.ndarray, ids: list[str]) -> np.ndarray:
    """HRP on the backend, computed on the atoms sorted by id and mapped back.

    HRP's quasi-diagonal order depends on the input order wherever the dendrogram is symmetric
    (scipy puts the lower index on the left), so the same atoms in another order could get other
    weights; sorting by id first makes the profile independent of the request's column order."""
    order = np.argsort(np.array(ids), kind="stable")
    sub = np.ix_(order, order)
    if inp.backend is Backend.NATIVE:
        w_sorted = hrp_native(cov[sub])
    else:
        w_sorted = hrp_riskfolio(cov[sub], returns[:, order])
    w = np.empty_like(w_sorted)
    w[order] = w_sorted
    return w


def equal_weight(inp: Inputs) -> Raw:
    """1/N, then the cap projection (water-filling when a cap binds)."""
    caps = inp.caps()
    n = len(inp.ids)
    return Raw(project(np.full(n, 1.0 / n), caps), caps)


def hrp_profile(inp: Inputs) -> Raw:
    """HRP on the backend, then the cap projection; the uncapped weights go to diagnostics."""
    caps = inp.caps()
    w0 = hrp(inp, inp.cov, inp.returns(), inp.ids)
    return Raw(project(w0, caps), caps, diagnostics={"hrp_uncapped": dict(zip(inp.ids, w0.tolist()))})


def min_variance(inp: Inputs, caps: Optional[Caps] = None) -> Raw:
    caps = inp.caps() if caps is None else caps
    res = solve(inp, "min_variance", inp.cov, caps, inp.returns())
    return Raw(res.weights, caps, res)


def max_sharpe(inp: Inputs) -> Raw:
    """Charnes-Cooper max Sharpe (rf = 0 daily) on the sample means. Documented rule: when no
    portfolio admitted by the caps has a positive mean (checked by an LP, the same for both backends;
    e.g. every atom's mean return is <= rf = 0), no portfolio has a positive Sharpe ratio and the
    transformed problem is infeasible; the min-variance portfolio under the same caps is returned,
    flagged as a fallback."""
    caps = inp.caps()
    mu = inp.returns().mean(axis=0)  # = covariance.mean_returns, without converting again
    best = max_feasible_mean(mu, caps)
    note = f"no admissible portfolio has a positive mean return (max {best:.3g}/day)"
    if best > 0:
        res = solve(inp, "max_sharpe", inp.cov, caps, inp.returns(), mu=mu)
        if res.status != "infeasible":
            return Raw(res.weights, caps, res, diagnostics={"max_feasible_mean": best})
    out = min_variance(inp, caps)
    out.notes.append(f"max_sharpe undefined ({note}): min-variance portfolio under the same caps")
    out.rule_fallback = True
    return out


def market_neutral(inp: Inputs) -> Raw:
    """Min variance under the caps, ``|sum w_a beta_a| <= beta_cap`` and the LONG/SHORT share caps
    (relaxed as ``constraints.market_neutral_caps`` documents)."""
    req, cfg = inp.request, inp.config
    beta = atom_betas(req.atom_returns, req.benchmark_returns)
    signs = np.array([a.sign for a in req.atoms], dtype=float)
    caps = market_neutral_caps(inp.caps(), beta, signs, cfg.beta_cap, cfg.long_share_cap,
                               cfg.short_share_cap)
    out = min_variance(inp, caps)
    out.diagnostics["betas"] = dict(zip(inp.ids, beta.tolist()))
    if out.weights is not None:
        w = out.weights
        out.diagnostics.update({"beta_p": float(beta @ w), "long_share": float(w[signs > 0].sum()),
                                "short_share": float(w[signs < 0].sum())})
    return out


def barbell(inp: Inputs) -> Raw:
    """Core (``barbell_core`` share, HRP over the Core atoms) + Aggressor (the rest, equal weight),
    under the cluster/atom caps over the allocated atoms (k = their clusters).

    Rules: with no Core atom (no LONG atom), the Core is the min-variance portfolio (backend, no caps)
    of the non-Aggressor atoms; with no atom left for one sleeve, the other sleeve takes all the weight
    (the split is then not held: recorded as relaxed). The caps are mandatory: the split is kept
    whenever some allocation under the caps holds it, else it moves only as far as the caps force
    (``barbell.split``), recorded as ``relaxed['barbell_core_share']`` (the realised Core share) with
    the reason; diagnostics ``core_share``/``aggressor_share`` (realised), ``core_share_target``,
    ``core_share_min``/``core_share_max`` (the feasible interval) and ``split_method``."""
    req, cfg = inp.request, inp.config
    ids = inp.ids
    core, aggr, af = sleeves(req.atoms, req.asset_returns, req.periods_per_year)
    notes: list[str] = []
    pos = {a: i for i, a in enumerate(ids)}
    returns = inp.returns()
    core_idx = np.array([pos[a] for a in core], dtype=int)
    result = None
    core_w = np.zeros(0)
    if len(core_idx):
        sub = np.ix_(core_idx, core_idx)
        core_w = hrp(inp, inp.cov[sub], returns[:, core_idx], [ids[i] for i in core_idx])
    else:
        rest = np.array([i for i, a in enumerate(ids) if a not in set(aggr)], dtype=int)
        core_idx = rest
        if len(rest):
            notes.append("no LONG atom for the Core: Core = min-variance of the non-Aggressor atoms")
            free = Caps(np.zeros((0, len(rest))), np.zeros(0), [], np.ones(len(rest)), [])
            result = solve(inp, "min_variance", inp.cov[np.ix_(rest, rest)], free, returns[:, rest])
            if result.weights is None:
                return Raw(None, inp.caps(), result, notes)
            # a min-variance weight below 1e-9 is the solver's zero (Clarabel's tolerance 1e-10):
            # such an atom is not allocated (it would count as a cluster and take a cap's room)
            core_w = np.where(result.weights < 1e-9, 0.0, result.weights)
    aggr_idx = np.array([pos[a] for a in aggr], dtype=int)
    target = cfg.barbell_core
    # the sleeves' relative weights (each summing to 1); atoms with zero weight are not allocated
    prior = np.zeros(len(ids))
    is_core = np.zeros(len(ids), dtype=bool)
    if len(core_idx):
        prior[core_idx] = core_w / core_w.sum()
        is_core[core_idx] = True
    if len(aggr_idx):
        prior[aggr_idx] = 1.0 / len(aggr_idx)
    alloc = np.nonzero(prior > 0)[0]
    caps_sub = inp.caps(alloc)
    relaxed = dict(caps_sub.relaxed)
    diag = {"core": [ids[i] for i in core_idx], "aggressor": list(aggr), "antifragility": af,
            "core_share_target": target}
    final = np.zeros(len(ids))
    has_core, has_aggr = bool(is_core[alloc].any()), bool((~is_core[alloc]).any())
    if has_core and has_aggr:
        sp = split(prior[alloc], is_core[alloc], caps_sub, target, cfg.clarabel_tol)
        final[alloc] = sp.weights
        share = sp.core_share
        diag.update({"core_share_min": sp.core_min, "core_share_max": sp.core_max,
                     "split_method": sp.method})
        if sp.solver:
            diag["split_solver"] = sp.solver
        if sp.core_share != target:
            side = (f"the Core's clusters hold at most {sp.core_max:.6g}" if sp.core_share < target
                    else f"the Aggressor's clusters hold at most {1.0 - sp.core_min:.6g}")
            notes.append(f"Core/Aggressor split {share:.6g}/{1.0 - share:.6g} instead of "
                         f"{target:.6g}/{1.0 - target:.6g}: under the cluster cap "
                         f"{caps_sub.diagnostics['effective_cluster_cap']:.6g}, {side}")
    else:
        share = 1.0 if has_core else 0.0
        final[alloc] = project(prior[alloc], caps_sub)
        diag["split_method"] = "one_sleeve"
        if share != target:
            notes.append(f"one sleeve is empty: the {'Core' if share else 'Aggressor'} takes all the weight "
                         f"(split {share:.6g}/{1.0 - share:.6g} instead of {target:.6g}/{1.0 - target:.6g})")
    if share != target:
        relaxed["barbell_core_share"] = share
    full_caps = Caps(_lift(caps_sub.A, alloc, len(ids)), caps_sub.b, caps_sub.labels,
                     _lift_ub(caps_sub.ub, alloc, len(ids)),
                     [f"atom_cap:{a}" for a in ids], relaxed, caps_sub.diagnostics)
    diag.update({"core_share": float(final[is_core].sum()), "aggressor_share": float(final[~is_core].sum())})
    return Raw(final, full_caps, result, notes, diagnostics=diag)


def _lift(A: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((A.shape[0], n))
    out[:, idx] = A
    return out


def _lift_ub(ub: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    out = np.ones(n)
    out[idx] = ub
    return out
