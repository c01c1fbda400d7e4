"""The numba kernels of the simulation path against the plain numpy code they replaced (issue 23).

The schedule kernel (``schedule._orders_nb``, its records written into the dense target) and
the long-frame kernel (``results._long_rows_nb``) must give bit-identical arrays and frames to the
numpy implementations below (the code before issue 23, kept here as independent oracles: numpy
``nonzero`` / ``np.add.reduceat`` / fancy indexing instead of loops). The fixture has fees, slippage,
a gap of 2, a late listing, a delisting, a bust, an asset collapsing towards 0 (liquidations at a
floor of -30%) and several atoms on one symbol in a cell (exposure summed over atoms). Batched
``simulate`` must also equal one call per cell exactly (cells are independent).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contracts import SimulatorKind
from simulation import SimulationConfig, simulate
from simulation.reference import run_reference
from simulation.results import Labels, _sum_like_numpy, batch_frames, cell_returns, long_frames
from simulation.schedule import compile_batch, compute_gates, panel_arrays
from tests.simulation.sim_helpers import panel, random_plan


def _hard_case():
    px = panel(320, 8, seed=7, vol=0.05)
    px.iloc[:40, 1] = np.nan                                   # listed late
    px.iloc[230:, 4] = np.nan                                  # delisted
    px.iloc[190, 5] = 0.0                                      # bust
    px.iloc[191:, 5] = np.nan
    px.iloc[150:, 6] = px.iloc[150, 6] * np.exp(-0.12 * np.arange(1, 171))   # collapses towards 0
    plans = [random_plan(f"c{i}", px, 60 + 10 * i, 15, 5, seed=100 + i, gap=2) for i in range(6)]
    cfg = SimulationConfig(fees=0.001, slippage=0.002, gap=2, liquidation_floor=-0.3)
    return px, plans, cfg


@pytest.fixture(scope="module")
def case():
    px, plans, cfg = _hard_case()
    gates, keys = compute_gates(px, plans, cfg.gap)
    pnl = panel_arrays(px)
    batch = compile_batch(px, plans, gates, keys, pnl)
    return px, plans, cfg, gates, keys, pnl, batch


def _old_targets(px, plans, gates, keys, pnl, batch) -> np.ndarray:
    """The schedule as the numpy code before issue 23 wrote it (per cell, then delistings, then NaN
    where the close is not tradable)."""
    from simulation.schedule import _gate_key
    val, tradable_sym, last_sym, _ = pnl
    n_bars = len(px)
    target = np.full(batch.shape, np.nan)
    sym_col = {s: j for j, s in enumerate(px.columns)}
    for gi, p in enumerate(plans):
        cols = {(batch.col_atom[j], batch.col_symbol[j]): j for j in np.flatnonzero(batch.col_group == gi)}
        lo, hi = min(cols.values()), max(cols.values()) + 1
        m = hi - lo
        gate_of = {}
        for wp in p.windows:
            for a in wp.atoms:
                gate_of.setdefault((a.id, a.symbol), keys[_gate_key(a)])
        g = gates[:, [gate_of[(batch.col_atom[j], batch.col_symbol[j])] for j in range(lo, hi)]]
        sign = batch.col_sign[lo:hi]
        wk = np.zeros((len(p.windows), m))
        for k, wp in enumerate(p.windows):
            for a in wp.atoms:
                w = wp.weights.get(a.id, 0.0)
                if w > 0.0:
                    wk[k, cols[(a.id, a.symbol)] - lo] = w
        fills = np.array([wp.window.fill_bar for wp in p.windows], dtype=np.int64)
        for k, f in enumerate(fills):
            prev = wk[k - 1] > 0 if k else np.zeros(m, dtype=bool)
            target[f - batch.b0, lo:hi] = np.where(wk[k] > 0, sign * wk[k] * g[f + 1], np.where(prev, 0.0, np.nan))
        t = np.arange(fills[0] + 1, p.end_bar)
        k_of_t = np.searchsorted(fills, t, side="left") - 1
        w_t = wk[k_of_t]
        nxt = g[t + 1]
        mask = (nxt != g[t]) & (w_t > 0) & ~np.isin(t, fills)[:, None]
        block = target[t[0] - batch.b0:t[-1] + 1 - batch.b0, lo:hi]
        block[mask] = (sign * w_t * nxt)[mask]
        for j in cols.values():
            sj = sym_col[batch.col_symbol[j]]
            L = last_sym[sj]
            if L < n_bars - 1 and p.start_bar <= L < p.end_bar and tradable_sym[L, sj]:
                target[L - batch.b0, j] = 0.0
    cs = [sym_col[s] for s in batch.col_symbol]
    target[~tradable_sym[batch.b0:batch.b0 + batch.shape[0]][:, cs]] = np.nan
    return target


def test_target_kernel_equals_numpy_schedule(case):
    px, plans, cfg, gates, keys, pnl, batch = case
    old = _old_targets(px, plans, gates, keys, pnl, batch)
    target = batch.target_matrix()
    assert np.array_equal(target, old, equal_nan=True)
    assert np.isfinite(target).sum() > 100            # the schedule is not trivially empty


def test_packed_orders_equal_fancy_indexing(case):
    *_, batch = case
    from simulation import vbt_adapter
    pk, size, px = vbt_adapter.pack_batch(batch)
    target = batch.target_matrix()
    rows = np.arange(batch.shape[0])[:, None]
    assert np.array_equal(size, np.where(pk.occ >= 0, target[rows, np.maximum(pk.occ, 0)], np.nan),
                          equal_nan=True)
    # a slot's price is its occupant's, else its last occupant's, else (before the first) its first's
    src = np.where(pk.occ >= 0, pk.occ, -1)
    for s in range(pk.n_slots):
        on = np.flatnonzero(src[:, s] >= 0)
        src[:on[0], s] = src[on[0], s]
        for i in range(on[0] + 1, len(src)):
            if src[i, s] < 0:
                src[i, s] = src[i - 1, s]
    assert np.array_equal(px, batch.price_matrix()[rows, src])


@pytest.mark.parametrize("n", list(range(1, 20)) + [64, 128, 129])
def test_sum_like_numpy_matches_reduceat(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n) * 10.0 ** rng.integers(-8, 8, size=n)   # wide magnitudes: order matters
    assert _sum_like_numpy(x, n) == np.add.reduceat(x[None, :], [0], axis=1)[0, 0]


def _dense(run, shape):
    """(n, C) trade and cost arrays of a run's order records (0 where there is no record)."""
    trade, cost = np.zeros(shape), np.zeros(shape)
    assert len(set(zip(run.order_row.tolist(), run.order_col.tolist()))) == len(run.order_row)
    trade[run.order_row, run.order_col] = run.trade
    cost[run.order_row, run.order_col] = run.cost
    return trade, cost


