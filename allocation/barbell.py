"""Barbell sleeves (DESIGN section 4): which atoms form the Core and which the Aggressor.

- **Antifragility** of a physical asset on its own raw train returns (SELECTION_SPEC section 2):
  ``AF = (minmax(skew) + minmax(tail_gain)) * min(1, n_valid / P)``, min-max across the assets of the
  LONG atoms (NaN skipped; skew biased, 0 with <= 2 values or a constant series; tail_gain = mean of
  the returns strictly above their 95% quantile (linear interpolation), 0 when none is; a min-max of
  a constant column is 0).
- **Core**: the LONG atoms whose asset is in the top half by AF: the ``ceil(m/2)`` best of the m
  assets (ties by symbol); atoms are mapped back by their ``symbol`` field, never by the id.
- **Aggressor**: among the other atoms, the ``max(1, round(0.2 n))`` (n = all atoms; round half up)
  highest-conviction ones (conviction = the first scorer's value in ``atom.conviction``, i.e. the
  champion's; a missing value ranks last; ties by id), fewer if fewer remain.
- **Split under the caps** (``split``; issue 19): the cluster cap is mandatory and the split is the
  profile's, so the weights stay as close to the target split (Core ``s* = 0.9``) as the caps allow.
  With per-cluster capacities ``U_S,j = min(b_j, sum of the atom caps of sleeve S in cluster j)``, a
  Core share ``s`` is feasible iff ``max(0, 1 - sum_j U_G,j) <= s <= min(1, sum_j U_C,j)`` (a
  max-flow/min-cut argument: the caps' total capacity is >= 1 by ``cluster_caps``). The realised share
  is ``s*`` clipped to that interval: the split moves only when no feasible allocation holds it, and
  only as far as the caps force. Then each sleeve is water-filled within its own budget
  (``constraints.water_fill``: proportions inside the sleeve kept wherever no cap binds, no atom above
  its cap; its levels are exact to ~1e-13 relative however widely the prior spreads, e.g. a
  min-variance Core weight of 1e-9 next to 0.5, so a budget equal to the sleeve's capacity, as
  when the split sits exactly on ``core_max``, fills every atom to its effective cap instead of
  looking short of it) in this order: (1) a sleeve at its capacity first (when the split moved),
  the other in the room left; (2) else both sleeves independently when the clusters they share do not overflow;
  (3) else the Core first (the 90% sleeve keeps its HRP shape) and the Aggressor in the room left,
  or (4) the Aggressor first; (5) else the weighted least-squares projection
  ``min sum_i (x_i - t_i)^2 / t_i`` onto the caps with both sleeve sums fixed (t = the sleeve
  targets; Clarabel), whose KKT form is the same water-filling with one level per sleeve.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from allocation.constraints import Caps, water_fill
from contracts.atom import StrategyAtom
from contracts.enums import Direction
from contracts.errors import DataError, SolverError

#: Sleeve sums and cluster caps of the split are checked to this (the least-squares path's Clarabel
#: tolerance is 1e-10; the water-filling paths are exact up to float summation).
SPLIT_TOL = 1e-9


def _minmax(v: np.ndarray) -> np.ndarray:
    lo, hi = np.min(v), np.max(v)
    return np.zeros_like(v) if hi - lo <= 0 else (v - lo) / (hi - lo)


def _skew_tail(x: np.ndarray) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    skew = 0.0
    if len(x) > 2:
        c = x - x.mean()
        m2 = float(np.mean(c ** 2))
        if m2 > 0:
            skew = float(np.mean(c ** 3)) / m2 ** 1.5
    tail = 0.0
    if len(x):
        above = x[x > np.quantile(x, 0.95)]
        tail = float(above.mean()) if len(above) else 0.0
    return skew, tail


def _skew_tail_columns(x: np.ndarray) -> np.ndarray:
    """``[_skew_tail(x[:, j]) for j]`` as an (n, 2) array. The columns without a non-finite value
    are taken together, one row each of a (columns, T) array: numpy's means and quantiles along a
    contiguous row are the reductions ``_skew_tail`` runs on the column's contiguous copy (pairwise
    sums over T values, the same partition and interpolation), from the same elementwise values, so
    the numbers are the same bits (``tests/allocation/test_barbell.py``); the Python-float steps
    (``m2 ** 1.5``, the tail's mean over its own values) stay per column. Others: ``_skew_tail``."""
    T, n = x.shape
    out = np.zeros((n, 2))
    full = np.isfinite(x).all(axis=0) if T > 2 else np.zeros(n, dtype=bool)
    for j in np.flatnonzero(~full):
        out[j] = _skew_tail(x[:, j])
    idx = np.flatnonzero(full)
    if len(idx):
        xt = np.ascontiguousarray(x[:, idx].T)
        c = xt - xt.mean(axis=1)[:, None]
        m2 = np.mean(c ** 2, axis=1).tolist()
        m3 = np.mean(c ** 3, axis=1).tolist()
        q = np.quantile(xt, 0.95, axis=1)
        for r, j in enumerate(idx.tolist()):
            skew = m3[r] / m2[r] ** 1.5 if m2[r] > 0 else 0.0
            row = xt[r]
            above = row[row > q[r]]
            out[j] = (skew, float(above.mean()) if len(above) else 0.0)
    return out


def antifragility(asset_returns: pd.DataFrame, periods_per_year: int) -> pd.Series:
    """AF per column of raw daily simple returns (see module docstring); index = column names."""
    cols = list(asset_returns.columns)
    if not cols:
        return pd.Series(dtype=float)
    return pd.Series(_antifragility_array(asset_returns.to_numpy(dtype=np.float64), periods_per_year),
                     index=cols, dtype=float)


def _antifragility_array(x: np.ndarray, periods_per_year: int) -> np.ndarray:
    """``antifragility``'s values for the columns of ``x`` (bars x columns, at least one column)."""
    st = _skew_tail_columns(x)
    n_valid = np.isfinite(x).sum(axis=0)
    return (_minmax(st[:, 0]) + _minmax(st[:, 1])) * np.minimum(1.0, n_valid / periods_per_year)


def champion_conviction(atom: StrategyAtom) -> float:
    """The first scorer's conviction (champion); -inf when the atom has none."""
    for v in atom.conviction.values():
        return float(v) if math.isfinite(v) else -math.inf
    return -math.inf


def sleeves(atoms: list[StrategyAtom], asset_returns: pd.DataFrame,
            periods_per_year: int) -> tuple[list[str], list[str], dict[str, float]]:
    """(core atom ids, aggressor atom ids, antifragility of the LONG atoms' assets)."""
    longs = [a for a in atoms if a.direction is Direction.LONG]
    symbols = sorted({a.symbol for a in longs})
    missing = [s for s in symbols if s not in getattr(asset_returns, "columns", [])]
    if missing:
        raise DataError(f"asset_returns: no raw returns for symbol(s) {missing[:5]} of LONG atoms")
    # ``antifragility(asset_returns[symbols])`` by column position (each column's numbers are its
    # own: the same values as on the sub-frame), read as a dict
    af = dict(zip(symbols, _antifragility_array(
        asset_returns.to_numpy(dtype=np.float64)[:, asset_returns.columns.get_indexer(symbols)],
        periods_per_year))) if symbols else {}
    ranked = sorted(symbols, key=lambda s: (-af[s], s))
    top = set(ranked[: math.ceil(len(ranked) / 2)])
    core = [a.id for a in longs if a.symbol in top]
    others = sorted((a for a in atoms if a.id not in set(core)),
                    key=lambda a: (-champion_conviction(a), a.id))
    n_aggr = max(1, math.floor(0.2 * len(atoms) + 0.5))
    aggressor = [a.id for a in others[:n_aggr]]
    return core, aggressor, {s: float(af[s]) for s in symbols}


@dataclass
class Split:
    """The Barbell's weights under the caps (over the atoms given to ``split``) and how they were
    found. ``core_share``: the Core share decided (the target itself whenever it is feasible, so
    that "the split held" is an exact comparison; the weights' Core sum equals it up to float
    summation); ``core_min``/``core_max``: its feasible interval; ``method``: which step of the
    module docstring's order answered."""

    weights: np.ndarray
    core_share: float
    core_min: float
    core_max: float
    method: str
    solver: Optional[str] = None


def split(prior: np.ndarray, is_core: np.ndarray, caps: Caps, target: float,
          tol: float = 1e-10) -> Split:
    """Weights for Core (``is_core``) and Aggressor atoms: each sleeve's ``prior`` (its weights
    relative to the sleeve, > 0) scaled to the sleeve's share, under ``caps`` (cluster rows and atom
    caps over these atoms), Core share ``target`` kept when feasible (module docstring). Both sleeves
    must be non-empty. SolverError when the caps cannot hold the total or the last step fails."""
    prior = np.asarray(prior, dtype=np.float64)
    core = np.asarray(is_core, dtype=bool)
    aggr = ~core
    member = caps.A > 0.5
    b, ub = np.asarray(caps.b, dtype=np.float64), np.asarray(caps.ub, dtype=np.float64)

    def capacity(mask: np.ndarray) -> np.ndarray:
        return np.minimum(b, member[:, mask] @ ub[mask])

    s_hi = min(1.0, float(capacity(core).sum()))
    s_lo = max(0.0, 1.0 - float(capacity(aggr).sum()))
    if s_lo > s_hi + SPLIT_TOL:
        raise SolverError(f"barbell: the caps hold no split (Core share in [{s_lo:.6g}, {s_hi:.6g}])")
    if s_lo - 1e-12 <= target <= s_hi + 1e-12:
        s = target
    else:
        s = min(max(target, s_lo), s_hi)

    def fill(mask: np.ndarray, total: float, room: np.ndarray) -> np.ndarray:
        x = np.zeros(len(prior))
        x[mask] = water_fill(prior[mask], member[:, mask], room, ub[mask], total)
        return x

    def first_then(first: np.ndarray, budget: float) -> np.ndarray:
        x = fill(first, budget, b)
        room = np.maximum(b - member.astype(np.float64) @ x, 0.0)
        return x + fill(~first, 1.0 - budget, room)

    def ok(x: np.ndarray) -> bool:
        return (np.all(member.astype(np.float64) @ x <= b + SPLIT_TOL) and np.all(x <= ub + SPLIT_TOL)
                and abs(x[core].sum() - s) <= SPLIT_TOL and abs(x[aggr].sum() - (1.0 - s)) <= SPLIT_TOL)

    def done(x: np.ndarray, method: str, solver: Optional[str] = None) -> Split:
        return Split(x, float(s), s_lo, s_hi, method, solver)

    if s != target:  # one sleeve is at its capacity: it goes first, the other in the room left
        at_core = s < target
        x = first_then(core, s) if at_core else first_then(aggr, 1.0 - s)
        if not ok(x):
            raise SolverError("barbell: the split at a sleeve's capacity breaks a cap or a share")
        return done(x, "core_at_capacity" if at_core else "aggressor_at_capacity")
    x = fill(core, s, b) + fill(aggr, 1.0 - s, b)
    if ok(x):
        return done(x, "sleeves")
    for first, budget, method in ((core, s, "core_first"), (aggr, 1.0 - s, "aggressor_first")):
        try:
            x = first_then(first, budget)
        except SolverError:
            continue
        if ok(x):
            return done(x, method)
    x, solver = _least_squares(prior, core, member, b, ub, s, tol)
    if not ok(x):
        raise SolverError("barbell: the least-squares split breaks a cap or a sleeve share")
    return done(x, "least_squares", solver)


def _least_squares(prior: np.ndarray, core: np.ndarray, member: np.ndarray, b: np.ndarray,
                   ub: np.ndarray, s: float, tol: float) -> tuple[np.ndarray, str]:
    """``min sum (x - t)^2 / t`` over the caps with the sleeve sums fixed (t: the sleeve targets),
    by Clarabel (then ECOS); the sleeves are rescaled to their exact shares (a change below the
    solver tolerance)."""
    import cvxpy as cp  # only this rare path needs it

    from allocation.solve import solver_options, solver_warnings
    t = np.where(core, s, 1.0 - s) * prior / np.where(core, prior[core].sum(), prior[~core].sum())
    x = cp.Variable(len(t), nonneg=True)
    cons = [cp.sum(x[np.nonzero(core)[0]]) == s, cp.sum(x[np.nonzero(~core)[0]]) == 1.0 - s,
            x <= ub]
    if len(b):
        cons.append(member.astype(np.float64) @ x <= b)
    prob = cp.Problem(cp.Minimize(cp.sum(cp.multiply(1.0 / t, cp.square(x - t)))), cons)
    reasons = []
    for solver in ("CLARABEL", "ECOS"):
        try:
            with solver_warnings():
                prob.solve(solver=solver, **solver_options(solver, tol, len(t)))
        except cp.error.SolverError as exc:
            reasons.append(f"{solver}: {exc}")
            continue
        if prob.status == cp.OPTIMAL and x.value is not None and np.all(np.isfinite(x.value)):
            v = np.clip(np.asarray(x.value, dtype=np.float64), 0.0, ub)
            v[v < 1e-12] = 0.0
            v[core] *= s / v[core].sum() if v[core].sum() > 0 else 0.0
            v[~core] *= (1.0 - s) / v[~core].sum() if v[~core].sum() > 0 else 0.0
            return v, solver
        reasons.append(f"{solver}: {prob.status}")
    raise SolverError("barbell least-squares split failed: " + "; ".join(reasons))
