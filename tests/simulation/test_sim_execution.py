"""Execution model (DESIGN section 3) against hand-computed literals, for both simulators.

Every expected number is worked out in the comment beside it from the prices in the test.
"""
from __future__ import annotations

import numpy as np
import pytest

from contracts import SimulatorKind
from simulation import CellPlan, SimulationConfig, WindowPlan, make_windows, simulate
from tests.simulation.sim_helpers import atom, fixed_plan, frame, returns_of, single_window_plan

KINDS = [SimulatorKind.REFERENCE, SimulatorKind.VECTORBT]
FREE = SimulationConfig(fees=0.0, slippage=0.0)
TOL = 1e-12  # float rounding of a few divisions


@pytest.mark.parametrize("kind", KINDS)
def test_long_atom_two_windows(kind):
    px = frame({"S0": [10, 10, 10, 11, 12, 9, 9, 10, 12, 12]})
    # windows: c=2 (test 3..5), c=5 (test 6..8); bar 9 alone would be <= gap -> dropped
    res = simulate(px, [fixed_plan("c", 10, 3, 3, [(atom("S0"), 1.0)])], kind, FREE)
    # bar 3: cash (fill at its close, 11); 4: 12/11-1; 5: 9/12-1; 6: held from window 0: 9/9-1;
    # 7: 10/9-1; 8: 12/10-1
    np.testing.assert_allclose(returns_of(res, "c"), [0, 1 / 11, -0.25, 0, 1 / 9, 0.2], atol=TOL)
    assert res.returns.window.tolist() == [0, 0, 0, 1, 1, 1]
    pos = res.positions
    assert pos.date.iloc[0] == px.index[3] and abs(pos.units.iloc[0] - 1 / 11) < TOL
    assert abs(res.summary.sim_total_return.iloc[0] - (12 / 11 - 1)) < TOL  # 1/11 units * 12
    ex = res.exposure.set_index("date").net_exposure
    assert abs(ex[px.index[4]] - 1.0) < TOL  # all the value is in S0 (units * 12 / (12/11))


@pytest.mark.parametrize("kind", KINDS)
def test_short_is_held_not_rebalanced_and_profits_on_a_fall(kind):
    px = frame({"S0": [10, 10, 10, 10, 8, 6, 5]})
    res = simulate(px, [single_window_plan("c", 7, [(atom("S0", direction="SHORT"), 1.0)])], kind, FREE)
    # fill at bar 3 close (10): units -0.1, cash 2. V4 = 2 - 0.8 = 1.2; V5 = 2 - 0.6 = 1.4; V6 = 1.5
    # (a daily-rebalanced inverse would earn +25% on bar 5, the held short earns 1.4/1.2-1 = 1/6)
    np.testing.assert_allclose(returns_of(res, "c"), [0, 0.2, 1 / 6, 1.5 / 1.4 - 1], atol=TOL)
    assert (res.positions.units <= 0).all()
    assert res.summary.sim_total_return.iloc[0] > 0
    ex = res.exposure.set_index("date").net_exposure
    assert abs(ex[px.index[4]] - (-0.8 / 1.2)) < TOL  # short value -0.1 * 8 over V4 = 1.2


def _squeeze_panel():
    up = [10.0 * 1.1 ** k for k in range(1, 30)]  # x5 after 17 bars (1.1^17 = 5.05)
    return frame({"S0": [10.0] * 4 + up})