def _old_long_frames(batch, run, labels):
    """Positions and exposure as the numpy code before issue 23 built them (per cell: nonzero, then a
    stable sort by symbol and ``np.add.reduceat`` when several atoms share a symbol)."""
    n_groups = len(batch.cell_ids)
    bounds = np.searchsorted(batch.col_group, np.arange(n_groups + 1), side="left")
    cell_code = labels.cells.get_indexer(pd.Index(batch.cell_ids, dtype=object))
    sym_code = labels.symbols.get_indexer(pd.Index(batch.col_symbol, dtype=object))
    atom_code = labels.atoms.get_indexer(pd.Index(batch.col_atom, dtype=object))
    P, E = [], []
    for g in range(n_groups):
        s, e = int(batch.start_row[g]), int(batch.end_row[g])
        lo, hi = int(bounds[g]), int(bounds[g + 1])
        trade, cost = _dense(run, batch.shape)
        units = run.dense_units(batch.shape[1])
        u, t, c = units[s:e + 1, lo:hi], trade[s:e + 1, lo:hi], cost[s:e + 1, lo:hi]
        held = u != 0
        ri, ci = np.nonzero(held | (t != 0))
        P.append(pd.DataFrame({"cell": cell_code[g], "row": s + ri, "col": lo + ci, "units": u[ri, ci],
                               "trade": t[ri, ci], "cost": c[ri, ci]}))
        sc = sym_code[lo:hi]
        by_sym = np.argsort(sc, kind="stable")
        usym = sc[by_sym]
        pv = (u * batch.price_matrix()[s:e + 1, lo:hi])[:, by_sym]
        hs = held[:, by_sym]
        if len(usym) > 1 and np.any(usym[1:] == usym[:-1]):
            starts = np.flatnonzero(np.r_[True, usym[1:] != usym[:-1]])
            pv = np.add.reduceat(pv, starts, axis=1)
            hs = np.logical_or.reduceat(hs, starts, axis=1)
            usym = usym[starts]
        ri, si = np.nonzero(hs)
        E.append(pd.DataFrame({"cell": cell_code[g], "row": s + ri, "sym": usym[si],
                               "net": pv[ri, si] / run.values[s + ri, g]}))
    p, x = pd.concat(P, ignore_index=True), pd.concat(E, ignore_index=True)
    cat = pd.Categorical.from_codes
    positions = pd.DataFrame({
        "cell_id": cat(p["cell"].to_numpy(np.int64), categories=labels.cells),
        "date": batch.dates[p["row"].to_numpy(np.int64)],
        "atom_id": cat(atom_code[p["col"].to_numpy(np.int64)], categories=labels.atoms),
        "symbol": cat(sym_code[p["col"].to_numpy(np.int64)], categories=labels.symbols),
        "units": p["units"].to_numpy(np.float64), "trade": p["trade"].to_numpy(np.float64),
        "cost": p["cost"].to_numpy(np.float64)})
    exposure = pd.DataFrame({
        "cell_id": cat(x["cell"].to_numpy(np.int64), categories=labels.cells),
        "date": batch.dates[x["row"].to_numpy(np.int64)],
        "symbol": cat(x["sym"].to_numpy(np.int64), categories=labels.symbols),
        "net_exposure": x["net"].to_numpy(np.float64)})
    return positions, exposure


