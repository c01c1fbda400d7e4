"""vectorbt vs the reference simulator on random schedules (hypothesis, small)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import SimulatorKind
from simulation import SimulationConfig, compare_simulators, simulate
from tests.simulation.sim_helpers import panel, random_plan

# frictionless: the two differ only in float summation order (~1e-15 per bar) -> 1e-10 is generous.
FRICTIONLESS_TOL = 1e-10
# with costs: same sizing and cost formulas; vectorbt treats |size| < 1e-12 as no trade (is_close_nb),
# which moves a return by at most ~1e-12 * price * cost rate -> 1e-9 documented in vbt_adapter.
COSTS_TOL = 1e-9


def _panel(seed: int, delist: bool, bust: bool) -> pd.DataFrame:
    px = panel(260, 6, seed=seed, vol=0.05)
    if delist:
        px.iloc[200:, 4] = np.nan       # S4 stops trading after bar 199
    if bust:
        px.iloc[180, 5] = 0.0           # S5 goes to 0 at bar 180
        px.iloc[181:, 5] = np.nan
    return px


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), step=st.sampled_from([5, 20]), gap=st.sampled_from([0, 1, 2]),
       n_atoms=st.integers(2, 6), costs=st.booleans(), delist=st.booleans(), bust=st.booleans(),
       floor=st.sampled_from([-1.0, -0.3]))
def test_vectorbt_matches_reference(seed, step, gap, n_atoms, costs, delist, bust, floor):
    px = _panel(seed, delist, bust)
    plans = [random_plan(f"c{i}", px, 70 + 10 * i, step, n_atoms, seed=seed + i, gap=gap) for i in range(3)]
    cfg = SimulationConfig(fees=0.001 if costs else 0.0, slippage=0.002 if costs else 0.0, gap=gap,
                           liquidation_floor=floor)
    ref = simulate(px, plans, SimulatorKind.REFERENCE, cfg)
    vbt = simulate(px, plans, SimulatorKind.VECTORBT, cfg)
    cmp = compare_simulators(ref, vbt)
    assert cmp["n_cells"] == 3 and cmp["liquidation_mismatch"] == []
    assert cmp["max_abs_return_diff"] <= (COSTS_TOL if costs else FRICTIONLESS_TOL), cmp
    # positions: same rows, same units, trades and costs
    key = ["cell_id", "date", "atom_id"]
    a = ref.positions.sort_values(key).reset_index(drop=True)
    b = vbt.positions.sort_values(key).reset_index(drop=True)
    assert a[key].equals(b[key])
    for c in ("units", "trade", "cost"):
        np.testing.assert_allclose(a[c], b[c], rtol=1e-9, atol=1e-12)
    # SHORT atoms never hold positive units; every cell has its events in both
    short = a.atom_id.str.endswith("_SHORT")
    assert (a.units[short] <= 0).all() and (b.units[short] <= 0).all()
    assert sorted((e["type"], e["cell_id"], e.get("atom_id")) for e in ref.events) == \
        sorted((e["type"], e["cell_id"], e.get("atom_id")) for e in vbt.events)


def test_compare_simulators_reports_difference():
    px = panel(150, 3, seed=5)
    plans = [random_plan("a", px, 60, 20, 3, seed=1)]
    ref = simulate(px, plans, SimulatorKind.REFERENCE, SimulationConfig(fees=0, slippage=0))
    other = simulate(px, plans, SimulatorKind.REFERENCE, SimulationConfig(fees=0.01, slippage=0))
    cmp = compare_simulators(ref, other)
    d = (ref.returns["return"] - other.returns["return"]).abs().max()
    assert cmp["max_abs_return_diff"] == d > 0 and cmp["per_cell"]["a"] == d
