"""Linear caps shared by every profile and backend: cluster caps, atom caps, market-neutral rows.

All constraints are written ``A @ w <= b`` over non-negative weights summing to 1 (atom space: SHORT
atoms carry the short side). Rules (documented, recorded in the Allocation):

- **Cluster cap**: with ``k`` distinct clusters among the atoms allocated, each cluster's summed weight is
  at most ``c = max(cluster_cap, 1/k)``, which is always feasible.
- **Atom cap** (optional): ``w_a <= atom_cap``. If the atom and cluster caps together cannot reach a
  total of 1 (``sum_j min(c, n_j * atom_cap) < 1``), the atom cap is relaxed to the smallest value that
  can (found by bisection), recorded in ``relaxed['atom_cap']``.
- **Projection** (HRP, EqualWeight, Barbell: the profiles whose weights are not solved under the caps):
  water-filling ``x_i = min(ub_i, sigma_c w_i, lambda w_i)`` (see ``project``): every atom keeps a
  common multiple of its weight unless its atom cap or its cluster's cap binds; relative weights inside
  a cluster are kept; from equal weights this is classic water-filling.
- **Market neutral**: LONG share <= long cap, SHORT share <= short cap, ``|beta . w| <= beta_cap``. If
  the share caps are infeasible (e.g. no SHORT atom), both are raised by the smallest amount ``t`` that
  makes them feasible (an LP); then the smallest feasible ``|beta . w|`` is found by an LP and, when it
  exceeds ``beta_cap``, the beta cap is relaxed to it (plus ``1e-9`` absolute margin). Both LPs use
  scipy's HiGHS, so both backends see the same relaxed constraint set.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np
from allocation.highs import lp_min
from contracts.errors import SolverError

#: A constraint binds when its slack is below this (weights are fractions; solver tolerance ~1e-10).
BIND_TOL = 1e-7
#: Absolute margin added to a relaxed bound so that the relaxed problem is strictly feasible.
RELAX_MARGIN = 1e-9


@dataclass
class Caps:
    """``A @ w <= b`` rows with labels, plus atom upper bounds ``w <= ub``; N atoms."""

    A: np.ndarray
    b: np.ndarray
    labels: list[str]
    ub: np.ndarray
    ub_label: list[str]
    relaxed: dict[str, float] = field(default_factory=dict)
    diagnostics: dict[str, float] = field(default_factory=dict)

    def add_rows(self, rows: np.ndarray, bounds: np.ndarray, labels: list[str]) -> "Caps":
        return Caps(np.vstack([self.A, rows]), np.concatenate([self.b, bounds]), self.labels + labels,
                    self.ub, self.ub_label, dict(self.relaxed), dict(self.diagnostics))


def effective_cluster_cap(cluster_cap: float, n_clusters: int) -> float:
    """``max(cluster_cap, 1/k)`` (1.0 when k == 0)."""
    return 1.0 if n_clusters <= 0 else max(cluster_cap, 1.0 / n_clusters)


def _min_feasible_atom_cap(counts: np.ndarray, cap: float) -> float:
    """Smallest x with ``sum_j min(cap, n_j x) >= 1`` (bisection; the sum is increasing in x)."""
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.minimum(cap, counts * mid).sum() >= 1.0:
            hi = mid
        else:
            lo = mid
    return hi


def cluster_caps(ids: list[str], clusters: list[int], cluster_cap: float,
                 atom_cap: float | None) -> Caps:
    """Cluster-cap rows (one per cluster) and atom bounds for the atoms ``ids`` with ``clusters``."""
    n = len(ids)
    labels_c = sorted(set(clusters))
    k = len(labels_c)
    cap = effective_cluster_cap(cluster_cap, k)
    A = (np.array(labels_c).reshape(k, 1) == np.array(clusters).reshape(1, n)).astype(np.float64)
    counts = A.sum(axis=1)
    relaxed: dict[str, float] = {}
    ub = np.ones(n)
    if atom_cap is not None:
        a_cap = atom_cap
        if np.minimum(cap, counts * atom_cap).sum() < 1.0 - 1e-12:
            a_cap = _min_feasible_atom_cap(counts, cap) + RELAX_MARGIN
            relaxed["atom_cap"] = a_cap
        ub = np.full(n, min(a_cap, 1.0))
    diag = {"effective_cluster_cap": cap, "n_clusters": float(k), "nominal_cluster_cap": cluster_cap}
    return Caps(A, np.full(k, cap), [f"cluster_cap:{j}" for j in labels_c], ub,
                [f"atom_cap:{i}" for i in ids], relaxed, diag)


#: ``_level`` keeps the running difference ``sum w - w_1 - ... - w_k`` (the weight not yet capped)
#: while its rounding-error estimate stays below this fraction of it, else sums the remaining weights
#: afresh (see ``_level``).
LEVEL_REL_ERR = 1e-13


def _level(w: np.ndarray, ub: np.ndarray, target: float) -> float:
    """Smallest s >= 0 with ``sum_i min(ub_i, s w_i) >= target`` (exact: the sum is piecewise
    linear in s); ``inf`` when even ``sum ub`` over the atoms with ``w > 0`` falls short.

    Precision: the weight of the atoms not yet capped is the running difference ``sum w - w_1 -
    ... - w_k`` only while an estimate of its rounding error (``log2(2n) eps`` of the sum it started
    from, pairwise summation, plus ``eps`` of every difference) is at most ``LEVEL_REL_ERR`` of its
    value; beyond that it is the sum of the remaining weights (all >= 0: no cancellation), and the
    estimate restarts from that sum. With weights spanning many orders of magnitude (a min-variance
    prior holds 1e-9 next to 0.5) the difference alone cancelled catastrophically: the level was off
    by up to ~1e-5 relative, and a budget equal to the caps' capacity looked short of it (the
    Barbell then fell back to equal weight). While the estimate stays small the arithmetic (hence
    every result) is the one of the plain running difference."""
    pos = w > 0
    if ub[pos].sum() < target - 1e-15:
        return np.inf
    r = ub[pos] / w[pos]
    order = np.argsort(r, kind="stable")
    r, u, ww = r[order], ub[pos][order], w[pos][order]
    eps = sys.float_info.epsilon
    capped, rest = 0.0, float(ww.sum())
    err = math.log2(2 * len(ww)) * eps * rest  # ~ |rest - exact sum of the weights not yet capped|
    # the loop runs on Python floats (the same IEEE doubles as numpy's scalars, faster one by one)
    for k, (rk, uk, wk) in enumerate(zip(r.tolist(), u.tolist(), ww.tolist())):
        if err > LEVEL_REL_ERR * rest:
            rest = float(ww[k:].sum())
            err = math.log2(2 * (len(ww) - k)) * eps * rest
        s = (target - capped) / rest if rest > 0 else np.inf
        if s <= rk:
            return s
        capped += uk
        rest -= wk
        err += eps * abs(rest)
    return float(r[-1])


def project(w: np.ndarray, caps: Caps) -> np.ndarray:
    """Project non-negative weights summing to 1 onto the cluster and atom caps by water-filling.

    The result is ``x_i = min(ub_i, sigma_c w_i, lambda w_i)``: every atom keeps a common scale
    ``lambda`` of its weight unless its atom cap or its cluster's cap binds; ``sigma_c`` is the scale
    at which cluster c reaches its cap, ``lambda`` the one at which the total reaches 1. Relative
    weights inside a cluster are kept wherever no atom cap binds; from equal weights this is the
    classic water-filling. Uses the cluster rows (0/1 membership) of ``caps`` and ``ub``. Atoms with
    zero weight stay at zero; SolverError when the caps cannot hold the total.

    When no cap is exceeded (``w <= ub`` and every cluster sum ``<= b``), every scale above is at
    least 1 and ``lambda = 1``, so the result is ``w`` itself: returned without the water-filling.
    """
    w = np.array(w, dtype=np.float64)
    w = w / w.sum()
    member = caps.A > 0.5
    if np.all(w <= caps.ub) and np.all(member.astype(np.float64) @ w <= caps.b):
        return w
    eff = np.array(caps.ub, dtype=np.float64)
    for j in range(member.shape[0]):
        m = member[j]
        sigma = _level(w[m], eff[m], float(caps.b[j]))
        if np.isfinite(sigma):
            eff[m] = np.minimum(eff[m], sigma * w[m])
    lam = _level(w, eff, 1.0)
    if not np.isfinite(lam):
        cap = float(eff[w > 0].sum())
        raise SolverError(f"cap projection: the caps hold only {cap!r} of the weight "
                          f"(short by {1.0 - cap:.3g})")
    x = np.minimum(eff, lam * w)
    return x / x.sum()


def water_fill(w: np.ndarray, member: np.ndarray, b: np.ndarray, ub: np.ndarray,
               total: float) -> np.ndarray:
    """``project``'s water-filling with explicit caps and a budget: non-negative ``x`` summing to
    ``total`` with ``x_i = min(ub_i, sigma_c w_i, lambda w_i)`` (cluster rows ``member`` (k x n, bool)
    with caps ``b``; atom caps ``ub``). Atoms with ``w = 0`` stay at 0. A budget equal to the caps'
    capacity (up to 1e-12 relative: float summation) fills every atom to its effective cap;
    SolverError when the caps hold less (the message gives the capacity to round-trip digits and
    the shortfall). The levels are exact to ~1e-13 relative however widely ``w`` spreads (``_level``).

    Used by the Barbell, whose sleeves each have a budget (``barbell.split``)."""
    w = np.array(w, dtype=np.float64)
    if total <= 0.0:
        return np.zeros_like(w)
    w = w / w.sum() * total
    if np.all(w <= ub) and np.all(member.astype(np.float64) @ w <= b):
        return w
    eff = np.array(ub, dtype=np.float64)
    for j in range(member.shape[0]):
        m = member[j] & (w > 0)
        if not m.any():
            continue
        sigma = _level(w[m], eff[m], float(b[j]))
        if np.isfinite(sigma):
            eff[m] = np.minimum(eff[m], sigma * w[m])
    eff[w <= 0] = 0.0
    lam = _level(w, eff, total)
    if np.isfinite(lam):
        x = np.minimum(eff, lam * w)
    elif eff.sum() >= total * (1.0 - 1e-12):
        x = eff
    else:
        cap = float(eff.sum())  # round-trip digits: a shortfall of 1e-9 must not print as "0.9 of 0.9"
        raise SolverError(f"cap projection: the caps hold only {cap!r} of a budget of {total!r} "
                          f"(short by {total - cap:.3g})")
    # the float error of lambda (large when weights span many orders of magnitude) is taken up by
    # the atoms below their effective cap, so that no capped atom or full cluster is pushed over
    free = x < eff
    rest = total - float(x[~free].sum())
    if free.any() and x[free].sum() > 0 and rest > 0:
        x[free] *= rest / x[free].sum()
    else:
        x *= total / x.sum()
    return x


def binding(w: np.ndarray, caps: Caps) -> list[str]:
    """Labels of the rows and atom bounds whose slack is below BIND_TOL (unit rows only: ub < 1)."""
    out = [lab for lab, s in zip(caps.labels, caps.b - caps.A @ w) if s <= BIND_TOL]
    out += [lab for lab, u, x in zip(caps.ub_label, caps.ub, w) if u < 1.0 and u - x <= BIND_TOL]
    return out


def _lp_min(c: np.ndarray, A_ub: np.ndarray | None, b_ub: np.ndarray | None, A_eq: np.ndarray,
            b_eq: np.ndarray,
            bounds: list[tuple[float, float | None]], what: str) -> tuple[float, np.ndarray]:
    """``linprog(..., method="highs")``'s optimum, bit for bit, without its per-call overhead
    (``allocation.highs.lp_min``); SolverError naming ``what`` when it is not optimal."""
    lb = np.array([lo for lo, _ in bounds], dtype=np.float64)
    ub = np.array([np.inf if hi is None else hi for _, hi in bounds], dtype=np.float64)
    res = lp_min(c, A_ub, b_ub, A_eq, b_eq, lb, ub)
    if res.status != 0:
        raise SolverError(f"{what}: HiGHS status {res.status} ({res.message})")
    return float(res.fun), res.x


def max_feasible_mean(mu: np.ndarray, caps: Caps) -> float:
    """Largest ``mu . w`` over the caps (``A w <= b``, ``0 <= w <= ub``, ``sum w = 1``), by HiGHS."""
    n = len(mu)
    best, _ = _lp_min(-np.asarray(mu, dtype=np.float64), caps.A if len(caps.b) else None,
                      caps.b if len(caps.b) else None, np.ones((1, n)), np.ones(1),
                      [(0.0, float(u)) for u in caps.ub], "max-Sharpe feasibility")
    return -best


def market_neutral_caps(caps: Caps, beta: np.ndarray, signs: np.ndarray, beta_cap: float,
                        long_share_cap: float, short_share_cap: float) -> Caps:
    """Add the market-neutral rows to ``caps``, relaxing them as the module docstring says."""
    n = len(beta)
    long_row = (signs > 0).astype(float)
    short_row = (signs < 0).astype(float)
    relaxed = dict(caps.relaxed)
    ones = np.ones((1, n))
    # LP 1 over (w, t): min t  s.t. shares <= cap + t, cluster rows, 0 <= w <= ub, sum w = 1, t >= 0.
    A1 = np.vstack([np.hstack([long_row[None], -np.ones((1, 1))]),
                    np.hstack([short_row[None], -np.ones((1, 1))]),
                    np.hstack([caps.A, np.zeros((len(caps.b), 1))])])
    b1 = np.concatenate([[long_share_cap, short_share_cap], caps.b])
    bounds = [(0.0, float(u)) for u in caps.ub]
    t, _ = _lp_min(np.r_[np.zeros(n), 1.0], A1, b1, np.hstack([ones, [[0.0]]]), np.ones(1),
                   bounds + [(0.0, None)], "market-neutral share caps")
    lcap, scap = long_share_cap, short_share_cap
    if t > 1e-12:
        lcap, scap = lcap + t + RELAX_MARGIN, scap + t + RELAX_MARGIN
        relaxed["long_share_cap"], relaxed["short_share_cap"] = lcap, scap
    # LP 2 over (w, u): min u  s.t. |beta . w| <= u, shares, cluster rows, bounds, sum w = 1.
    A2 = np.vstack([np.hstack([beta[None], -np.ones((1, 1))]),
                    np.hstack([-beta[None], -np.ones((1, 1))]),
                    np.hstack([long_row[None], [[0.0]]]),
                    np.hstack([short_row[None], [[0.0]]]),
                    np.hstack([caps.A, np.zeros((len(caps.b), 1))])])
    b2 = np.concatenate([[0.0, 0.0, lcap, scap], caps.b])
    u, _ = _lp_min(np.r_[np.zeros(n), 1.0], A2, b2, np.hstack([ones, [[0.0]]]), np.ones(1),
                   bounds + [(0.0, None)], "market-neutral minimum |beta|")
    bcap = beta_cap
    if u > beta_cap:
        bcap = u * (1.0 + 1e-6) + RELAX_MARGIN
        relaxed["beta_cap"] = bcap
    out = caps.add_rows(np.vstack([beta, -beta, long_row, short_row]),
                        np.array([bcap, bcap, lcap, scap]),
                        ["beta_cap:upper", "beta_cap:lower", "long_share_cap", "short_share_cap"])
    out.relaxed = relaxed
    out.diagnostics.update({"min_abs_beta": u, "beta_cap_used": bcap})
    return out
