"""Reference simulator: the execution model in plain numpy, a loop over bars vectorised over columns.

At each bar ``t`` (row ``i``), for every cell at once:

1. mark to market: ``V_pre = cash + sum(units * close_t)``;
2. liquidation test on ``V_pre`` (``floor.drawdown_breached``); a breached cell does not trade;
3. bust: a column whose asset's final price 0 is at ``t`` is closed at 0 (units -> 0, no cash);
4. orders: a column with a target sets ``units = target * V_pre / close_t``; every target of a close
   uses the same pre-trade value ``V_pre``. The trade ``q`` executes at ``close * (1 + sign(q) *
   slippage)``; fees are ``fees * |q| * executed price``; cost = slippage + fees, in currency;
5. ``V_post = cash + sum(units * close_t)``; liquidation test on ``V_post``; a liquidated cell's units
   are closed (no cost) and its cash set to the floor equity; it never trades again.

Cash may go negative (a zero-rate credit line): a gate switching on after other holdings drifted up can
need more cash than the portfolio holds, and the model sets positions from the portfolio's value.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulation.config import SimulationConfig
from simulation.floor import INITIAL_CAPITAL, drawdown_breached
from simulation.schedule import Batch


@dataclass(frozen=True)
class RawRun:
    """What a simulator returns for one batch: arrays over the batch's rows.

    Units: ``units`` is (n, C), one column per logical column, when ``slot_col`` is None (the reference
    simulator, vectorbt unpacked); otherwise it is vectorbt's (n, S) packed slots
    (``simulation.packing``): ``slot_col[i, s]`` is the logical column in slot ``s`` at row ``i`` (-1:
    idle) and ``slot_cell`` the cell of each slot (a cell's slots contiguous). A logical column holds 0
    units wherever it occupies no slot. ``unit_at`` / ``dense_units`` read them either way.

    Trades and costs are order records, not (n, C) arrays (a cell trades at a few hundred of its
    (bar, column) elements): ``order_row``/``order_col`` (batch row, column), ``trade`` (units traded
    at that close, signed) and ``cost`` (fees + slippage paid, currency), sorted by (cell, row,
    column), at most one record per (row, column); a (row, column) without a record has trade 0 and
    cost 0. ``records`` builds them.
    """

    values: np.ndarray      # (n, G) end-of-bar portfolio value (after trades and costs)
    units: np.ndarray       # (n, C) units held after the bar's trade, or (n, S) per slot (see above)
    order_row: np.ndarray   # (K,) int64
    order_col: np.ndarray   # (K,) int64
    trade: np.ndarray       # (K,) float64 units traded at the bar's close (signed)
    cost: np.ndarray        # (K,) float64 fees + slippage paid at the bar, currency
    slot_col: np.ndarray | None = None    # (n, S) int64, packed units only
    slot_cell: np.ndarray | None = None   # (S,) int64, packed units only

    def unit_at(self, i: int, j: int) -> float:
        """Units of logical column ``j`` after row ``i``'s trade."""
        if self.slot_col is None:
            return float(self.units[i, j])
        hit = np.flatnonzero(self.slot_col[i] == j)
        return float(self.units[i, hit[0]]) if len(hit) else 0.0

    def dense_units(self, n_cols: int) -> np.ndarray:
        """(n, C) units per logical column (a new array when packed)."""
        if self.slot_col is None:
            return self.units
        out = np.zeros((self.units.shape[0], n_cols))
        r, s = np.nonzero(self.slot_col >= 0)
        out[r, self.slot_col[r, s]] = self.units[r, s]
        return out


def records(row: np.ndarray, col: np.ndarray, trade: np.ndarray, cost: np.ndarray, col_group: np.ndarray,
            n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Order records sorted by (cell, row, column); the (row, column) pairs must be unique."""
    row = np.asarray(row, dtype=np.int64)
    col = np.asarray(col, dtype=np.int64)
    key = (np.asarray(col_group, dtype=np.int64)[col] * n_rows + row) * max(len(col_group), 1) + col
    o = np.argsort(key, kind="stable")
    return row[o], col[o], np.asarray(trade, dtype=np.float64)[o], np.asarray(cost, dtype=np.float64)[o]


def records_from_dense(trade: np.ndarray, cost: np.ndarray, col_group: np.ndarray):
    """Order records of (n, C) trade and cost arrays: every element whose trade or cost is not +0.0
    (bitwise, so a -0.0 is kept as it is)."""
    mask = (trade.view(np.int64) != 0) | (cost.view(np.int64) != 0)
    r, c = np.nonzero(mask)
    return records(r, c, trade[r, c], cost[r, c], col_group, trade.shape[0])


def run_reference(batch: Batch, config: SimulationConfig) -> RawRun:
    """Simulate every cell of ``batch`` under the execution model (see module docstring)."""
    n, n_cols = batch.shape
    n_groups = len(batch.cell_ids)
    grp = batch.col_group
    fees, slip, floor = config.fees, config.slippage, config.liquidation_floor
    cash = np.full(n_groups, INITIAL_CAPITAL)
    hwm = np.full(n_groups, INITIAL_CAPITAL)
    liq = np.zeros(n_groups, dtype=bool)
    units = np.zeros(n_cols)
    values = np.empty((n, n_groups))
    units_out = np.zeros((n, n_cols))
    trade_out = np.zeros((n, n_cols))
    cost_out = np.zeros((n, n_cols))
    bust_cols = {}
    for j in np.flatnonzero(batch.bust_row >= 0):
        bust_cols.setdefault(int(batch.bust_row[j]), []).append(j)

    def group_sum(x: np.ndarray) -> np.ndarray:
        return np.bincount(grp, weights=x, minlength=n_groups)

    price = batch.price_matrix()
    target = batch.target_matrix()
    for i in range(n):
        p = price[i]
        v_pre = cash + group_sum(units * p)
        live = (batch.start_row < i) & (i <= batch.end_row) & ~liq
        hwm_pre = np.where(live, np.maximum(hwm, v_pre), hwm)
        liq_pre = live & drawdown_breached(v_pre, hwm_pre, floor)
        for j in bust_cols.get(i, ()):
            trade_out[i, j] = -units[j]
            units[j] = 0.0  # worth 0 already: closed at 0, no cash moves
        tg = target[i]
        m = ~np.isnan(tg)
        m[m] = ~(liq[grp[m]] | liq_pre[grp[m]])
        if m.any():
            jm = np.flatnonzero(m)
            pj = p[jm]
            new = tg[jm] * v_pre[grp[jm]] / pj
            q = new - units[jm]
            px_exec = pj * (1.0 + np.sign(q) * slip)
            fee = fees * np.abs(q) * px_exec
            cash -= np.bincount(grp[jm], weights=q * px_exec + fee, minlength=n_groups)
            units[jm] = new
            trade_out[i, jm] += q
            cost_out[i, jm] = np.abs(q) * pj * slip + fee
        v_post = cash + group_sum(units * p)
        hwm = np.where(live & ~liq_pre, np.maximum(hwm, v_post), hwm_pre)
        liq_post = live & ~liq_pre & drawdown_breached(v_post, hwm, floor)
        values[i] = np.where(liq_pre, v_pre, v_post)
        newly = liq_pre | liq_post
        if newly.any():
            cm = newly[grp]
            trade_out[i, cm] -= units[cm]
            units[cm] = 0.0
            cash[newly] = hwm[newly] * (1.0 + floor)
            liq |= newly
        units_out[i] = units
    row, col, trade, cost = records_from_dense(trade_out, cost_out, grp)
    return RawRun(values=values, units=units_out, order_row=row, order_col=col, trade=trade, cost=cost)
