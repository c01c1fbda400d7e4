"""Sparse order schedule and one-pass packing (issue 23, third round) against the code they replaced.

The oracle is the code before the change, kept here verbatim as plain Python (it was numba-compiled):
``compile_batch`` building the dense (bars x columns) NaN target with ``_cell_targets_nb`` and the
delisting closes; ``packing.pack`` scanning that array for pieces (``_pieces_nb``), assigning slots
after a sort (``_assign_nb``), mapping occupants and price sources (``_maps_nb``); and
``packing.packed_orders`` gathering the slot orders and prices (``_packed_orders_nb``). The new order
records written back into a dense array must equal the old target bit for bit (-0.0 included), and
the new ``pack`` must give the same pieces, slots, occupants, orders and prices, on the hard fixture
of ``test_sim_kernels`` (gap 2, late listing, delisting, bust, several atoms on one symbol), on a
benchmark-shaped batch (100 assets, one logic and direction per asset and cell) and on random
literal schedules.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contracts.enums import Direction
from simulation import packing, vbt_adapter
from simulation.schedule import _DIR_SIGN, _gate_key, compile_batch, compute_gates, panel_arrays
from tests.simulation.sim_helpers import pack_dense
from tests.simulation.test_sim_kernels import _hard_case


# -- the code before the change (plain Python copies of the numba kernels) --------------------------------

def _old_cell_targets(target, lo, wk, fills, gates, gate_col, sign, tradable, sym, b0, end_bar):
    """Write one cell's fill and gate-change orders into ``target[:, lo:lo+m]`` (see module docstring).

    ``wk``: (windows, m) weight of each of the cell's columns in each window; ``fills``: fill bar per
    window (increasing); ``gates``: all panel bars x gate keys, ``gate_col``: gate key of each column;
    ``sign``: d per column; ``tradable``: panel bars x symbols, ``sym``: symbol of each column (no order
    where the close is not tradable: the weight stays in cash); ``end_bar``: the cell's last test bar.
    Target = ``(d * w) * g``.
    """
    nk, m = wk.shape
    for k in range(nk):  # fill: set this window's atoms, close the previous window's others
        f = fills[k]
        for j in range(m):
            w = wk[k, j]
            if not tradable[f, sym[j]]:
                continue
            if w > 0.0:
                target[f - b0, lo + j] = sign[j] * w * gates[f + 1, gate_col[j]]
            elif k > 0 and wk[k - 1, j] > 0.0:
                target[f - b0, lo + j] = 0.0
    k = 0
    for t in range(fills[0] + 1, end_bar):  # closes after the first fill, before the last test bar
        while k + 1 < nk and fills[k + 1] < t:
            k += 1          # the window whose holdings are live at close t (last fill before t)
        if k + 1 < nk and fills[k + 1] == t:
            continue        # a fill bar: set above
        for j in range(m):
            w = wk[k, j]
            if w > 0.0 and tradable[t, sym[j]]:
                nxt = gates[t + 1, gate_col[j]]
                if nxt != gates[t, gate_col[j]]:   # g_{t+1} != g_t on a held atom
                    target[t - b0, lo + j] = sign[j] * w * nxt




def _old_target(closes, plans, gates, gate_keys, panel):
    """The dense target of the old ``compile_batch`` (its schedule part, verbatim)."""
    val, tradable_sym, last_sym, bust_sym = panel
    n_bars = len(closes)
    sym_col = {s: j for j, s in enumerate(closes.columns)}
    b0 = min(p.start_bar for p in plans)
    b1 = max(p.end_bar for p in plans)
    rows = b1 - b0 + 1
    col_group, col_atom, col_symbol, col_sign, col_gate, col_sym = [], [], [], [], [], []
    weights_of = []
    for gi, p in enumerate(plans):
        cols = {}
        lo = len(col_atom)
        ks, js, ws = [], [], []
        for k, wp in enumerate(p.windows):
            weights = wp.weights
            for a in wp.atoms:
                w = weights.get(a.id, 0.0)
                if w > 0.0:
                    key = (a.id, a.symbol)
                    j = cols.get(key)
                    if j is None:
                        j = cols[key] = len(col_atom)
                        col_group.append(gi)
                        col_atom.append(a.id)
                        col_symbol.append(a.symbol)
                        col_sign.append(_DIR_SIGN.get(a.direction) or Direction(a.direction).sign)
                        col_gate.append(gate_keys[_gate_key(a)])
                        col_sym.append(sym_col[a.symbol])
                    ks.append(k)
                    js.append(j)
                    ws.append(w)
        weights_of.append((lo, len(col_atom), ks, js, ws))
    n_cols = len(col_atom)
    col_sym_a = np.asarray(col_sym, dtype=np.int64)
    col_group_a = np.asarray(col_group, dtype=np.int64)
    target = np.full((rows, n_cols), np.nan)
    sign_a = np.asarray(col_sign, dtype=np.float64)
    gate_a = np.asarray(col_gate, dtype=np.int64)
    gates = np.ascontiguousarray(gates, dtype=np.float64)
    for p, (lo, hi, ks, js, ws) in zip(plans, weights_of):
        if hi == lo:
            continue
        wk = np.zeros((len(p.windows), hi - lo))
        wk[np.asarray(ks, dtype=np.int64), np.asarray(js, dtype=np.int64) - lo] = ws
        fills = np.array([wp.window.fill_bar for wp in p.windows], dtype=np.int64)
        _old_cell_targets(target, lo, wk, fills, gates, gate_a[lo:hi], sign_a[lo:hi], tradable_sym,
                          col_sym_a[lo:hi], b0, p.end_bar)
    if n_cols:
        last_c = last_sym[col_sym_a]
        start_g = np.array([p.start_bar for p in plans], dtype=np.int64)[col_group_a]
        end_g = np.array([p.end_bar for p in plans], dtype=np.int64)[col_group_a]
        inside = (last_c < n_bars - 1) & (start_g <= last_c) & (last_c < end_g)
        inside &= tradable_sym[last_c, col_sym_a]
        target[last_c[inside] - b0, np.flatnonzero(inside)] = 0.0
    return target, col_group_a


def _old_pieces(target):
    """Pieces of every column, read in row-major order (the array's own layout) with one open/start
    state per column; sized by a first pass (a piece starts at a non-zero order), so no array grows.
    Closed pieces come out by end row, then the pieces still open at the last row by column; ``pack``
    orders them itself."""
    n, c = target.shape
    cap = 0
    for i in range(n):
        for j in range(c):
            v = target[i, j]
            if v == v and v != 0.0:
                cap += 1
    col = np.empty(cap, np.int64)
    start = np.empty(cap, np.int64)
    end = np.empty(cap, np.int64)
    closed = np.empty(cap, np.bool_)
    open_ = np.zeros(c, np.bool_)
    s = np.zeros(c, np.int64)
    k = 0
    for i in range(n):
        for j in range(c):
            v = target[i, j]
            if v != v:
                continue
            if v != 0.0:
                if not open_[j]:
                    open_[j] = True
                    s[j] = i
            elif open_[j]:
                col[k], start[k], end[k], closed[k] = j, s[j], i, True
                k += 1
                open_[j] = False
    for j in range(c):
        if open_[j]:
            col[k], start[k], end[k], closed[k] = j, s[j], n - 1, False
            k += 1
    return col[:k], start[:k], end[:k], closed[:k]




def _old_assign(p_col, p_start, p_end, col_group, n_groups):
    """First-fit slots per group, pieces taken in (group, start row, column) order (a unique key, so the
    result does not depend on the order the pieces are given in). Returns (slot per piece (global), slot
    count per group)."""
    n_p = len(p_col)
    slot = np.empty(n_p, np.int64)
    counts = np.zeros(n_groups, np.int64)
    grp = np.empty(n_p, np.int64)
    for p in range(n_p):
        grp[p] = col_group[p_col[p]]
    # order: group, start, column
    key = np.empty(n_p, np.int64)
    big = np.int64(p_start.max() + 1) if n_p else np.int64(1)
    ncol = np.int64(len(col_group))
    for p in range(n_p):
        key[p] = (grp[p] * big + p_start[p]) * ncol + p_col[p]
    order = np.argsort(key, kind="mergesort")
    ends = np.empty(max(n_p, 1), np.int64)
    g_prev = -1
    n_s = 0
    for q in range(n_p):
        p = order[q]
        g = grp[p]
        if g != g_prev:
            n_s = 0
            g_prev = g
        s_found = -1
        for s in range(n_s):
            if ends[s] < p_start[p]:
                s_found = s
                break
        if s_found < 0:
            s_found = n_s
            n_s += 1
        ends[s_found] = p_end[p]
        slot[p] = s_found
        if n_s > counts[g]:
            counts[g] = n_s
    offset = np.zeros(n_groups, np.int64)
    for g in range(1, n_groups):
        offset[g] = offset[g - 1] + counts[g - 1]
    for p in range(n_p):
        slot[p] += offset[grp[p]]
    return slot, counts




def _old_maps(n, n_slots, p_col, p_slot, p_start, p_end, order):
    occ = np.full((n, n_slots), -1, np.int64)
    src = np.full((n, n_slots), -1, np.int64)
    for q in range(len(order)):
        p = order[q]
        s = p_slot[p]
        for i in range(p_start[p], p_end[p] + 1):
            occ[i, s] = p_col[p]
    for s in range(n_slots):
        cur = -1
        for i in range(n):          # forward fill the last piece's column over idle rows
            if occ[i, s] >= 0:
                cur = occ[i, s]
            src[i, s] = cur
        first = -1
        for i in range(n):          # rows before the first piece take the first piece's column
            if occ[i, s] >= 0:
                first = occ[i, s]
                break
        for i in range(n):
            if src[i, s] >= 0:
                break
            src[i, s] = first
    return occ, src




def _old_pack(target, col_group, n_groups):
    """The old ``packing.pack`` (without its dataclass)."""
    t = np.ascontiguousarray(target, dtype=np.float64)
    grp = np.ascontiguousarray(col_group, dtype=np.int64)
    p_col, p_start, p_end, p_closed = _old_pieces(t)
    p_slot, counts = _old_assign(p_col, p_start, p_end, grp, int(n_groups))
    n_slots = int(counts.sum())
    order = np.lexsort((p_start, p_slot))
    occ, src = _old_maps(t.shape[0], n_slots, p_col, p_slot, p_start, p_end, order)
    slot_group = np.repeat(np.arange(n_groups, dtype=np.int64), counts)
    return dict(slot_group=slot_group, occ=occ, src=src, piece_col=p_col[order], piece_slot=p_slot[order],
                piece_start=p_start[order], piece_end=p_end[order], piece_closed=p_closed[order])


def _old_packed_orders(target, price, col_sym, occ, src):
    n, n_s = occ.shape
    size = np.empty((n, n_s))
    px = np.empty((n, n_s))
    for i in range(n):
        for s in range(n_s):
            j = occ[i, s]
            size[i, s] = target[i, j] if j >= 0 else np.nan
            px[i, s] = price[i, col_sym[src[i, s]]]
    return size, px




# -- cases ------------------------------------------------------------------------------------------------

def _bench_case(n_cells: int = 6, n_windows: int = 12):
    """The simulation benchmark's shape, smaller (``benchmarks/simulation.py``'s ``build``)."""
    from benchmarks.simulation import build
    closes, plans = build(n_cells, n_windows, n_atoms=20, n_assets=100, step=20, train=60, seed=5)
    return closes, plans, 1


def _hard():
    px, plans, cfg = _hard_case()
    return px, plans, cfg.gap


CASES = {"hard": _hard, "bench": _bench_case}


@pytest.fixture(scope="module", params=sorted(CASES))
def compiled(request):
    closes, plans, gap = CASES[request.param]()
    gates, keys = compute_gates(closes, plans, gap)
    pnl = panel_arrays(closes)
    batch = compile_batch(closes, plans, gates, keys, pnl)
    old, old_group = _old_target(closes, plans, gates, keys, pnl)
    return batch, old, old_group


def _bits(a):
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


def test_order_records_equal_the_old_dense_target(compiled):
    batch, old, old_group = compiled
    assert np.array_equal(batch.col_group, old_group)
    assert batch.shape == old.shape
    # records: unique (row, column), sorted by cell, row, column, none NaN
    key = (batch.col_group[batch.ord_col] * batch.shape[0] + batch.ord_row) * batch.shape[1] + batch.ord_col
    assert np.all(np.diff(key) > 0) and not np.isnan(batch.ord_val).any()
    dense = batch.target_matrix()
    assert np.array_equal(_bits(dense), _bits(old))          # NaN payloads and -0.0 included
    zero = batch.ord_val == 0.0
    assert len(batch.ord_val) > 100 and zero.any()
    assert np.signbit(batch.ord_val[zero]).any()       # a SHORT atom filled at gate 0: -0.0, kept as such


def test_one_pass_packing_equals_the_old_scan_and_sort(compiled):
    batch, old, _ = compiled
    G = len(batch.cell_ids)
    pk, size, price = vbt_adapter.pack_batch(batch)
    ref = _old_pack(old, batch.col_group, G)
    for name in ("slot_group", "occ", "piece_col", "piece_slot", "piece_start", "piece_end", "piece_closed"):
        assert np.array_equal(getattr(pk, name), ref[name]), name
    assert pk.occ.dtype == ref["occ"].dtype == np.int64
    o_size, o_price = _old_packed_orders(old, batch.sym_price, batch.col_sym, ref["occ"], ref["src"])
    assert np.array_equal(_bits(size), _bits(o_size)) and np.array_equal(_bits(price), _bits(o_price))
    # every record is in the slot its column occupies at its row, or dropped (a zero order on nothing)
    kept = pk.rec_slot >= 0
    assert np.array_equal(pk.occ[batch.ord_row[kept], pk.rec_slot[kept]], batch.ord_col[kept])
    assert (batch.ord_val[~kept] == 0.0).all()
    assert pk.n_slots < batch.shape[1]


@pytest.mark.parametrize("seed", range(6))
def test_one_pass_packing_on_random_schedules(seed):
    rng = np.random.default_rng(seed)
    n, c, g = 90, 24, 4
    target = np.where(rng.random((n, c)) < 0.12, rng.choice([0.0, -0.0, 0.1, -0.2, 0.3], (n, c)), np.nan)
    groups = np.repeat(np.arange(g), c // g)
    if seed % 2:
        target[:, groups == 2] = np.nan                     # a cell without any order: no slot
    price = rng.random((n, 5)) + 0.5
    col_sym = rng.integers(0, 5, c)
    pk, size, px = pack_dense(target, groups, g, price, col_sym)
    ref = _old_pack(target, groups, g)
    for name in ("slot_group", "occ", "piece_col", "piece_slot", "piece_start", "piece_end", "piece_closed"):
        assert np.array_equal(getattr(pk, name), ref[name]), name
    o_size, o_px = _old_packed_orders(target, price, col_sym, ref["occ"], ref["src"])
    assert np.array_equal(_bits(size), _bits(o_size)) and np.array_equal(_bits(px), _bits(o_px))


def test_packing_of_a_batch_without_orders():
    target = np.full((5, 3), np.nan)
    pk, size, px = pack_dense(target, np.array([0, 0, 1]), 2, np.ones((5, 2)), np.array([0, 1, 1]))
    assert pk.n_slots == 0 and size.shape == px.shape == pk.occ.shape == (5, 0)
