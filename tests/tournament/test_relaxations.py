"""Issue 19: per cell, how many windows' allocations were relaxed or replaced by a fallback."""
from types import SimpleNamespace

import pandas as pd

from contracts.allocation import Allocation
from contracts.cell import CellKey
from tournament.relaxations import add_allocation_counts
from tournament.unit import alloc_key


def _alloc(profile: str, status: str, fallback: bool = False) -> Allocation:
    return Allocation(profile=profile, backend="native", weights={"a": 1.0}, status=status,
                      fallback_used=fallback, relaxed={"beta_cap": 0.3} if status == "relaxed" else {})


def test_counts_per_cell_from_the_units_allocations() -> None:
    """Two cells (market_neutral and max_sharpe, native, vectorbt) over 4 windows: market_neutral
    relaxed in windows 0 and 2; max_sharpe on its min-variance fallback in window 1, and optimal with
    an inaccurate solver in window 3 (neither relaxed nor a fallback)."""
    dims = dict(engine="v4", backend="native", simulator="vectorbt", step_size=5, train_window=30,
                feature_lookback=20)
    mn, ms = CellKey(profile="market_neutral", **dims), CellKey(profile="max_sharpe", **dims)
    statuses = {"market_neutral": ["relaxed", "optimal", "relaxed", "optimal"],
                "max_sharpe": ["optimal", "fallback", "optimal", "optimal_inaccurate"]}
    results = {}
    for k in range(4):
        allocs = {alloc_key("v4", p, "native"): _alloc(p, s[k], s[k] == "fallback") for p, s in statuses.items()}
        results[f"{mn.setting.id}/{k}"] = SimpleNamespace(allocations=allocs)
    windows = [SimpleNamespace(window=SimpleNamespace(index=k)) for k in range(4)]
    plans = {c.id: (c, SimpleNamespace(windows=windows)) for c in (mn, ms)}
    matrix = pd.DataFrame({"cell_id": [ms.id, mn.id, "other"], "sharpe": [0.1, 0.2, 0.3]})
    out = add_allocation_counts(matrix, plans, results)
    assert list(out.columns) == ["cell_id", "sharpe", "n_relaxed", "n_fallback"]
    assert out.set_index("cell_id")[["n_relaxed", "n_fallback"]].to_dict("index") == {
        ms.id: {"n_relaxed": 0, "n_fallback": 1}, mn.id: {"n_relaxed": 2, "n_fallback": 0},
        "other": {"n_relaxed": 0, "n_fallback": 0}}
    assert out["n_relaxed"].dtype == "int64" and list(matrix.columns) == ["cell_id", "sharpe"]
