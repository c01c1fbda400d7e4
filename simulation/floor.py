"""Daily returns from a value path, with the liquidation floor (DESIGN section 4). Pure numpy.

Both simulators hand their end-of-bar portfolio values (after the bar's trades and costs) to
``floored_returns``, so that the floor is applied identically.
"""
from __future__ import annotations

import numpy as np

INITIAL_CAPITAL = 1.0


def floored_returns(values: np.ndarray, floor: float) -> tuple[np.ndarray, int]:
    """Daily simple returns of one cell and the index of its liquidation bar (-1 if none).

    ``values[0]`` is the value at the close of the first cut-off (replaced by the initial capital 1.0,
    so costs paid at that close, possible only when ``gap == 0``, count in the first return);
    ``values[1:]`` are the end-of-bar values of the test bars. Returns ``r`` of length
    ``len(values) - 1``: ``r_i = V_i / V_{i-1} - 1``.

    Floor: the high-water mark ``H_i = max(1.0, V_1..V_i)`` includes the initial capital; at the first
    bar ``L`` with ``V_L / H_L - 1 <= floor`` the cell is liquidated: ``r_L`` is cut so that equity lands
    on ``H_L * (1 + floor)`` (``r_L >= -1``) and every later return is 0. Before ``L`` equity is positive
    (the drawdown is above ``floor >= -1``), so no division by zero can occur.
    """
    v = np.asarray(values, dtype=np.float64).copy()
    v[0] = INITIAL_CAPITAL
    n = len(v) - 1
    if n <= 0:
        return np.zeros(0), -1
    hwm = np.maximum.accumulate(np.maximum(v[1:], INITIAL_CAPITAL))
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = v[1:] / hwm - 1.0
    hit = np.flatnonzero(dd <= floor)
    liq = int(hit[0]) if hit.size else -1
    end = n if liq < 0 else liq
    r = np.zeros(n)
    r[:end] = v[1:end + 1] / v[:end] - 1.0
    if liq >= 0:
        r[liq] = max(hwm[liq] * (1.0 + floor) / v[liq] - 1.0, -1.0)
    return r, liq


def drawdown_breached(value: np.ndarray, hwm: np.ndarray, floor: float) -> np.ndarray:
    """``value / hwm - 1 <= floor`` elementwise, the test ``floored_returns`` applies (same float ops)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return value / hwm - 1.0 <= floor
