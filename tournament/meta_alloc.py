"""The meta allocator: sleeve weights at one meta cut-off from the sleeves' out-of-sample returns only.

``meta_weights(series, cutoff, ...)`` reads, per sleeve, the returns dated at or before ``cutoff`` (the
close of the cut-off day: realised before the decision, which fills at ``cutoff + gap``); nothing after
it. A sleeve with fewer than ``min_history`` such returns gets weight 0. The others are aligned with
``meta_align.carry_align`` over the last ``train_window`` meta-calendar days up to the cut-off, and:

- ``equal_weight``: ``1 / n``;
- ``inverse_vol``: ``w_i = (1 / sigma_i) / sum_j (1 / sigma_j)``, ``sigma_i`` the square root of the
  covariance diagonal (sample, ddof=1, or Ledoit-Wolf);
- ``hrp``: ``allocation.hrp.hrp_native`` of that covariance (single linkage on
  ``sqrt(0.5 (1 - rho))``, quasi-diagonal order, recursive bisection; no caps);
- ``min_variance``: long-only minimum variance, ``allocation.native.solve_native`` (no caps).

One eligible sleeve gets weight 1; none: the window is held in cash. Weights are fractions of the meta
portfolio's value, >= 0, sum 1 (or 0 in cash).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocation.covariance import ledoit_wolf_covariance
from allocation.hrp import hrp_native
from tournament.meta_align import carry_align


@dataclass(frozen=True)
class MetaDecision:
    """One meta cut-off: weights per sleeve (all sleeves, 0 when ineligible) and what was read."""

    weights: dict[str, float]
    eligible: tuple[str, ...]
    n_history: dict[str, int]   # OOS returns at or before the cut-off, per sleeve
    n_obs: int                  # common-grid observations the estimator read (0: none needed)


def sleeve_covariance(x: np.ndarray, method: str) -> np.ndarray:
    """Daily covariance of the aligned sleeve returns ``x`` (T x N): ``sample`` (ddof=1) or
    ``ledoit_wolf``."""
    if method == "ledoit_wolf":
        return ledoit_wolf_covariance(x)
    return np.atleast_2d(np.cov(x, rowvar=False, ddof=1))


def allocate_sleeves(x: np.ndarray, allocator: str, covariance: str = "sample") -> np.ndarray:
    """Weights (sum 1, >= 0) of ``allocator`` for the aligned sleeve returns ``x`` (T x N, N >= 1)."""
    n = x.shape[1]
    if n == 1 or allocator == "equal_weight":
        return np.full(n, 1.0 / n)
    cov = sleeve_covariance(x, covariance)
    sd = np.sqrt(np.diag(cov))
    if not np.all(sd > 0):
        raise ValueError(f"meta {allocator}: a sleeve has zero variance over the train window")
    if allocator == "inverse_vol":
        inv = 1.0 / sd
        return inv / inv.sum()
    if allocator == "hrp":
        return hrp_native(cov)
    if allocator == "min_variance":
        from allocation.constraints import Caps
        from allocation.native import solve_native

        caps = Caps(A=np.zeros((0, n)), b=np.zeros(0), labels=[], ub=np.ones(n), ub_label=[""] * n)
        res = solve_native("min_variance", cov, caps)
        if res.weights is None:
            raise ValueError(f"meta min_variance: solver {res.status} ({res.reason})")
        w = np.clip(np.asarray(res.weights, dtype=np.float64), 0.0, None)
        return w / w.sum()
    raise ValueError(f"unknown meta allocator {allocator!r}")


def meta_weights(series: dict[str, pd.Series], calendar: pd.DatetimeIndex, cutoff: int, allocator: str,
                 train_window: int, min_history: int, covariance: str = "sample") -> MetaDecision:
    """The decision at meta cut-off bar ``cutoff`` (an index into the meta ``calendar``).

    Reads each sleeve's returns dated in ``(calendar[cutoff - train_window], calendar[cutoff]]`` for the
    estimate and counts its returns dated ``<= calendar[cutoff]`` for ``min_history``.
    """
    end = calendar[cutoff]
    start = calendar[cutoff - train_window] if cutoff - train_window >= 0 else None
    names = sorted(series)
    n_hist = {n: int((series[n].index <= end).sum()) for n in names}
    eligible = tuple(n for n in names if n_hist[n] >= min_history)
    weights = {n: 0.0 for n in names}
    n_obs = 0
    if len(eligible) == 1:
        weights[eligible[0]] = 1.0
    elif eligible:
        x = carry_align({n: series[n] for n in eligible}, start, end)
        n_obs = len(x)
        if n_obs < 2:
            raise ValueError(f"meta cut-off {end.date()}: the eligible sleeves {list(eligible)} share "
                             f"{n_obs} days in the train window; raise meta.train_window")
        w = allocate_sleeves(x[list(eligible)].to_numpy(), allocator, covariance)
        weights.update({n: float(v) for n, v in zip(eligible, w)})
    return MetaDecision(weights=weights, eligible=eligible, n_history=n_hist, n_obs=n_obs)