@pytest.mark.parametrize("kind", KINDS)
def test_short_squeeze_loss_exceeds_notional(kind):
    px = _squeeze_panel()
    n = len(px)
    res = simulate(px, [single_window_plan("c", n, [(atom("S0", direction="SHORT"), 0.3)])], kind, FREE)
    # units -0.03 from the close of bar 3 (10), cash 1.3: V_t = 1.3 - 0.03 p_t
    eq = np.cumprod(1 + returns_of(res, "c"))
    p = px.S0.to_numpy()[3:]
    hit = np.flatnonzero(1.3 - 0.03 * p <= 0.0)[0]          # first bar with equity <= 0 (p >= 43.3)
    np.testing.assert_allclose(eq[:hit], (1.3 - 0.03 * p)[:hit], rtol=1e-12)
    loss_x3 = 1 - (1.3 - 0.03 * 30)                              # 0.6 at p = 30 > notional 0.3
    assert loss_x3 > 0.3 and eq[np.flatnonzero(p >= 30)[0]] < 0.7
    # floor -1: liquidated where equity reaches 0; return cut to land exactly on 0, then zeros
    assert res.summary.liquidated.iloc[0]
    assert eq[hit] == 0.0 and (returns_of(res, "c")[hit + 1:] == 0).all()
    ev = [e for e in res.events if e["type"] == "liquidation"]
    assert len(ev) == 1 and ev[0]["bar"] == 3 + hit and ev[0]["equity"] == 0.0
    assert not res.positions[res.positions.date > px.index[3 + hit]].units.any()


@pytest.mark.parametrize("kind", KINDS)
def test_floor_minus_half(kind):
    px = _squeeze_panel()
    cfg = SimulationConfig(fees=0.0, slippage=0.0, liquidation_floor=-0.5)
    res = simulate(px, [single_window_plan("c", len(px), [(atom("S0", direction="SHORT"), 0.3)])], kind, cfg)
    r = returns_of(res, "c")
    eq = np.cumprod(1 + r)
    p = px.S0.to_numpy()[3:]
    hit = np.flatnonzero(1.3 - 0.03 * p <= 0.5)[0]   # HWM = 1.0 (initial capital): floor equity 0.5
    assert abs(eq[hit] - 0.5) < 1e-12 and (r[hit + 1:] == 0).all() and (r >= -1).all()
    liq = res.returns.liquidated.to_numpy()
    assert not liq[:hit].any() and liq[hit:].all()


@pytest.mark.parametrize("kind", KINDS)
def test_delisting_closes_at_last_price(kind):
    nan = np.nan
    px = frame({"S0": [10, 10, 10, 10, 11, 12, 12, 13, 14, 15],
                "S1": [20, 20, 20, 20, 22, 24, 30, nan, nan, nan]})
    res = simulate(px, [single_window_plan("c", 10, [(atom("S0"), 0.5), (atom("S1"), 0.5)])], kind, FREE)
    r = returns_of(res, "c")
    assert np.isfinite(r).all()
    # units: S0 0.05, S1 0.025 (fill at bar 3). V6 = 0.05*12 + 0.025*30 = 1.35, S1 closed at 30 -> cash 0.75
    # V7 = 0.75 + 0.65 = 1.4; V8 = 1.45; V9 = 1.5
    v = np.array([1, 1, 1.1, 1.2, 1.35, 1.4, 1.45, 1.5])
    np.testing.assert_allclose(r, v[1:] / v[:-1] - 1, atol=TOL)
    ev = [e for e in res.events if e["type"] == "delisting_close"]
    assert len(ev) == 1 and ev[0]["bar"] == 6 and ev[0]["symbol"] == "S1" and abs(ev[0]["units"] - 0.025) < TOL
    s1 = res.positions[res.positions.symbol == "S1"]
    assert s1.date.max() == px.index[6] and s1.units.iloc[-1] == 0 and abs(s1.trade.iloc[-1] + 0.025) < TOL


@pytest.mark.parametrize("kind", KINDS)
def test_bust_long_short(kind):
    nan = np.nan
    px = frame({"S0": [10, 10, 10, 10, 10, 10, 10, 0, nan, nan]})
    plans = [single_window_plan("long", 10, [(atom("S0"), 0.5)]),
             single_window_plan("short", 10, [(atom("S0", direction="SHORT"), 1.0)]),
             single_window_plan("all_in", 10, [(atom("S0"), 1.0)])]
    res = simulate(px, plans, kind, FREE)
    # long half: V7 = 0.5 -> -50%, then cash. short: units -0.1, cash 2; V7 = 2 -> +100% (+notional)
    np.testing.assert_allclose(returns_of(res, "long"), [0, 0, 0, 0, -0.5, 0, 0], atol=TOL)
    np.testing.assert_allclose(returns_of(res, "short"), [0, 0, 0, 0, 1.0, 0, 0], atol=TOL)
    # all in: equity 0 at bar 7 -> liquidated at the -100% floor, return exactly -1, then 0
    np.testing.assert_allclose(returns_of(res, "all_in"), [0, 0, 0, 0, -1.0, 0, 0], atol=0)
    summ = res.summary.set_index("cell_id")
    assert summ.liquidated.tolist() == [False, False, True]
    busts = [e for e in res.events if e["type"] == "bust_close"]
    assert {e["cell_id"] for e in busts} == {"long", "short", "all_in"} and all(e["bar"] == 7 for e in busts)
    assert not res.positions[res.positions.date > px.index[7]].units.any()


