"""Order records (issue 23): ``RawRun`` carries trades and costs as records, not (bars x columns) arrays.

The oracle is the code before the change, kept here: the vectorbt adapter's dense ``trade``/``cost``
arrays (scatter of vectorbt's order records, the bust close booked in place) and its dense
liquidation booking, and the reference simulator's dense arrays (``records_from_dense`` must keep
every element that is not +0.0, bit for bit). The records, written back into dense arrays, must equal
the oracle exactly (values, units, trades, costs; -0.0 included), on the hard fixture of
``test_sim_kernels`` (fees, slippage, gap 2, late listing, delisting, bust, liquidations at -30%,
several atoms on one symbol) and on a frictionless batch without liquidation.
"""
from __future__ import annotations

import numpy as np
import pytest
from vectorbt.portfolio.enums import OrderSide

from simulation import SimulationConfig, packing, vbt_adapter
from simulation.floor import INITIAL_CAPITAL, drawdown_breached
from simulation.reference import records_from_dense, run_reference
from simulation.results import cell_returns
from simulation.schedule import compile_batch, compute_gates, panel_arrays
from tests.simulation.sim_helpers import pack_dense, panel, random_plan
from tests.simulation.test_sim_kernels import _hard_case


def _batch(px, plans, cfg):
    gates, keys = compute_gates(px, plans, cfg.gap)
    return compile_batch(px, plans, gates, keys, panel_arrays(px))


def _old_simulate(batch, cfg):
    """``vbt_adapter._simulate`` before issue 23's records (packed path): dense trade and cost."""
    n, n_cols = batch.shape
    price_m = batch.price_matrix()
    pk, size, price = pack_dense(batch.target_matrix(), batch.col_group, len(batch.cell_ids), price_m)
    values, units_s, col, idx, sz, px, fee, side = vbt_adapter._from_orders(
        size, price, pk.slot_group, vbt_adapter._n_sim_groups(batch), cfg)
    assert not len(packing.unclosed_pieces(units_s, pk))
    units = np.zeros((n, n_cols))                     # packing.unpack_units, removed with issue 23
    for j, s, a, b in zip(pk.piece_col, pk.piece_slot, pk.piece_start, pk.piece_end):
        units[a:b + 1, j] = units_s[a:b + 1, s]
    col = pk.occ[idx, col]
    values = values[:, :len(batch.cell_ids)]
    trade = np.zeros((n, n_cols))
    cost = np.zeros((n, n_cols))
    trade[idx, col] = np.where(side == OrderSide.Buy, sz, -sz)
    cost[idx, col] = fee + sz * np.abs(px - price_m[idx, col])
    for j in np.flatnonzero(batch.bust_row >= 0):
        b = int(batch.bust_row[j])
        trade[b, j] -= units[b, j]
        units[b:, j] = 0.0
    return values, units, trade, cost


def _old_book_liquidations(batch, liq_rows, cfg, values, units, trade, cost):
    """``vbt_adapter.book_liquidations`` before the records, on dense arrays."""
    units, trade, cost = units.copy(), trade.copy(), cost.copy()
    for g, row in liq_rows.items():
        cols = np.flatnonzero(batch.col_group == g)
        s = int(batch.start_row[g])
        path = values[s + 1:row + 1, g]
        hwm_before = max(INITIAL_CAPITAL, float(path[:-1].max())) if len(path) > 1 else INITIAL_CAPITAL
        v_pre = values[row, g] + cost[row, cols].sum()
        pre = bool(drawdown_breached(np.array([v_pre]), np.array([max(hwm_before, v_pre)]),
                                     cfg.liquidation_floor)[0])
        held_before = units[row - 1, cols] if row > 0 else np.zeros(len(cols))
        trade[row, cols] = -held_before
        if pre:
            cost[row, cols] = 0.0
        units[row:, cols] = 0.0
        trade[row + 1:, cols] = 0.0
        cost[row + 1:, cols] = 0.0
    return units, trade, cost


