"""The run checks (audit.run_audit.audit_run) never cry wolf on honest runs, and fire on planted defects.

False FAILs came from comparing vectorbt's own metrics under the reference simulator's conventions
(vectorbt's drawdown peak excludes the initial capital): every cell pays costs on its first bar, so its
first return is negative and the two conventions differ whenever the cell's trough comes before its
first new high, which short runs hit often (1, 2 or 3 windows). Each defect below is planted in the
files of a real run and must be caught from the files alone.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from audit.checks import CheckStatus, check_bankruptcy, check_metric_mismatch
from audit.run_audit import audit_run
from simulation.config import SimulationConfig
from simulation.vbt_adapter import vbt_summary
from tests.tournament.conftest import SMALL, small_config
from tournament.postprocess import sim_conventions

P = 365
EXE = str(Path(sys.executable).with_name("tournament"))
DATES = pd.date_range("2024-01-01", periods=8, freq="D", tz="UTC")


def _failed(checks, names=("metric_mismatch", "directional", "zero_bankruptcy")):
    return [(c.name, c.cell_id, c.window) for c in checks if c.status is CheckStatus.FAIL and c.name in names]


# -- the conventions, on vectorbt's own numbers ---------------------------------------------------

def _vbt(wide: pd.DataFrame) -> pd.DataFrame:
    return vbt_summary(wide, SimulationConfig(periods_per_year=P))


def _mismatch(r: np.ndarray, sim: pd.Series, simulator: str):
    return check_metric_mismatch("c", r, sim_sharpe=float(sim["sim_sharpe"]),
                                 sim_max_drawdown=float(sim["sim_max_drawdown"]),
                                 sim_total_return=float(sim["sim_total_return"]),
                                 conventions=sim_conventions(P)[simulator])


def test_trough_before_the_first_new_high_passes_under_vectorbts_conventions():
    # costs make day 1 negative; the trough (day 2) comes before the first new high above 1.0
    r = np.array([-0.002, -0.03, 0.01, 0.05, -0.01, 0.02, -0.004, 0.006])
    sim = _vbt(pd.DataFrame({"c": r}, index=DATES)).loc["c"]
    assert _mismatch(r, sim, "vectorbt").status is CheckStatus.PASS
    # the defect: the reference simulator's convention (peak includes 1.0) on vectorbt's figure
    assert _mismatch(r, sim, "reference").status is CheckStatus.FAIL


def test_a_column_that_starts_after_nan_rows():
    a = np.array([0.01, -0.02, 0.03, -0.01, 0.02, 0.0, -0.005, 0.004])
    b = np.array([np.nan, np.nan, np.nan, -0.004, -0.02, 0.015, 0.03, -0.01])
    sim = _vbt(pd.DataFrame({"a": a, "b": b}, index=DATES))
    assert _mismatch(b[3:], sim.loc["b"], "vectorbt").status is CheckStatus.PASS
    assert _mismatch(a, sim.loc["a"], "vectorbt").status is CheckStatus.PASS


@pytest.mark.parametrize("value", [0.0, 0.001])
def test_a_constant_cell_is_a_warning_not_a_failure(value):
    r = np.full(len(DATES), value)
    sim = _vbt(pd.DataFrame({"c": r}, index=DATES)).loc["c"]
    assert not np.isfinite(sim["sim_sharpe"])  # vectorbt: NaN for 0/0, inf for a constant gain
    res = _mismatch(r, sim, "vectorbt")
    assert res.status is CheckStatus.WARN, res.details


# -- honest small tournaments: no false FAIL ------------------------------------------------------

@pytest.mark.parametrize("n_windows", [1, 2, 3])
def test_small_tournaments_raise_no_false_fail(tmp_path, n_windows):
    from tournament.run import run_tournament

    # synthetic_seed 24: re-derived after issue 15 made the synthetic scanner past-only (the default
    # seed's last 1-3 windows now all make a new high before their trough, which guards nothing);
    # a scan of seeds 7-26 found 24 as the first whose 1- and 2-window runs have such cells (4 each)
    cfg = small_config(engines=["v4", "raw"], profiles=["equal_weight", "min_variance"], backends=["native"],
                       max_windows=n_windows, market={**SMALL["market"], "synthetic_seed": 24})
    assert cfg.costs.fees > 0 and cfg.costs.slippage > 0  # costs on: the first return is negative
    out = run_tournament(cfg, tmp_path)
    assert out.integrity_failures == () and out.checks["by_status"]["fail"] == 0, out.checks["failures"]
    cells = pd.read_parquet(out.run_dir / "cells.parquet")
    ret = pd.read_parquet(out.run_dir / "returns.parquet")
    vbt = cells[cells.simulator == "vectorbt"]
    # the fixture does exercise the convention: some vectorbt cell's drawdown differs between them
    differs = 0
    for cid in vbt.cell_id:
        r = ret[ret.cell_id == cid].sort_values("date")["return"].to_numpy()
        eq = np.cumprod(1 + r)
        with_capital = (eq / np.maximum.accumulate(np.maximum(eq, 1.0)) - 1).min()
        differs += abs(with_capital - (eq / np.maximum.accumulate(eq) - 1).min()) > 1e-9
    if n_windows < 3:  # (with 3 windows every cell makes a new high before its trough: no false FAIL either)
        assert differs > 0, "no cell has its trough before its first new high: the fixture guards nothing"


# -- planted defects in a real run's files -------------------------------------------------------

@pytest.fixture
def run(small_run, tmp_path) -> Path:
    d = tmp_path / "run"
    shutil.copytree(small_run.run_dir, d)
    return d


def _audit(d: Path, floor: float = -1.0):
    return audit_run(d, conventions=sim_conventions(P), liquidation_floor=floor)


def test_the_real_run_passes(run):
    assert _failed(_audit(run).checks, names=("metric_mismatch", "directional", "zero_bankruptcy", "funnel",
                                              "raw_returns", "simulator_disagreement")) == []


def test_a_sign_flip_in_weights_parquet_fires_directional(run):
    w = pd.read_parquet(run / "weights.parquet")
    i = int(np.flatnonzero(w["direction"].astype(str).to_numpy() == "LONG")[0])
    w["direction"] = w["direction"].astype(str)
    w.loc[i, "direction"] = "SHORT"
    w.to_parquet(run / "weights.parquet", index=False)
    failed = _failed(_audit(run).checks)
    assert failed == [("directional", w.loc[i, "cell_id"], None)]


def test_a_shifted_return_fires_metric_mismatch_and_the_raw_audit(run):
    ret = pd.read_parquet(run / "returns.parquet")
    cid = sorted(ret.cell_id.unique())[0]
    idx = ret.index[ret.cell_id == cid]
    vals = ret.loc[idx].sort_values("date")["return"].to_numpy()
    ret.loc[ret.loc[idx].sort_values("date").index, "return"] = np.r_[0.0, vals[:-1]]  # shifted by a day
    ret.to_parquet(run / "returns.parquet", index=False)
    checks = _audit(run).checks
    assert ("metric_mismatch", cid, None) in _failed(checks)
    raw = next(c for c in checks if c.name == "raw_returns")
    assert raw.status is CheckStatus.FAIL and raw.details["issues"][0]["cell_id"] == cid


def test_equity_through_the_floor_without_the_flag_fires_bankruptcy():
    """Under a -50% floor the path 1 -> 1.1 -> 0.77 -> 0.462 is 58% below its peak: liquidated, whatever
    the flag says (the old check trusted the flag for any floor above -100%)."""
    rows = [["c", d, 0, r, False] for d, r in zip(DATES[:4], [0.1, -0.3, -0.4, 0.2])]
    df = pd.DataFrame(rows, columns=["cell_id", "date", "window", "return", "liquidated"])
    res = check_bankruptcy(df, liquidation_floor=-0.5)[0]
    assert res.status is CheckStatus.FAIL
    assert res.details["liquidated_date"] == DATES[2].isoformat()
    assert res.details["min_drawdown"] == pytest.approx(0.462 / 1.1 - 1, abs=1e-12)
    assert "without the flag" in res.details["inconsistencies"][0]
    assert check_bankruptcy(df, liquidation_floor=-0.6)[0].status is CheckStatus.PASS
    flagged = df.assign(liquidated=[False, False, True, True])
    assert "above the floor" in check_bankruptcy(flagged, liquidation_floor=-0.6)[0].details["inconsistencies"][0]


# -- a pool that is entirely vetoed: "no position", named, no false check ---------------------------

def test_an_entirely_vetoed_pool_is_reported_as_no_position(tmp_path):
    out = subprocess.run([EXE, "data", "synth", "--out", str(tmp_path / "m")], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    for p in (tmp_path / "m" / "snapshots").glob("*.json"):
        recs = json.loads(p.read_text())
        for r in recs:
            r["Value.Traded"] = 1.0  # $1 traded: below every liquidity floor (a hard veto)
        p.write_text(json.dumps(recs))
    cfg = {k: v for k, v in SMALL.items() if k != "market"}
    cfg.update(engines=["v4", "raw"], profiles=["equal_weight"], backends=["native"], max_windows=2)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    out = subprocess.run([EXE, "run", "--config", str(tmp_path / "c.yaml"), "--data", str(tmp_path / "m" / "lakehouse"),
                          "--candidates", str(tmp_path / "m" / "snapshots"), "--runs-dir", str(tmp_path / "runs")],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    # 4 trial cells and the pool buy-and-hold on both simulators (its eligible pool is empty too);
    # the benchmark's buy-and-hold holds a position
    assert "no position: 6 cell(s) never held a position" in out.stdout, out.stdout
    assert "window(s) with no winner" in out.stdout and "checks:" in out.stdout
    run_dir = next((tmp_path / "runs").iterdir())
    # `report: false` in the YAML holds: --report/--no-report overrides the file only when given
    assert not (run_dir / "report").exists() and "report:" not in out.stdout
    mat = pd.read_csv(run_dir / "performance_matrix.csv")
    eng = mat[~mat["baseline"]]
    assert eng["no_position"].all() and eng["sharpe"].isna().all()
    bh = mat.set_index("engine").loc["bh:benchmark"]
    assert not bh["no_position"].any() and bh["sharpe"].notna().all()
    b = json.loads((run_dir / "bootstrap.json").read_text())
    assert b["checks"]["by_status"]["fail"] == 0, b["checks"]["failures"]


def test_cli_exits_3_and_names_the_check_when_integrity_fails(monkeypatch, tmp_path):
    """The console tells the outcome: the check summary, and exit code 3 on an integrity failure."""
    from typer.testing import CliRunner

    import tournament.run as run_mod
    from tournament.cli import EXIT_INTEGRITY, app
    from tournament.run import RunOutcome

    checks = {"by_status": {"pass": 10, "warn": 1, "fail": 2},
              "by_name": {"metric_mismatch": {"pass": 3, "warn": 0, "fail": 2},
                          "volatility_band": {"pass": 7, "warn": 1, "fail": 0}}}
    out = RunOutcome(tmp_path, tmp_path / "audit.jsonl", None, 4, 2, 1.0, 99, "ab" * 32, checks,
                     ("metric_mismatch",), ("c0123456789",), ("s20_t150_l60/0:v4",))
    monkeypatch.setattr(run_mod, "run_tournament", lambda *a, **k: out)
    res = CliRunner().invoke(app, ["run", "--runs-dir", str(tmp_path)])
    assert res.exit_code == EXIT_INTEGRITY == 3
    assert "checks:  10 passed, 1 warnings, 2 failed" in res.output
    assert "metric_mismatch" in res.output and "INTEGRITY FAILED: metric_mismatch" in res.output
    assert "head:    99 " + "ab" * 32 in res.output
    assert "no position: 1 cell(s) never held a position" in res.output and "c0123456789" in res.output


# -- audit_run's heaviest parts in other processes (issue 23) -------------------------------------

def test_parts_run_in_another_process_give_the_same_checks_in_the_same_order(run):
    """``audit_run(submit=...)``: the directional check and the ledger's returns check run in a worker
    process (reading the files themselves); the checks, their order and a planted defect's finding
    are those of the in-process audit."""
    from concurrent.futures import ProcessPoolExecutor

    from audit.run_audit import directional_checks, raw_returns_check

    w = pd.read_parquet(run / "weights.parquet")  # a planted defect, so the part's finding is not vacuous
    i = int(np.flatnonzero(w["direction"].astype(str).to_numpy() == "LONG")[0])
    w["direction"] = w["direction"].astype(str)
    w.loc[i, "direction"] = "SHORT"
    w.to_parquet(run / "weights.parquet", index=False)
    here = _audit(run)
    sent = []
    with ProcessPoolExecutor(1) as pool:
        def submit(fn, *args):
            sent.append(fn)
            return pool.submit(fn, *args)
        there = audit_run(run, conventions=sim_conventions(P), submit=submit)
    assert sent == [directional_checks, raw_returns_check]
    assert [(c.name, c.cell_id, c.window, c.status, c.details) for c in there.checks] == \
        [(c.name, c.cell_id, c.window, c.status, c.details) for c in here.checks]
    assert _failed(there.checks) == [("directional", w.loc[i, "cell_id"], None)]
    assert (there.quarantined, there.no_position_cells, there.no_position_windows) == \
        (here.quarantined, here.no_position_cells, here.no_position_windows)


def test_finish_run_sends_the_audit_parts_to_the_session(small_run, tmp_path, monkeypatch):
    from audit.run_audit import directional_checks, raw_returns_check
    from tournament import post_tasks
    from tests.tournament.conftest import reload_small_run
    from tournament.postprocess import finish_run

    cfg, market, sched, results = reload_small_run(small_run, tmp_path / "r")
    sent = []
    real = post_tasks.submit_call
    monkeypatch.setattr(post_tasks, "submit_call", lambda s, fn, *a: (sent.append(fn), real(s, fn, *a))[1])
    finish_run(tmp_path / "r", cfg, market, sched, results, lambda *a: None, lambda p: None)
    assert sent == [directional_checks, raw_returns_check]