@pytest.mark.parametrize("kind", KINDS)
def test_costs_recorded(kind):
    cfg = SimulationConfig(fees=0.001, slippage=0.002)
    px = frame({"S0": [10, 10, 10, 10, 10, 10]})
    plans = [single_window_plan("one", 6, [(atom("S0"), 1.0)]),
             single_window_plan("two", 6, [(atom("S0"), 0.5), (atom("S0", direction="SHORT"), 0.5)])]
    res = simulate(px, plans, kind, cfg)
    # one: buy 0.1 units at 10 * 1.002 = 10.02; slippage 0.1*10*0.002 = 0.002, fee 0.001*0.1*10.02
    cost_one = 0.002 + 0.001 * 0.1 * 10.02
    pos = res.positions.set_index("cell_id")
    assert abs(pos.loc["one", "cost"].sum() - cost_one) < 1e-15 and (pos.loc["one", "cost"] > 0).sum() == 1
    np.testing.assert_allclose(returns_of(res, "one"), [-cost_one, 0, 0], atol=1e-15)
    # two atoms on one asset are separate positions: +0.05 and -0.05 units, each pays its own costs
    two = res.positions[res.positions.cell_id == "two"]
    fill = two[two.date == px.index[3]]
    assert sorted(fill.atom_id) == ["S0_rating_LONG", "S0_rating_SHORT"]
    assert sorted(np.round(fill.units, 12)) == [-0.05, 0.05]
    cost_long = 0.05 * 10 * 0.002 + 0.001 * 0.05 * 10.02
    cost_short = 0.05 * 10 * 0.002 + 0.001 * 0.05 * 9.98
    assert abs(two.cost.sum() - (cost_long + cost_short)) < 1e-15
    ex = res.exposure[res.exposure.cell_id == "two"]
    assert (ex.symbol == "S0").all() and np.allclose(ex.net_exposure, 0.0, atol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_carry_over_window_boundary(kind):
    px = frame({"S0": [10, 10, 10, 10, 10, 11, 12, 13, 12, 12, 12, 12],
                "S1": [5, 5, 5, 5, 5, 5, 5, 5, 5, 6, 3, 3]})
    wins = make_windows(12, 3, 4, gap=2)  # c=2 (test 3..6, fill 4), c=6 (test 7..10, fill 8)
    assert [(w.cutoff, w.fill_bar, w.n_test) for w in wins] == [(2, 4, 4), (6, 8, 4)]
    plan = CellPlan(cell_id="c", windows=[
        WindowPlan(window=wins[0], atoms=[atom("S0")], weights={"S0_rating_LONG": 1.0}),
        WindowPlan(window=wins[1], atoms=[atom("S1")], weights={"S1_rating_LONG": 1.0})])
    res = simulate(px, [plan], kind, SimulationConfig(fees=0, slippage=0, gap=2))
    # bars 3,4 cash; 5,6 S0; 7,8 (window 1) still S0 from window 0; 9,10 S1 bought at close 8
    exp = [0, 0, 11 / 10 - 1, 12 / 11 - 1, 13 / 12 - 1, 12 / 13 - 1, 6 / 5 - 1, 3 / 6 - 1]
    np.testing.assert_allclose(returns_of(res, "c"), exp, atol=TOL)
    assert res.returns.window.tolist() == [0] * 4 + [1] * 4
    # TWR stitching: the cell's total return compounds both windows
    assert abs(res.summary.sim_total_return.iloc[0] - (np.prod(1 + np.array(exp)) - 1)) < TOL
