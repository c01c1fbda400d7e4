"""The meta cells' returns (issue 17): sleeve weights held with drift between fills, stale marks on a
sleeve's closed days; both simulators against a plain loop, frictionless."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tournament.config import load_config
from tournament.meta import run_meta
from tournament.meta_sleeves import reuse_key


def _setup():
    cfg = load_config(preset="quick", overrides={
        "costs": {"fees": 0.0, "slippage": 0.0},
        "sleeves": [{"name": "a", "engine": "v4", "profile": "hrp"},
                    {"name": "b", "engine": "raw", "profile": "equal_weight"},
                    {"name": "c", "engine": "v4", "profile": "min_variance"}],
        "meta": {"allocators": ["inverse_vol", "hrp"], "step_size": 9, "train_window": 40, "min_history": 15}})
    rng = np.random.default_rng(4)
    days = pd.date_range("2024-01-01", periods=200, freq="D", tz="UTC")
    weekdays = days[days.day_of_week < 5]
    rows = []
    for spec, idx, vol in zip(cfg.sleeves, (days, days[30:], weekdays), (0.01, 0.02, 0.015)):
        r = rng.normal(0.0004, vol, len(idx))
        rows.append(pd.DataFrame({"cell_id": reuse_key(cfg, spec).id, "date": idx, "window": 0, "return": r,
                                  "liquidated": False}))
    main = pd.concat(rows, ignore_index=True)
    market = SimpleNamespace(calendar=SimpleNamespace(name="crypto", periods_per_year=365),
                             provenance={}, benchmark=None)
    return cfg, main, market


def test_meta_returns_equal_a_plain_drift_loop():
    cfg, main, market = _setup()
    out = run_meta(cfg, market, main, 365)
    cal = out.calendar
    names = [s.spec.name for s in out.sleeves]
    marked = pd.DataFrame({s.spec.name: s.returns.reindex(cal).fillna(0.0) for s in out.sleeves})
    assert out.windows[0].gap == 1
    for cid, cell in out.cells.items():
        a = cell.engine.split(":")[1]
        fills = {w.fill_bar: out.decisions[a][i].weights for i, w in enumerate(out.windows)}
        first, last = out.windows[0].test_start, out.windows[-1].test_end
        cash, val, want = 1.0, np.zeros(len(names)), []
        for t in range(first, last + 1):
            before = cash + val.sum()
            val = val * (1.0 + marked.iloc[t].to_numpy())
            want.append((cash + val.sum()) / before - 1.0)
            if t in fills:  # the decision of the cut-off fills at this day's close
                tot = cash + val.sum()
                val = np.array([fills[t][n] for n in names]) * tot
                cash = tot - val.sum()
        got = out.returns[out.returns.cell_id == cid].sort_values("date")
        assert list(got["date"]) == list(cal[first:last + 1])
        # frictionless: float summation order only (1e-12 per daily return)
        np.testing.assert_allclose(got["return"].to_numpy(), want, rtol=0, atol=1e-12)
    # drift: within a window the weights move with the sleeves (the loop above holds units, not weights)
    assert len(out.windows) >= 10


def test_costs_are_charged_on_sleeve_turnover():
    cfg, main, market = _setup()
    free = run_meta(cfg, market, main, 365)
    cfg2 = cfg.model_copy(update={"costs": cfg.costs.model_copy(update={"fees": 0.001, "slippage": 0.0})})
    paid = run_meta(cfg2, market, main, 365)
    for cid in free.cells:
        a = free.returns[free.returns.cell_id == cid]["return"].to_numpy()
        b = paid.returns[paid.returns.cell_id == cid]["return"].to_numpy()
        lost = np.prod(1 + a) - np.prod(1 + b)
        assert lost > 0
        # at most fees x total traded notional: each fill trades at most 2x the portfolio's value
        n_fills = len(free.windows)
        assert lost < 0.001 * 2.0 * n_fills * np.prod(1 + a) * 1.5


def test_a_run_whose_calendar_differs_from_the_meta_calendar_is_refused():
    from contracts.errors import ConfigError

    cfg, main, market = _setup()
    with pytest.raises(ConfigError, match="meta calendar has 365 bars a year"):
        run_meta(cfg, market, main, 252)
