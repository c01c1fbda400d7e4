"""Order schedule: trades only at fills and gate changes; the credit line; no look-ahead."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contracts import SimulatorKind
from market.gates import atom_gates
from simulation import CellPlan, SimulationConfig, WindowPlan, make_windows, simulate
from simulation.schedule import panel_arrays, compile_batch, compute_gates
from tests.simulation.sim_helpers import atom, panel, random_plan

FREE = SimulationConfig(fees=0.0, slippage=0.0)


def test_trades_only_at_fills_and_gate_changes():
    px = panel(300, 3, seed=11, vol=0.04)
    atoms = [atom("S0", "trend"), atom("S1", "mom", "SHORT"), atom("S2", "rev")]
    wins = make_windows(300, 80, 20)
    plan = CellPlan(cell_id="c", windows=[WindowPlan(window=w, atoms=atoms, weights={a.id: 1 / 3 for a in atoms})
                                          for w in wins])
    res = simulate(px, [plan], SimulatorKind.REFERENCE, FREE)
    g = atom_gates(px, atoms, gap=1).to_numpy()  # independent: gates straight from market.gates
    fills = {w.fill_bar for w in wins}
    for j, a in enumerate(atoms):
        changes = {t for t in range(wins[0].fill_bar + 1, wins[-1].test_end) if g[t + 1, j] != g[t, j]}
        traded = res.positions[(res.positions.atom_id == a.id) & (res.positions.trade != 0)].date
        traded = {px.index.get_loc(d) for d in traded}
        assert traded <= fills | changes                  # nothing else trades
        assert changes - fills <= traded                  # every gate change trades
        assert changes, "the price path must switch this gate at least once"
        held = res.positions[res.positions.atom_id == a.id]
        # units after a trade are d * g_{t+1} * w * V_t / p_t: zero exactly when the next gate is 0
        for _, row in held[held.trade != 0].iterrows():
            t = px.index.get_loc(row.date)
            assert (row.units == 0) == (g[t + 1, j] == 0)


@pytest.mark.parametrize("kind", [SimulatorKind.REFERENCE, SimulatorKind.VECTORBT])
def test_gate_switching_on_after_drift_borrows(kind):
    # S0 rallies (LONG rating, w 0.5); S1 falls for 30 bars then rises, so its trend gate turns on late:
    # the buy at 0.5 of the (grown) value needs more cash than is left -> the credit line is used.
    n = 80
    s0 = 10 * np.cumprod(np.r_[1.0, np.full(n - 1, 1.03)])
    s1 = 10 * np.cumprod(np.r_[1.0, np.full(30, 0.99), np.full(n - 31, 1.01)])
    idx = pd.date_range("2022-01-01", periods=n, freq="D", tz="UTC")
    px = pd.DataFrame({"S0": s0, "S1": s1}, index=idx)
    wins = make_windows(n, 22, n - 22)
    a0, a1 = atom("S0"), atom("S1", "trend")
    plan = CellPlan(cell_id="c", windows=[WindowPlan(window=wins[0], atoms=[a0, a1],
                                                     weights={a0.id: 0.5, a1.id: 0.5})])
    res = simulate(px, [plan], kind, FREE)
    ref = simulate(px, [plan], SimulatorKind.REFERENCE, FREE)
    gross = res.exposure.groupby("date").net_exposure.sum()
    assert gross.max() > 1.1  # ~1.14 here: long exposure above the portfolio value = borrowed cash
    np.testing.assert_allclose(res.returns["return"], ref.returns["return"], atol=1e-12)
    if kind is SimulatorKind.VECTORBT:  # without the credit line vectorbt cuts the buy to the cash left
        tight = simulate(px, [plan], kind, SimulationConfig(fees=0.0, slippage=0.0, credit_line=1e-9))
        assert (tight.returns["return"] - ref.returns["return"]).abs().max() > 1e-3


@pytest.mark.parametrize("kind", [SimulatorKind.REFERENCE, SimulatorKind.VECTORBT])
def test_no_lookahead_after_cutoff(kind):
    px = panel(260, 5, seed=3, vol=0.04)
    plans = [random_plan("c", px, 60, 20, 4, seed=9)]
    cut = plans[0].windows[4].window.cutoff
    rng = np.random.default_rng(0)
    bumped = px.copy()
    bumped.iloc[cut + 1:] *= np.exp(rng.normal(0, 0.2, size=bumped.iloc[cut + 1:].shape))
    cfg = SimulationConfig()
    a, b = simulate(px, plans, kind, cfg), simulate(bumped, plans, kind, cfg)
    day = px.index[cut]
    for name in ("returns", "positions", "exposure"):
        fa, fb = getattr(a, name), getattr(b, name)
        pd.testing.assert_frame_equal(fa[fa.date <= day].reset_index(drop=True),
                                      fb[fb.date <= day].reset_index(drop=True), check_exact=True)
    assert not a.returns[a.returns.date > day]["return"].equals(b.returns[b.returns.date > day]["return"])


def test_gate_and_fill_ignore_the_close_they_must_not_see():
    px = panel(200, 2, seed=4, vol=0.04)
    wins = make_windows(200, 60, 20, gap=1)
    atoms = [atom("S0", "trend"), atom("S1", "rating")]
    plan = CellPlan(cell_id="c", windows=[WindowPlan(window=w, atoms=atoms, weights={a.id: 0.5 for a in atoms})
                                          for w in wins])
    c = wins[0].cutoff
    t = 120  # any bar: changing close t-1 must leave g_t (from closes <= t-2) and the order at close t-1 alone

    def target(closes):
        g, k = compute_gates(closes, [plan], 1)
        return g, compile_batch(closes, [plan], g, k, panel_arrays(closes)).target_matrix()

    g0, tg0 = target(px)
    moved = px.copy()
    moved.iloc[t - 1, 0] *= 1.5
    g1, tg1 = target(moved)
    assert np.array_equal(g0[: t + 1], g1[: t + 1])          # g_t unchanged (and every earlier gate)
    b0 = wins[0].cutoff
    np.testing.assert_array_equal(tg0[: t - b0], tg1[: t - b0])  # orders up to close t-1 unchanged
    # the fill is at the close of c + gap, not c: moving close c leaves the first units unchanged ...
    first_units = []
    for bar in (c, c + 1):
        m = px.copy()
        m.iloc[bar, 1] *= 1.5
        r = simulate(m, [plan], SimulatorKind.REFERENCE, FREE).positions
        first_units.append(r[(r.atom_id == "S1_rating_LONG")].units.iloc[0])
    base = simulate(px, [plan], SimulatorKind.REFERENCE, FREE).positions
    u0 = base[base.atom_id == "S1_rating_LONG"].units.iloc[0]
    assert base[base.atom_id == "S1_rating_LONG"].date.iloc[0] == px.index[c + 1]
    assert first_units[0] == u0                               # close c not used: cash 1.0 / close c+1
    assert abs(first_units[1] - u0 / 1.5) < 1e-15             # close c+1 is the fill price
