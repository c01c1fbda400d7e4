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
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from contracts.atom import StrategyAtom
from contracts.enums import Direction
from contracts.errors import DataError


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


def antifragility(asset_returns: pd.DataFrame, periods_per_year: int) -> pd.Series:
    """AF per column of raw daily simple returns (see module docstring); index = column names."""
    cols = list(asset_returns.columns)
    if not cols:
        return pd.Series(dtype=float)
    x = asset_returns.to_numpy(dtype=np.float64)
    st = np.array([_skew_tail(x[:, j]) for j in range(len(cols))])
    n_valid = np.isfinite(x).sum(axis=0)
    af = (_minmax(st[:, 0]) + _minmax(st[:, 1])) * np.minimum(1.0, n_valid / periods_per_year)
    return pd.Series(af, index=cols, dtype=float)


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
    af = antifragility(asset_returns[symbols], periods_per_year) if symbols else pd.Series(dtype=float)
    ranked = sorted(symbols, key=lambda s: (-af[s], s))
    top = set(ranked[: math.ceil(len(ranked) / 2)])
    core = [a.id for a in longs if a.symbol in top]
    others = sorted((a for a in atoms if a.id not in set(core)),
                    key=lambda a: (-champion_conviction(a), a.id))
    n_aggr = max(1, math.floor(0.2 * len(atoms) + 0.5))
    aggressor = [a.id for a in others[:n_aggr]]
    return core, aggressor, {s: float(af[s]) for s in symbols}