def _dense(run, shape):
    """Records written into (n, C) arrays of +0.0; (row, column) pairs must be unique."""
    assert len(set(zip(run.order_row.tolist(), run.order_col.tolist()))) == len(run.order_row)
    trade, cost = np.zeros(shape), np.zeros(shape)
    trade[run.order_row, run.order_col] = run.trade
    cost[run.order_row, run.order_col] = run.cost
    return trade, cost


def _bits_equal(a, b) -> bool:
    """Bit-identical float arrays (-0.0 differs from 0.0)."""
    return a.shape == b.shape and np.array_equal(np.asarray(a).view(np.int64), np.asarray(b).view(np.int64))


def _sorted_by_cell_row_col(run, batch) -> bool:
    key = (batch.col_group[run.order_col] * batch.shape[0] + run.order_row) * batch.shape[1] + run.order_col
    return bool(np.all(np.diff(key) > 0))


def _frictionless_case():
    px = panel(240, 6, seed=11, vol=0.03)
    plans = [random_plan(f"c{i}", px, 60 + 10 * i, 20, 4, seed=20 + i) for i in range(4)]
    return px, plans, SimulationConfig(fees=0.0, slippage=0.0)


@pytest.mark.parametrize("case", [_hard_case, _frictionless_case])
def test_vectorbt_records_equal_dense_arrays(case):
    px, plans, cfg = case()
    batch = _batch(px, plans, cfg)
    values, units, trade, cost = _old_simulate(batch, cfg)
    first = vbt_adapter.run_vectorbt(batch, cfg)
    assert _sorted_by_cell_row_col(first, batch)
    t, c = _dense(first, batch.shape)
    assert first.slot_col is not None                 # the packed path: units stay per slot
    assert _bits_equal(first.values, values) and _bits_equal(first.dense_units(batch.shape[1]), units)
    assert _bits_equal(t, trade) and _bits_equal(c, cost)
    assert np.count_nonzero(trade) > 50

    _, liq = cell_returns(batch, first, cfg.liquidation_floor)
    assert bool(liq) == (case is _hard_case)
    run = vbt_adapter.book_liquidations(batch, liq, cfg, first)
    units_l, trade_l, cost_l = _old_book_liquidations(batch, liq, cfg, values, units, trade, cost)
    assert _sorted_by_cell_row_col(run, batch)
    t, c = _dense(run, batch.shape)
    assert _bits_equal(run.dense_units(batch.shape[1]), units_l) and _bits_equal(t, trade_l)
    assert _bits_equal(c, cost_l)
    if case is _hard_case:
        assert (batch.bust_row >= 0).any()
        assert np.signbit(trade_l[list(liq.values())[0]]).any()    # a -0.0 at the liquidation close


def test_reference_records_keep_every_nonzero_bit():
    px, plans, cfg = _hard_case()
    batch = _batch(px, plans, cfg)
    run = run_reference(batch, cfg)
    assert _sorted_by_cell_row_col(run, batch) and len(run.trade) > 50
    rng = np.random.default_rng(0)
    trade = np.where(rng.random(batch.shape) < 0.05, rng.normal(size=batch.shape), 0.0)
    cost = np.where(rng.random(batch.shape) < 0.05, rng.random(batch.shape), 0.0)
    trade[3, 2], cost[4, 1] = -0.0, -0.0          # a signed zero is a value to keep
    row, col, t, c = records_from_dense(trade, cost, batch.col_group)
    back_t, back_c = np.zeros(batch.shape), np.zeros(batch.shape)
    back_t[row, col], back_c[row, col] = t, c
    assert _bits_equal(back_t, trade) and _bits_equal(back_c, cost)
    key = (batch.col_group[col] * batch.shape[0] + row) * batch.shape[1] + col
    assert np.all(np.diff(key) > 0)
