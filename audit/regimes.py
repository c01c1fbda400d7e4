"""Per-regime figures of each cell and the ranking-consistency test across regimes.

Input: the cells' own daily returns (``returns.parquet``: never re-simulated) and a regime label per
date (``market.regimes``; ``regime_labels.parquet``). For each cell and each regime (calm, turbulent,
crisis), on the cell's days whose label is that regime, taken in date order as one series:

- ``n_days``: the number of such days;
- ``sharpe``: ``mean / std(ddof=1) * sqrt(P)``, rf 0, annualised with the calendar's P, and its
  stationary-bootstrap percentile CI (``audit.statistics.sharpe_ci``; automatic block length; the
  regime's days are resampled as one concatenated series, so a block may join two spells of the
  regime). A constant series (e.g. no position, or liquidated) gets Sharpe 0 and status ``degenerate``;
- ``annual_volatility``: ``std(ddof=1) * sqrt(P)``, fraction;
- ``max_drawdown``: of the equity compounded over the regime's days alone (as if the cell earned only
  those days), high-water mark including the initial capital 1; a negative fraction (``audit.metrics``);
- ``status``: ``ok``, ``degenerate`` or ``too_few_days`` (fewer than ``min_days`` days: every figure
  but ``n_days`` is NaN, a Sharpe on a handful of days means nothing).

Days without a label (the labels' warm-up) belong to no regime. ``ranking_consistency`` asks whether
items (cells, settings) rank alike in two regimes: Kendall's tau-b (``scipy.stats.kendalltau``) between
their figures in each pair of regimes, with its two-sided p-value and Holm's adjustment over the pairs.
The p-value assumes independent items; cells that share a market are not, so read it as descriptive
(its size on independent items is measured in ``tests/audit/test_regimes.py``).
"""
from __future__ import annotations

from itertools import combinations
from typing import Callable

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from audit.metrics import annual_volatility, max_drawdown
from audit.statistics import holm_correction, sharpe_ci

REGIME_ORDER = ("calm", "turbulent", "crisis")
FIGURE_COLUMNS = ["cell_id", "regime", "n_days", "sharpe", "sharpe_ci_low", "sharpe_ci_high",
                  "annual_volatility", "max_drawdown", "status"]


def regime_figures(returns: pd.DataFrame, labels: pd.Series, periods_per_year: float, *,
                   seed_of: Callable[[str, str], int], n_boot: int = 1000, alpha: float = 0.05,
                   min_days: int = 20, regimes: tuple[str, ...] = REGIME_ORDER) -> pd.DataFrame:
    """One row per (cell, regime) in ``FIGURE_COLUMNS`` (see the module docstring).

    ``returns``: columns ``cell_id, date, return`` (daily simple returns, fractions); ``labels``: the
    regime per date (index: dates; missing = unlabelled); ``seed_of(cell_id, regime)``: the bootstrap's
    seed (derived by the caller from the run's base seed, never from execution order).
    """
    lab = labels.astype("string")
    # the label of each of a cell's days: positions in the labels' dates (what ``lab.reindex`` looks up),
    # None for a day without one; a day is in a regime when its label equals the regime's name
    lab_vals = lab.to_numpy(dtype=object, na_value=None)
    rows = []
    for cid, g in returns.groupby("cell_id", sort=True, observed=True):
        g = g.sort_values("date")
        pos = lab.index.get_indexer(pd.DatetimeIndex(g["date"]))
        day_regime = np.full(pos.size, None, dtype=object)
        day_regime[pos >= 0] = lab_vals[pos[pos >= 0]]
        r_all = g["return"].to_numpy(dtype=np.float64)
        for reg in regimes:
            r = r_all[day_regime == reg]
            row = {"cell_id": str(cid), "regime": reg, "n_days": int(r.size), "sharpe": np.nan,
                   "sharpe_ci_low": np.nan, "sharpe_ci_high": np.nan, "annual_volatility": np.nan,
                   "max_drawdown": np.nan, "status": "too_few_days"}
            if r.size >= max(min_days, 3):
                ci = sharpe_ci(r, periods_per_year, seed=seed_of(str(cid), reg), n_boot=n_boot, alpha=alpha)
                row.update(sharpe=ci.sharpe, sharpe_ci_low=ci.ci_low, sharpe_ci_high=ci.ci_high,
                           annual_volatility=annual_volatility(r, periods_per_year), max_drawdown=max_drawdown(r),
                           status=ci.status)
            rows.append(row)
    return pd.DataFrame(rows, columns=FIGURE_COLUMNS)


def regime_mix(labels: pd.Series, start, end, regimes: tuple[str, ...] = REGIME_ORDER) -> dict[str, int]:
    """Days of each regime between ``start`` and ``end`` inclusive (plus ``unlabelled``)."""
    part = labels.astype("string").loc[start:end]
    out = {reg: int((part == reg).sum()) for reg in regimes}
    out["unlabelled"] = int(part.isna().sum())
    return out


def ranking_consistency(table: pd.DataFrame, alpha: float = 0.05) -> list[dict]:
    """Kendall's tau-b between every pair of columns of ``table`` (rows: the items ranked, e.g. cells;
    columns: regimes; values: a figure such as Sharpe). Rows missing either value are dropped for that
    pair; a pair with fewer than 3 items, or a constant column, gets ``tau``/``pvalue`` None.

    Each result: ``regime_a, regime_b, n, tau, pvalue, pvalue_holm`` (Holm over the pairs of this
    table) and ``verdict`` in words."""
    out = []
    for a, b in combinations(list(table.columns), 2):
        pair = table[[a, b]].astype("float64").dropna()
        res = {"regime_a": str(a), "regime_b": str(b), "n": int(len(pair)), "tau": None, "pvalue": None}
        if len(pair) >= 3 and pair[a].nunique() > 1 and pair[b].nunique() > 1:
            kt = kendalltau(pair[a].to_numpy(), pair[b].to_numpy())
            res["tau"], res["pvalue"] = float(kt.statistic), float(kt.pvalue)
        out.append(res)
    tested = [r for r in out if r["pvalue"] is not None]
    if tested:
        holm = holm_correction(np.array([r["pvalue"] for r in tested]), alpha=alpha)
        for r, p in zip(tested, holm.adjusted.to_numpy()):
            r["pvalue_holm"] = float(p)
    for r in out:
        r.setdefault("pvalue_holm", None)
        r["verdict"] = consistency_verdict(r, alpha)
    return out


def consistency_verdict(r: dict, alpha: float = 0.05) -> str:
    """One sentence on a ``ranking_consistency`` result."""
    a, b = r["regime_a"], r["regime_b"]
    if r.get("tau") is None:
        return f"{a} vs {b}: not tested ({r['n']} items with both figures, or no variation)"
    tau, p = r["tau"], r.get("pvalue_holm", r["pvalue"])
    if p is not None and p <= alpha:
        if tau > 0:
            return (f"{a} vs {b}: the rankings agree (tau {tau:.2f}, Holm p {p:.3g}, n {r['n']}): what ranks "
                    f"high in {a} tends to rank high in {b}")
        return (f"{a} vs {b}: the rankings are reversed (tau {tau:.2f}, Holm p {p:.3g}, n {r['n']}): what ranks "
                f"high in {a} tends to rank low in {b}")
    return (f"{a} vs {b}: no evidence that the rankings agree (tau {tau:.2f}, Holm p {p:.3g}, n {r['n']}): "
            f"the order in one regime says little about the other")
