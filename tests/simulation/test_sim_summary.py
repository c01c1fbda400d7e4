"""Summary metrics, chunking, output schemas and input errors."""
from __future__ import annotations

import empyrical
import numpy as np
import pandas as pd
import pytest

from contracts import RUN_SCHEMAS, SimulatorKind, check_frame
from contracts.errors import ConfigError, DataError
from simulation import CellPlan, SimulationConfig, WindowPlan, make_windows, simulate
from tests.simulation.sim_helpers import atom, fixed_plan, panel, random_plan


@pytest.fixture(scope="module")
def runs():
    px = panel(300, 6, seed=21, vol=0.04)
    plans = [random_plan(f"c{i}", px, 60, 20, 5, seed=i) for i in range(4)]
    plans.append(fixed_plan("cash", 300, 60, 20, [(atom("S0"), 0.0)]))
    cfg = SimulationConfig()
    return px, plans, {k: simulate(px, plans, k, cfg) for k in SimulatorKind}


def test_reference_summary_matches_empyrical(runs):
    _, plans, res = runs
    ref = res[SimulatorKind.REFERENCE]
    s = ref.summary.set_index("cell_id")
    for p in plans[:-1]:
        r = ref.returns.loc[ref.returns.cell_id == p.cell_id, "return"].to_numpy()
        # empyrical: Sharpe mean/std(ddof=1)*sqrt(365); max drawdown with the start value in the peak
        assert abs(s.loc[p.cell_id, "sim_sharpe"] - empyrical.sharpe_ratio(r, annualization=365)) < 1e-12
        assert abs(s.loc[p.cell_id, "sim_max_drawdown"] - empyrical.max_drawdown(r)) < 1e-12
        assert abs(s.loc[p.cell_id, "sim_total_return"] - empyrical.cum_returns_final(r)) < 1e-12
    # all-cash cell: documented degenerate status, never NaN
    assert s.loc["cash", "sim_sharpe"] == 0.0 and s.loc["cash", "sim_max_drawdown"] == 0.0
    assert s.loc["cash", "sim_total_return"] == 0.0


def test_vectorbt_summary_conventions(runs):
    _, plans, res = runs
    vb = res[SimulatorKind.VECTORBT]
    s = vb.summary.set_index("cell_id")
    for p in plans[:-1]:
        r = vb.returns.loc[vb.returns.cell_id == p.cell_id, "return"].to_numpy()
        w = np.cumprod(1 + r)
        # vectorbt's stated conventions: same Sharpe (year_freq 365 days / 1D bars); drawdown peak
        # taken over the wealth after each bar only (initial capital excluded)
        assert abs(s.loc[p.cell_id, "sim_sharpe"] - r.mean() / r.std(ddof=1) * np.sqrt(365)) < 1e-9
        assert abs(s.loc[p.cell_id, "sim_max_drawdown"] - (w / np.maximum.accumulate(w) - 1).min()) < 1e-12
        assert abs(s.loc[p.cell_id, "sim_total_return"] - (w[-1] - 1)) < 1e-12
    assert s.loc["cash", "sim_sharpe"] == np.inf  # vectorbt: std 0 -> inf (documented)
    assert (s.sim_max_drawdown <= 0).all()


def test_calendar_year_length_is_passed(runs):
    px, plans, res = runs
    vb252 = simulate(px, plans[:2], SimulatorKind.VECTORBT, SimulationConfig(periods_per_year=252))
    ref252 = simulate(px, plans[:2], SimulatorKind.REFERENCE, SimulationConfig(periods_per_year=252))
    base = res[SimulatorKind.VECTORBT].summary.sim_sharpe.to_numpy()[:2]
    # same daily returns, annualised with sqrt(252) instead of sqrt(365)
    np.testing.assert_allclose(vb252.summary.sim_sharpe, base * np.sqrt(252 / 365), rtol=1e-12)
    np.testing.assert_allclose(ref252.summary.sim_sharpe, base * np.sqrt(252 / 365), rtol=1e-9)


def test_schemas_and_no_nan(runs):
    _, plans, res = runs
    for r in res.values():
        for name, file in (("returns", "returns.parquet"), ("positions", "positions.parquet"),
                           ("exposure", "exposure.parquet")):
            df = getattr(r, name)
            check_frame(df, file)
            assert list(df.columns) == [c.name for c in RUN_SCHEMAS[file]]
        assert np.isfinite(r.returns["return"]).all() and (r.returns["return"] >= -1).all()
        assert list(r.summary.columns) == ["cell_id", "sim_total_return", "sim_sharpe", "sim_max_drawdown",
                                           "liquidated", "n_windows"]
        assert r.summary.n_windows.tolist() == [len(p.windows) for p in plans]


@pytest.mark.parametrize("kind", list(SimulatorKind))
def test_chunking_does_not_change_results(runs, kind):
    px, plans, res = runs
    small = simulate(px, plans, kind, SimulationConfig(max_chunk_bytes=2**20))
    for name in ("returns", "positions", "exposure"):
        pd.testing.assert_frame_equal(getattr(small, name), getattr(res[kind], name), rtol=0, atol=1e-13)


def test_bad_inputs():
    px = panel(120, 2, seed=1)
    wins = make_windows(120, 40, 20)
    a = atom("S0")
    with pytest.raises(ConfigError, match="sum to"):
        WindowPlan(window=wins[0], atoms=[a], weights={a.id: 1.2})
    with pytest.raises(ConfigError, match="unknown atoms"):
        WindowPlan(window=wins[0], atoms=[a], weights={"X_rating_LONG": 0.2})
    with pytest.raises(ConfigError, match=">= 0"):
        WindowPlan(window=wins[0], atoms=[a], weights={a.id: -0.1})
    with pytest.raises(ConfigError, match="does not follow"):
        CellPlan(cell_id="c", windows=[WindowPlan(window=w, atoms=[], weights={}) for w in (wins[0], wins[2])])
    plan = fixed_plan("c", 120, 40, 20, [(atom("S9"), 1.0)])
    with pytest.raises(DataError, match="S9"):
        simulate(px, [plan], SimulatorKind.REFERENCE)
    plan = fixed_plan("c", 120, 40, 20, [(a, 1.0)], gap=2)
    with pytest.raises(ConfigError, match="gap"):
        simulate(px, [plan], SimulatorKind.REFERENCE, SimulationConfig(gap=1))
    with pytest.raises(DataError, match="beyond the panel"):
        simulate(px.iloc[:100], [fixed_plan("c", 120, 40, 20, [(a, 1.0)])], SimulatorKind.REFERENCE)
    with pytest.raises(Exception, match="extra"):
        SimulationConfig(fee=0.1)
