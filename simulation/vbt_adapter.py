"""The only module that imports vectorbt. Every setting that matters is passed on every call.

One ``vbt.Portfolio.from_orders`` call per batch: each (cell, atom) is a column on its asset's price,
grouped per cell with
``cash_sharing=True``, ``direction="both"``, ``size_type="targetpercent"`` (vectorbt sizes each order
itself from ``d * g * w`` and its own group value), ``price = val_price = close`` (our filled close),
``call_seq="auto"``, ``update_value=False`` (all orders of a close are sized from the group value before
that close's trades, as in the model), ``ffill_val_price=True``, ``freq="1D"``, ``engine="numba"``,
explicit fees and slippage per column, ``allow_partial=True``, ``lock_cash=False``.

Column recycling (``simulation.packing``): an atom occupies a column only over the bars where it may
hold a position (from an opening order to its closing order); a cell's columns are reused by later
atoms once free, so the call has ~max-concurrent-atoms columns per cell instead of one per atom ever
held (vectorbt's loop costs per bar and column, orders or not). Order records are mapped back to
the atom columns; units stay per slot with the slot -> atom map (``RawRun.slot_col``), which the frame
kernel reads row by row (no bars x atom-columns array is built). If vectorbt leaves units after a
closing order (a buy-to-cover cut by cash beyond the credit line), the batch is re-run with one column
per atom for its whole range.

Credit line: vectorbt never lets cash go negative (a buy is cut to the cash left), while the model sets
positions from the portfolio's value, so a gate switching on after other holdings drifted up may need
more cash than the portfolio holds. Each cell therefore gets one extra column: a constant-price-1
instrument sold short by ``credit_line`` units at the first bar with no fee. The group's value is
unchanged (cash +R, position -R x 1), and the cash only binds beyond R of borrowing. This column is
dropped from every output.

Differences with the reference simulator, frictionless: float summation order only (~1e-15 per bar;
tests hold 1e-10). With costs: the same sizing and cost formulas; what remains is float order and
vectorbt's treatment of sizes within ``1e-12`` of zero as no trade (its ``is_close_nb``), so the
documented tolerance is 1e-9 per daily return. A buy cut by cash (borrowing beyond the credit line)
would show as a larger disagreement, which ``compare_simulators`` reports.

A bust (final price 0): vectorbt cannot fill at price 0, so no order is sent; the units stay but are
worth 0 at the valuation price 0, which is the model's "closed at 0". The extracted positions book that
close (units -> 0, trade at the bust bar, no cost), as the reference does.

Liquidation: vectorbt knows no floor. The floor is applied to its value path by ``floor.floored_returns``
(the same function the reference uses); for a cell that hits it the adapter books the close of every
position at the liquidation bar in the extracted positions (``book_liquidations``) and discards what
vectorbt did afterwards. (A second vectorbt call closing the positions would need 2-D size-type and fee
arrays, i.e. one more numba compilation, and vectorbt rejects a target percent of a value <= 0.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import vectorbt as vbt
from vectorbt.portfolio.enums import Direction as VbtDirection
from vectorbt.portfolio.enums import OrderSide, SizeType

from simulation import packing
from simulation.config import SimulationConfig
from simulation.floor import INITIAL_CAPITAL, drawdown_breached
from simulation.reference import RawRun, records
from simulation.schedule import Batch

FREQ = "1D"
ENGINE = "numba"


def _year_freq(config: SimulationConfig) -> pd.Timedelta:
    """Calendar year length for vectorbt's annualisation: ``periods_per_year`` days of 1-day bars."""
    return pd.Timedelta(days=config.periods_per_year)


def _n_sim_groups(batch: Batch) -> int:
    """Groups sent to vectorbt: a batch of one cell gets a padding group (a credit column only, dropped
    from the outputs), so that every call has the same 2-D shapes and numba compiles one code path
    (vectorbt takes 1-D Series paths for a single group or column)."""
    return max(len(batch.cell_ids), 2)


