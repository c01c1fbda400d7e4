"""Atom gates and return streams (SELECTION_SPEC section 6): pure functions of prices.

Gate ``g_t`` in {0, 1} applies to the bar-t return. It is computed from closes up to bar ``t-1-gap``
and traded at the close of ``t-1``. Signals ``s_j`` are computed at bar j from closes up to j; then
``g_t = s_{t-1-gap}``:

- ``rating``: always 1;
- ``trend``: 1 when the trailing 20-bar mean daily return has the sign of d (exactly 0 gives 0);
- ``mom``: 1 when the trailing 60-bar compounded return ``close_j / close_{j-60} - 1`` has the sign of d;
- ``rev``: 1 when ``close_j`` is on the far side of its 20-bar simple moving average (below it for
  LONG, above it for SHORT).

Before there is enough history (or where a close is missing) the gate is 0. Gates read any past bar,
not only a train slice. Everything here is vectorised over symbols.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from contracts.enums import Direction, Logic

TREND_BARS = 20
MOM_BARS = 60
REV_BARS = 20


def _rolling_mean(a: np.ndarray, n: int) -> np.ndarray:
    """Trailing mean over n rows; NaN where any of the n values is NaN or history is short."""
    out = np.full_like(a, np.nan, dtype=np.float64)
    if a.shape[0] < n:
        return out
    c = np.nancumsum(np.nan_to_num(a, nan=0.0), axis=0)
    c = np.vstack([np.zeros((1,) + a.shape[1:]), c])
    nan_c = np.vstack([np.zeros((1,) + a.shape[1:]), np.cumsum(np.isnan(a), axis=0)])
    s = c[n:] - c[:-n]
    k = nan_c[n:] - nan_c[:-n]
    m = s / n
    m[k > 0] = np.nan
    out[n - 1:] = m
    return out


def signal(closes: np.ndarray, logic: Logic, sign: np.ndarray | int) -> np.ndarray:
    """Signal ``s_j`` in {0, 1} at each bar from closes up to j (2-D array: bars x columns).

    ``sign`` is d per column (+1 / -1) or a scalar.
    """
    closes = np.asarray(closes, dtype=np.float64)
    d = np.broadcast_to(np.asarray(sign, dtype=np.float64), closes.shape[1:])
    logic = Logic(logic)
    if logic is Logic.RATING:
        return np.ones_like(closes)
    with np.errstate(divide="ignore", invalid="ignore"):
        if logic is Logic.TREND:
            r = np.full_like(closes, np.nan)
            r[1:] = closes[1:] / closes[:-1] - 1.0
            x = _rolling_mean(r, TREND_BARS)
        elif logic is Logic.MOM:
            x = np.full_like(closes, np.nan)
            x[MOM_BARS:] = closes[MOM_BARS:] / closes[:-MOM_BARS] - 1.0
        else:  # REV: positive when the close is below its MA, so LONG (d=+1) wants x > 0
            ma = _rolling_mean(closes, REV_BARS)
            x = ma - closes
    s = np.where(np.isfinite(x), (np.sign(x) * d > 0).astype(np.float64), 0.0)
    return s


def gates(closes: np.ndarray, logic: Logic, sign: np.ndarray | int, gap: int = 1) -> np.ndarray:
    """Gate ``g_t = s_{t-1-gap}`` (0 where that bar does not exist). Same shape as ``closes``."""
    s = signal(closes, logic, sign)
    g = np.zeros_like(s)
    lag = 1 + gap
    if s.shape[0] > lag:
        g[lag:] = s[:-lag]
    return g


def atom_gates_array(px: np.ndarray, col: dict, atoms: list, gap: int = 1) -> np.ndarray:
    """Gates of several atoms (bars x atoms, 0.0 / 1.0) from the closes array ``px`` (bars x
    columns) whose column of symbol ``s`` is ``col[s]``; computed logic by logic over all atoms of
    that logic at once. Every operation runs column by column (trailing sums are cumulative sums
    down each column), so an atom's gates do not depend on the other columns of ``px``."""
    out = np.zeros((px.shape[0], len(atoms)))
    by_logic: dict[Logic, list[int]] = {}
    for i, a in enumerate(atoms):
        by_logic.setdefault(Logic(a.logic), []).append(i)
    for logic, idxs in by_logic.items():
        sub = px[:, [col[atoms[i].symbol] for i in idxs]]
        d = np.array([Direction(atoms[i].direction).sign for i in idxs], dtype=np.float64)
        out[:, idxs] = gates(sub, logic, d, gap)
    return out


def atom_gates(closes: pd.DataFrame, atoms: list, gap: int = 1) -> pd.DataFrame:
    """Gates of several atoms (objects with ``id``, ``symbol``, ``logic``, ``direction``).

    Returns a DataFrame (bars x atom ids) of 0.0 / 1.0, computed logic by logic over all atoms of that
    logic at once (``atom_gates_array``).
    """
    px = closes.to_numpy(dtype=np.float64)
    col = {s: j for j, s in enumerate(closes.columns)}
    return pd.DataFrame(atom_gates_array(px, col, atoms, gap), index=closes.index,
                        columns=[a.id for a in atoms])


def atom_returns_array(px: np.ndarray, returns: np.ndarray, col: dict, atoms: list,
                       gap: int = 1) -> np.ndarray:
    """``atom_returns`` on arrays: ``px`` closes and ``returns`` their simple returns
    (``market.panel.simple_returns``), both bars x columns with symbol ``s`` in column ``col[s]``."""
    g = atom_gates_array(px, col, atoms, gap)
    r = returns[:, [col[a.symbol] for a in atoms]]
    d = np.array([Direction(a.direction).sign for a in atoms], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(g > 0, np.maximum(d * r, -1.0), 0.0)


def atom_returns(closes: pd.DataFrame, atoms: list, gap: int = 1) -> pd.DataFrame:
    """Return streams ``a_t = d * g_t * r_t`` (clipped below at -1), bars x atom ids.

    ``a_t = 0`` where the gate is 0; NaN where the gate is 1 and the asset has no return that bar
    (first bar, before listing, after delisting).
    """
    from market.panel import simple_returns  # local: keeps module import light

    if not atoms:
        return pd.DataFrame(np.zeros((len(closes), 0)), index=closes.index, columns=[])
    px = closes.to_numpy(dtype=np.float64)
    col = {s: j for j, s in enumerate(closes.columns)}
    a = atom_returns_array(px, simple_returns(closes).to_numpy(), col, atoms, gap)
    return pd.DataFrame(a, index=closes.index, columns=[x.id for x in atoms])
