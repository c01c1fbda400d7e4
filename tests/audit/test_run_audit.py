"""check_cells over cells.parquet/returns.parquet frames, write_checks, spec_version mapping, and the
ledger-vs-returns.parquet raw comparison."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from audit.checks import CheckStatus, SimConventions, summarize_checks
from audit.ledger import LedgerWriter
from audit.metrics import max_drawdown, sharpe, total_return
from audit.raw_audit import check_ledger_vs_returns, simulation_record_data
from audit.run_audit import check_cells, spec_version_for_engine, write_checks
from audit.verify import verify_ledger
from contracts.enums import SpecVersion
from contracts.errors import ConfigError, DataError

DATES = pd.date_range("2024-01-01", periods=40, freq="D", tz="UTC")
P = 365


def _vol(target, seed):
    z = np.random.default_rng(seed).standard_normal(len(DATES))
    return (z - z.mean()) / z.std(ddof=1) * target / math.sqrt(P) + 0.002  # mean 0.2%/day: Sharpe != 0


def _frames():
    rets = {"cA": _vol(0.35, 1), "cB": _vol(1.20, 2)}  # cA in band (min_variance), cB drifts
    rows = [[c, d, i // 10, r[i], False] for c, r in rets.items() for i, d in enumerate(DATES)]
    returns = pd.DataFrame(rows, columns=["cell_id", "date", "window", "return", "liquidated"])
    cells = pd.DataFrame([
        [c, "v4", "min_variance", "native", "reference", 10, 60, 30,
         total_return(r), sharpe(r, P), max_drawdown(r), False, 4] for c, r in rets.items()],
        columns=["cell_id", "engine", "profile", "backend", "simulator", "step_size",
                 "train_window", "feature_lookback", "sim_total_return", "sim_sharpe",
                 "sim_max_drawdown", "liquidated", "n_windows"])
    return cells, returns, rets


def test_check_cells_known_answers(tmp_path):
    cells, returns, _ = _frames()
    cells.loc[0, "sim_sharpe"] *= 1.01  # cA: simulator's Sharpe off by 1%
    res = check_cells(cells, returns, SimConventions(periods_per_year=P))
    got = {(r.name, r.cell_id): r.status for r in res}
    assert got == {("metric_mismatch", "cA"): CheckStatus.FAIL,
                   ("volatility_band", "cA"): CheckStatus.PASS,
                   ("zero_bankruptcy", "cA"): CheckStatus.PASS,
                   ("metric_mismatch", "cB"): CheckStatus.PASS,
                   ("volatility_band", "cB"): CheckStatus.WARN,
                   ("zero_bankruptcy", "cB"): CheckStatus.PASS}
    with LedgerWriter(tmp_path, "r") as w:
        recs = write_checks(w, res, {"cA": SpecVersion.V4, "cB": SpecVersion.V34})
    assert [r["spec_version"] for r in recs[:3]] == ["4.0-mlops"] * 3
    assert recs[3]["spec_version"] == "3.4" and all(r["type"] == "check" for r in recs)
    assert verify_ledger(tmp_path).ok
    assert summarize_checks(res)["by_name"]["volatility_band"] == {"pass": 1, "fail": 0, "warn": 1}


def test_cell_without_returns_raises():
    cells, returns, _ = _frames()
    with pytest.raises(DataError, match="cB"):
        check_cells(cells, returns[returns["cell_id"] == "cA"], SimConventions(periods_per_year=P))


def test_spec_version_for_engine():
    assert spec_version_for_engine("v4") is SpecVersion.V4
    assert spec_version_for_engine("v4:lgbm") is SpecVersion.V4
    assert spec_version_for_engine("v3.4") is SpecVersion.V34
    assert spec_version_for_engine("random") is SpecVersion.BASELINE
    with pytest.raises(ConfigError):
        spec_version_for_engine("v5")


def _ledger(tmp_path, rets):
    with LedgerWriter(tmp_path, "r") as w:
        for k in range(4):
            sl = slice(10 * k, 10 * k + 10)
            w.append("simulation", "4.0-mlops", simulation_record_data(
                k, DATES[sl], {c: r[sl] for c, r in rets.items()}, P))


def test_ledger_matches_returns_parquet(tmp_path):
    _, returns, rets = _frames()
    _ledger(tmp_path, rets)
    assert check_ledger_vs_returns(tmp_path, returns).status is CheckStatus.PASS
    edited = returns.copy()
    edited.loc[15, "return"] = np.nextafter(edited.loc[15, "return"], 1.0)  # one ulp
    res = check_ledger_vs_returns(tmp_path, edited)
    assert res.status is CheckStatus.FAIL
    assert res.details["issues"][0]["cell_id"] == "cA" and "2024-01-16" in \
        res.details["issues"][0]["issue"]
    res2 = check_ledger_vs_returns(tmp_path, returns[returns["cell_id"] == "cA"])
    assert res2.details["issues"] == [{"cell_id": "cB", "issue": "only in ledger"}]


def test_ledger_vs_returns_in_any_row_and_record_order(tmp_path):
    """The comparison sorts both sides by cell and date: windows appended out of order (parallel
    executors) and parquet rows in any order still match; a missing day is named."""
    _, returns, rets = _frames()
    with LedgerWriter(tmp_path, "r") as w:
        for k in (3, 1, 0, 2):
            sl = slice(10 * k, 10 * k + 10)
            w.append("simulation", "4.0-mlops", simulation_record_data(
                k, DATES[sl], {c: r[sl] for c, r in reversed(list(rets.items()))}, P))
    shuffled = returns.sample(frac=1.0, random_state=3).reset_index(drop=True)
    res = check_ledger_vs_returns(tmp_path, shuffled)
    assert res.status is CheckStatus.PASS and res.details["n_cells"] == 2
    cut = shuffled[~((shuffled["cell_id"] == "cB") & (shuffled["date"] == DATES[7]))]
    res = check_ledger_vs_returns(tmp_path, cut)
    assert res.status is CheckStatus.FAIL
    assert res.details["issues"] == [{"cell_id": "cB", "issue": f"dates differ, first {DATES[7].isoformat()}"}]