def _layout(col_group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Column order of the vectorbt call (each cell's columns then its credit column) and group labels."""
    n_cols = len(col_group)
    order, labels = [], []
    for g in range(n_groups):
        cols = np.flatnonzero(col_group == g)
        order.extend(cols.tolist())
        order.append(n_cols + g)  # credit column of cell g
        labels.extend([g] * (len(cols) + 1))
    return np.asarray(order, dtype=np.int64), np.asarray(labels, dtype=np.int64)


def _from_orders(size: np.ndarray, price: np.ndarray, col_group: np.ndarray, n_groups: int,
                 config: SimulationConfig):
    """One vectorbt call over ``size``/``price`` (n, K) plus one credit column per group.

    Returns (values (n, n_groups), units (n, K), order records as (column in 0..K-1, row, size, price,
    fees, side) for the K columns).
    """
    n, k_cols = size.shape
    order, labels = _layout(col_group, n_groups)
    price_all = np.hstack([price, np.ones((n, n_groups))])[:, order]
    size_all = np.hstack([size, np.full((n, n_groups), np.nan)])
    size_all[0, k_cols:] = -config.credit_line
    size_all = size_all[:, order]
    is_credit = order >= k_cols
    size_type = np.where(is_credit, SizeType.Amount, SizeType.TargetPercent)
    fees = np.where(is_credit, 0.0, config.fees)
    slippage = np.where(is_credit, 0.0, config.slippage)
    close = pd.DataFrame(price_all, index=pd.RangeIndex(n), copy=False)
    max_orders = int(np.count_nonzero(~np.isnan(size_all))) + 1
    pf = vbt.Portfolio.from_orders(
        close=close, size=size_all, size_type=size_type, direction=VbtDirection.Both, price=price_all,
        val_price=price_all, fees=fees, fixed_fees=0.0, slippage=slippage, min_size=0.0, max_size=np.inf,
        size_granularity=np.nan, reject_prob=0.0, lock_cash=False, allow_partial=True,
        raise_reject=False, log=False, init_cash=np.ones(n_groups), cash_sharing=True,
        call_seq="auto", ffill_val_price=True, update_value=False, max_orders=max_orders, max_logs=0,
        group_by=labels, freq=FREQ, attach_call_seq=False, seed=0, engine=ENGINE,
    )
    values = pf.value().to_numpy().reshape(n, n_groups)
    units = np.empty((n, k_cols + n_groups))
    units[:, order] = pf.assets().to_numpy().reshape(n, k_cols + n_groups)
    rec = pf.orders.values
    col = order[rec["col"]]
    keep = col < k_cols
    return (values, units[:, :k_cols], col[keep], rec["idx"][keep], rec["size"][keep],
            rec["price"][keep], rec["fees"][keep], rec["side"][keep])


def pack_batch(batch: Batch) -> tuple[packing.Packing, np.ndarray, np.ndarray]:
    """The batch's order records packed into slot columns: (``Packing``, size, price), size and price
    (n, S) as ``_from_orders`` takes them (``packing.pack``)."""
    return packing.pack(batch.n_rows, batch.ord_row, batch.ord_col, batch.ord_val, batch.col_group,
                        len(batch.cell_ids), batch.sym_price, batch.col_sym)


def _simulate(batch: Batch, config: SimulationConfig, pack: bool = True):
    """vectorbt over the batch; with ``pack`` the atom columns are recycled into slots
    (``simulation.packing``) and the units stay per slot (``RawRun``: ``slot_col``, ``slot_cell``);
    without, one column per atom (the dense ``Batch.target_matrix``).

    Returns (values (n, G), units, slot_col or None, slot_cell or None, and the order records: row,
    column, trade, cost)."""
    n, n_cols = batch.shape
    n_groups = _n_sim_groups(batch)
    slot_col = slot_cell = None
    if pack:
        pk, size, price = pack_batch(batch)
        values, units, col, idx, sz, px, fee, side = _from_orders(size, price, pk.slot_group, n_groups, config)
        if len(packing.unclosed_pieces(units, pk)):
            # a close was cut (cash): the slot is not free after it, so run one column per atom
            return _simulate(batch, config, pack=False)
        slot_col, slot_cell = pk.occ, pk.slot_group
        col = pk.occ[idx, col]
    else:
        values, units, col, idx, sz, px, fee, side = _from_orders(batch.target_matrix(), batch.price_matrix(),
                                                                  batch.col_group, n_groups, config)
    values = values[:, :len(batch.cell_ids)]
    # order records: vectorbt fills at most one order per (bar, column), and a logical column is in
    # one slot per bar, so the (row, column) pairs are unique
    trade = np.where(side == OrderSide.Buy, sz, -sz)
    cost = fee + sz * np.abs(px - batch.sym_price[idx, batch.col_sym[col]])
    bust = np.flatnonzero(batch.bust_row >= 0)
    if len(bust):  # book the close at 0 that vectorbt cannot fill
        b = batch.bust_row[bust].astype(np.int64)
        held = np.zeros(len(bust))
        new = np.ones(len(bust), dtype=bool)
        key = idx * n_cols + col
        for q, (j, r) in enumerate(zip(bust, b)):
            if slot_col is None:
                held[q] = units[r, j]       # units held into the bust bar (no order fills at price 0)
                units[r:, j] = 0.0
            else:
                slots = np.flatnonzero(slot_cell == batch.col_group[j])
                rr, ss = np.nonzero(slot_col[r:, slots] == j)
                at_r = ss[rr == 0]
                held[q] = units[r, slots[at_r[0]]] if len(at_r) else 0.0
                units[r + rr, slots[ss]] = 0.0
            hit = np.flatnonzero(key == r * n_cols + j)
            if len(hit):                    # cannot happen (no order at a price of 0); kept general
                trade[hit] -= held[q]
                new[q] = False
        idx, col = np.r_[idx, b[new]], np.r_[col, bust[new]]
        trade, cost = np.r_[trade, 0.0 - held[new]], np.r_[cost, np.zeros(int(new.sum()))]
    idx, col, trade, cost = records(idx, col, trade, cost, batch.col_group, n)
    return values, units, slot_col, slot_cell, idx, col, trade, cost


def run_vectorbt(batch: Batch, config: SimulationConfig) -> RawRun:
    """First pass over the whole batch (value path, positions, order records)."""
    values, units, slot_col, slot_cell, row, col, trade, cost = _simulate(batch, config)
    return RawRun(values=values, units=units, order_row=row, order_col=col, trade=trade, cost=cost,
                  slot_col=slot_col, slot_cell=slot_cell)


def book_liquidations(batch: Batch, liq_rows: dict[int, int], config: SimulationConfig,
                      first: RawRun) -> RawRun:
    """Book the liquidation close of each liquidated cell in vectorbt's extracted positions.

    At the liquidation row ``L`` every position of the cell is closed (units -> 0; the trade at ``L`` is
    minus the units held before it) and nothing after ``L`` is reported (vectorbt, which knows no floor,
    kept trading on its value path; those orders are discarded). Costs at ``L`` are vectorbt's for the
    orders it filled at that close, or 0 when the cell was already through the floor before trading
    (pre-trade value ``V_post + costs``), as in the reference simulator.
    """
    if not liq_rows:
        return first
    units = first.units.copy()
    row_r, col_r, trade_r, cost_r = first.order_row, first.order_col, first.trade, first.cost
    keep = np.ones(len(row_r), dtype=bool)
    add_row, add_col, add_trade, add_cost = [], [], [], []
    floor = config.liquidation_floor
    for g, row in liq_rows.items():
        cols = np.flatnonzero(batch.col_group == g)
        in_cell = (col_r >= cols[0]) & (col_r <= cols[-1]) if len(cols) else np.zeros(len(col_r), dtype=bool)
        at = np.flatnonzero(in_cell & (row_r == row))
        cost_row = np.zeros(len(cols))            # the cell's costs at the liquidation close, column order
        cost_row[col_r[at] - cols[0]] = cost_r[at]
        s = int(batch.start_row[g])
        path = first.values[s + 1:row + 1, g]
        hwm_before = max(INITIAL_CAPITAL, float(path[:-1].max())) if len(path) > 1 else INITIAL_CAPITAL
        v_pre = first.values[row, g] + cost_row.sum()
        pre = bool(drawdown_breached(np.array([v_pre]), np.array([max(hwm_before, v_pre)]), floor)[0])
        held_before = _held(first, units, row - 1, g, cols)
        if pre:
            cost_row[:] = 0.0
        # every column of the cell gets a record at the liquidation close; later records are dropped
        keep &= ~(in_cell & (row_r >= row))
        add_row.append(np.full(len(cols), row, dtype=np.int64))
        add_col.append(cols.astype(np.int64))
        add_trade.append(-held_before)
        add_cost.append(cost_row)
        if first.slot_col is None:
            units[row:, cols] = 0.0
        else:
            units[row:, first.slot_cell == g] = 0.0
    row_r, col_r, trade_r, cost_r = records(np.concatenate([row_r[keep], *add_row]),
                                            np.concatenate([col_r[keep], *add_col]),
                                            np.concatenate([trade_r[keep], *add_trade]),
                                            np.concatenate([cost_r[keep], *add_cost]), batch.col_group,
                                            units.shape[0])
    return RawRun(values=first.values, units=units, order_row=row_r, order_col=col_r, trade=trade_r,
                  cost=cost_r, slot_col=first.slot_col, slot_cell=first.slot_cell)


def _held(run: RawRun, units: np.ndarray, i: int, g: int, cols: np.ndarray) -> np.ndarray:
    """Units of cell ``g``'s columns ``cols`` (contiguous) after row ``i`` (zeros before row 0)."""
    if i < 0 or not len(cols):
        return np.zeros(len(cols))
    if run.slot_col is None:
        return units[i, cols]
    out = np.zeros(len(cols))
    slots = np.flatnonzero(run.slot_cell == g)
    j = run.slot_col[i, slots]
    on = j >= 0
    out[j[on] - cols[0]] = units[i, slots[on]]
    return out


def vbt_summary(returns_wide: pd.DataFrame, config: SimulationConfig) -> pd.DataFrame:
    """vectorbt's own total return, Sharpe and max drawdown of each cell's stitched daily returns.

    ``returns_wide``: dates x cell ids, NaN outside a cell's test bars. These are the routines
    ``Portfolio.sharpe_ratio/max_drawdown`` delegate to (``total`` is the accessor's
    ``prod(1 + r) - 1``, which ``Portfolio.total_return`` equals on the same value path), called on the
    floored stitched series (the Portfolio's own value path knows neither the floor nor the cell's range).
    Each column is measured from its own first non-NaN row: vectorbt compounds NaN rows as a flat
    wealth of 1.0, so a column that starts after NaN rows would otherwise get the initial capital as a
    drawdown peak that a column starting on the first row does not (columns are grouped by start row,
    one vectorbt call per group).
    Conventions (vectorbt 1.2): total return ``prod(1 + r) - 1``; Sharpe ``mean / std(ddof=1) *
    sqrt(year_freq / freq)`` with rf 0, ``inf`` when the std is 0 and NaN with fewer than 2 returns;
    max drawdown ``min(W / cummax(W) - 1)`` over the compounded wealth after each bar, whose running
    peak does NOT include the initial capital (a loss on the first bar is not a drawdown).
    """
    valid = returns_wide.notna().to_numpy()
    first = np.where(valid.any(axis=0), valid.argmax(axis=0), 0)
    parts = []
    for start in np.unique(first):
        cols = returns_wide.columns[first == start]
        acc = returns_wide.iloc[int(start):][cols].vbt.returns(freq=FREQ, year_freq=_year_freq(config))
        parts.append(pd.DataFrame({
            "sim_total_return": acc.total(engine=ENGINE).to_numpy(),
            "sim_sharpe": acc.sharpe_ratio(risk_free=0.0, ddof=1, engine=ENGINE).to_numpy(),
            "sim_max_drawdown": acc.max_drawdown(engine=ENGINE).to_numpy(),
        }, index=cols))
    return pd.concat(parts).reindex(returns_wide.columns)