@pytest.mark.parametrize("kind", list(SimulatorKind))
def test_long_frame_kernel_equals_numpy_frames(case, kind):
    px, plans, cfg, gates, keys, pnl, batch = case
    if kind is SimulatorKind.REFERENCE:
        run = run_reference(batch, cfg)
        rets, liq = cell_returns(batch, run, cfg.liquidation_floor)
    else:
        from simulation import vbt_adapter
        first = vbt_adapter.run_vectorbt(batch, cfg)
        rets, liq = cell_returns(batch, first, cfg.liquidation_floor)
        run = vbt_adapter.book_liquidations(batch, liq, cfg, first)
    assert liq, "the fixture must liquidate a cell"
    labels = Labels(cells=pd.Index(sorted(batch.cell_ids), dtype=object),
                    atoms=pd.Index(sorted(set(batch.col_atom)), dtype=object),
                    symbols=pd.Index(sorted(px.columns), dtype=object))
    fr = batch_frames(batch, run, rets, liq, labels)
    _, got_p, got_x = long_frames([fr], labels)
    positions, exposure = _old_long_frames(batch, run, labels)
    for got, old in ((got_p, positions), (got_x, exposure)):
        for c in ("cell_id", "atom_id", "symbol"):
            if c in old:
                old[c] = old[c].astype("string")       # the labels as the schema's string columns
        old["date"] = old["date"].astype("datetime64[ns, UTC]")   # and dates in ns (as check_frame casts)
        pd.testing.assert_frame_equal(got, old, check_exact=True)
        for c in got.columns:   # floats bit for bit (-0.0 included)
            if got[c].dtype == np.float64:
                assert np.array_equal(got[c].to_numpy().view(np.int64), old[c].to_numpy().view(np.int64))
    # the fixture exercises the several-atoms-on-one-symbol sum
    pairs = pd.DataFrame({"g": batch.col_group, "s": batch.col_symbol})
    assert pairs.duplicated().any()


@pytest.mark.parametrize("kind", list(SimulatorKind))
def test_batched_equals_one_call_per_cell(kind):
    px, plans, cfg = _hard_case()
    res = simulate(px, plans, kind, cfg)
    assert res.summary.liquidated.any() and {e["type"] for e in res.events} >= {"liquidation", "bust_close"}
    one = [simulate(px, [p], kind, cfg) for p in plans]
    for name in ("returns", "positions", "exposure", "summary"):
        cat = pd.concat([getattr(r, name) for r in one], ignore_index=True)
        got = getattr(res, name)
        for c in got.columns:
            if isinstance(got[c].dtype, pd.StringDtype):
                cat[c] = cat[c].astype(got[c].dtype)
        pd.testing.assert_frame_equal(got, cat, check_exact=True)
    assert sorted(map(str, res.events)) == sorted(str(e) for r in one for e in r.events)


@pytest.mark.parametrize("labels", [["c0", "cell_b", "é-ü", ""], ["A"], ["x" * 40, "y"]])
def test_string_columns_equal_astype_string(labels):
    """The label columns taken from their categories give what ``astype("string")`` gives (the code they
    replaced: categoricals cast through ``contracts.schemas._as_string``), dtype and Arrow type included."""
    import pyarrow as pa

    from simulation.results import _strings
    cats = pd.Index(sorted(labels), dtype=object)
    codes = np.random.default_rng(len(labels)).integers(0, len(cats), 500)
    got = pd.Series(_strings(codes, cats))
    want = pd.Series(pd.Categorical.from_codes(codes, categories=cats)).astype("string")
    pd.testing.assert_series_equal(got, want, check_exact=True)
    assert pa.Array.from_pandas(got).type == pa.Array.from_pandas(want).type
    assert len(_strings(np.zeros(0, dtype=np.int64), cats)) == 0
