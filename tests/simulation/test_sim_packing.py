"""Column recycling of the vectorbt call (simulation.packing): pieces, slots, and packed == unpacked."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulation import SimulationConfig, packing, vbt_adapter
from simulation.reference import RawRun
from simulation.schedule import Batch, compile_batch, compute_gates, panel_arrays
from tests.simulation.sim_helpers import dense_records, pack_dense, panel, random_plan

NAN = np.nan


def test_pieces_and_slots_on_a_literal_schedule():
    # group 0: columns 0..2, group 1: column 3
    target = np.array([
        #  c0    c1    c2    c3
        [0.5, -0.5, NAN, 0.2],   # row 0: c0, c1 open; c3 opens
        [NAN, NAN, NAN, NAN],
        [0.0, NAN, 0.0, NAN],    # row 2: c0 closes; c2's zero order is a no-op (holds nothing)
        [NAN, 0.0, 0.3, 0.0],    # row 3: c1 closes, c2 opens (same bar: needs another slot than c1)
        [0.4, NAN, NAN, NAN],    # row 4: c0 reopens (a second piece)
        [NAN, NAN, NAN, NAN],
    ])
    price_m = np.arange(24, dtype=float).reshape(6, 4) + 1
    pk, size, price = pack_dense(target, np.array([0, 0, 0, 1]), 2, price_m)
    pieces = sorted(zip(pk.piece_col.tolist(), pk.piece_start.tolist(), pk.piece_end.tolist(),
                        pk.piece_closed.tolist()))
    assert pieces == [(0, 0, 2, True), (0, 4, 5, False), (1, 0, 3, True), (2, 3, 5, False), (3, 0, 3, True)]
    # first fit by start: c0@0-2 -> slot 0, c1@0-3 -> slot 1, c2@3-5 -> slot 0 (free after row 2),
    # c0@4-5 -> slot 1 (free after row 3); group 1 gets its own slot 2
    assert pk.slot_group.tolist() == [0, 0, 1]
    assert pk.occ.tolist() == [[0, 1, 3], [0, 1, 3], [0, 1, 3], [2, 1, 3], [2, 0, -1], [2, 0, -1]]
    # price source: the occupant, else the last occupant
    assert price[:, 2].tolist() == price_m[:, 3].tolist()
    assert np.isnan(size[1]).all() and size[0].tolist() == [0.5, -0.5, 0.2]
    assert size[2, 0] == 0.0 and size[3].tolist()[:2] == [0.3, 0.0] and size[4, 1] == 0.4
    assert price[3, 0] == 3 * 4 + 2 + 1 and price[4, 1] == 4 * 4 + 0 + 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slots_never_overlap_and_are_minimal(seed):
    rng = np.random.default_rng(seed)
    n, c = 120, 30
    target = np.where(rng.random((n, c)) < 0.1, rng.choice([0.0, 0.1, -0.2], (n, c)), np.nan)
    groups = np.repeat([0, 1, 2], c // 3)
    pk, _, _ = pack_dense(target, groups, 3)
    # each logical column's pieces are in some slot over exactly their rows; no slot holds two at a row
    occupied = np.zeros((n, c), dtype=int)
    for col, s, st, en in zip(pk.piece_col, pk.piece_slot, pk.piece_start, pk.piece_end):
        assert (pk.occ[st:en + 1, s] == col).all()
        assert groups[col] == pk.slot_group[s]
        occupied[st:en + 1, col] += 1
    assert occupied.max() <= 1
    assert (pk.occ >= 0).sum() == occupied.sum()
    # first fit by start is optimal on intervals: slots per group = max pieces alive at one row
    for g in range(3):
        alive = occupied[:, groups == g].sum(axis=1).max()
        assert (pk.slot_group == g).sum() == alive


def _batch(seed: int, n_cells: int = 3):
    px = panel(240, 6, seed=seed, vol=0.05)
    plans = [random_plan(f"c{i}", px, 60 + 10 * i, 20, 4, seed=seed + i) for i in range(n_cells)]
    gates, keys = compute_gates(px, plans, 1)
    return compile_batch(px, plans, gates, keys, panel_arrays(px))


def _run(batch, cfg, pack):
    """``vbt_adapter._simulate`` as (values, units per logical column, order records)."""
    values, units, slot_col, slot_cell, *rec = vbt_adapter._simulate(batch, cfg, pack=pack)
    run = RawRun(values, units, *rec, slot_col=slot_col, slot_cell=slot_cell)
    return (values, run.dense_units(batch.shape[1]), *rec)


@pytest.mark.parametrize("seed,costs", [(3, False), (4, True)])
def test_packed_equals_one_column_per_atom(seed, costs):
    batch = _batch(seed)
    cfg = SimulationConfig(fees=0.001 if costs else 0.0, slippage=0.002 if costs else 0.0)
    a, b = _run(batch, cfg, True), _run(batch, cfg, False)
    assert vbt_adapter.pack_batch(batch)[0].n_slots < batch.shape[1]
    # the only difference is the float summation order of the group value over its columns (~1e-16)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)


def _cut_close_batch() -> Batch:
    """One cell: LONG A and SHORT B at 0.5 each, B rises 2.5x, then both are replaced by LONG C.

    With a 1% fee and no credit line to speak of, the buy-to-cover of B is cut by cash, so B's piece
    does not end flat at its closing order."""
    n = 7
    price = np.ones((n, 3))
    price[3:, 1] = 2.5
    target = np.full((n, 3), np.nan)
    target[1, :2] = [0.5, -0.5]
    target[4] = [0.0, 0.0, 1.0]
    row, col, val = dense_records(target, np.zeros(3, dtype=np.int64))
    return Batch(b0=0, dates=pd.date_range("2022-01-01", periods=n, freq="D", tz="UTC"), sym_price=price,
                 col_sym=np.arange(3), n_rows=n, ord_row=row, ord_col=col, ord_val=val, bust_row=np.full(3, -1),
                 delist_row=np.full(3, -1), col_group=np.zeros(3, dtype=np.int64), col_atom=["A", "B", "C"],
                 col_symbol=["A", "B", "C"], col_sign=np.array([1.0, -1.0, 1.0]), cell_ids=["c0"],
                 start_row=np.array([0]), end_row=np.array([n - 1]), window_of_row=[np.zeros(n - 1, dtype=np.int64)],
                 n_windows=np.array([1]))


def test_a_close_cut_by_cash_falls_back_to_one_column_per_atom():
    batch = _cut_close_batch()
    cfg = SimulationConfig(fees=0.01, slippage=0.0, credit_line=1e-9)
    pk, size, price = vbt_adapter.pack_batch(batch)
    out = vbt_adapter._from_orders(size, price, pk.slot_group, 2, cfg)
    assert len(packing.unclosed_pieces(out[1], pk)) == 1      # B still holds units after its close
    a, b = _run(batch, cfg, True), _run(batch, cfg, False)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert a[1][-1, 1] < 0          # the remainder of the short is still held, as vectorbt left it
