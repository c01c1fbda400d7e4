"""The tournament end to end on a small synthetic market: files, schemas, metrics, ledger."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from audit.verify import verify_ledger
from contracts.schemas import RUN_SCHEMAS


def test_run_folder_has_every_file(small_run):
    d = small_run.run_dir
    for name in RUN_SCHEMAS:
        df = pd.read_parquet(d / name)
        assert list(df.columns) == [c.name for c in RUN_SCHEMAS[name]], name
    for name in ("config.yaml", "audit.jsonl", "performance_matrix.csv", "bootstrap.json"):
        assert (d / name).is_file(), name
    assert list((d / "selection").glob("*/*/portfolio_candidates.json"))


def test_matrix_metrics_equal_plain_numpy(small_run):
    """Sharpe, max drawdown and CAGR in the matrix equal a plain numpy recomputation (P = 365)."""
    d = small_run.run_dir
    ret = pd.read_parquet(d / "returns.parquet")
    mat = pd.read_csv(d / "performance_matrix.csv").set_index("cell_id")
    for cid, g in ret.groupby("cell_id"):
        r = g.sort_values("date")["return"].to_numpy()
        sharpe = r.mean() / r.std(ddof=1) * np.sqrt(365) if r.std() > 0 else 0.0
        eq = np.cumprod(1 + r)
        hwm = np.maximum.accumulate(np.r_[1.0, eq])[1:]
        mdd = (eq / hwm - 1).min()
        cagr = eq[-1] ** (365 / len(r)) - 1
        # tolerance: float64 summation order differs between the two computations (~1e-15 relative);
        # the CSV keeps 10 significant digits
        assert mat.at[cid, "sharpe"] == pytest.approx(sharpe, rel=1e-9, abs=1e-12)
        assert mat.at[cid, "max_drawdown"] == pytest.approx(min(mdd, 0.0), rel=1e-9, abs=1e-12)
        assert mat.at[cid, "cagr"] == pytest.approx(cagr, rel=1e-9, abs=1e-12)


def test_matrix_relaxation_counts_equal_the_ledger(small_run):
    """n_relaxed / n_fallback per cell (issue 19) recounted from the ledger's allocation records."""
    d = small_run.run_dir
    mat = pd.read_csv(d / "performance_matrix.csv")
    recs = [json.loads(x) for x in (d / "audit.jsonl").read_text().splitlines()]
    allocs = [r["data"] for r in recs if r["type"] == "allocation"]
    assert (mat.loc[mat["baseline"], ["n_relaxed", "n_fallback"]] == 0).all().all()  # no allocation: 0
    for r in mat[~mat["baseline"]].to_dict("records"):
        sid = f"s{r['step_size']}_t{r['train_window']}_l{r['feature_lookback']}"  # SettingKey.id
        mine = [a for a in allocs if a["engine"] == r["engine"] and a["profile"] == r["profile"]
                and a["backend"] == r["backend"] and a["unit"].startswith(f"{sid}/")]
        assert len(mine) == r["n_windows"]
        assert r["n_fallback"] == sum(bool(a["fallback_used"]) for a in mine)
        assert r["n_relaxed"] == sum(a["status"] == "relaxed" and not a["fallback_used"] for a in mine)


def test_verification_axes_agree(small_run):
    b = json.loads((small_run.run_dir / "bootstrap.json").read_text())
    by = b["checks"]["by_name"]
    assert by["simulator_disagreement"]["fail"] == 0 and by["simulator_disagreement"]["pass"] > 0
    assert by["metric_mismatch"]["fail"] == 0 and by["directional"]["fail"] == 0 and by["funnel"]["fail"] == 0


def test_ledger_verifies_and_catches_one_byte(small_run, tmp_path):
    rep = verify_ledger(small_run.run_dir, require_run_end=True)
    assert rep.ok, rep.message
    copy = tmp_path / "run"
    shutil.copytree(small_run.run_dir, copy)
    raw = bytearray((copy / "audit.jsonl").read_bytes())
    lines = raw.split(b"\n")
    target = 5
    pos = sum(len(x) + 1 for x in lines[:target]) + lines[target].index(b'"data"') + 10
    raw[pos] = ord("X") if raw[pos] != ord("X") else ord("Y")
    (copy / "audit.jsonl").write_bytes(bytes(raw))
    rep = verify_ledger(copy)
    assert not rep.ok and rep.first_bad_seq == target


def test_ledger_has_every_record_kind(small_run):
    recs = [json.loads(x) for x in (small_run.run_dir / "audit.jsonl").read_text().splitlines()]
    kinds = {r["type"] for r in recs}
    assert {"run_start", "window", "selection", "allocation", "simulation", "check", "run_end"} <= kinds
    specs = {(r["type"], r["data"].get("engine")): r["spec_version"] for r in recs if r["type"] == "selection"}
    assert specs[("selection", "v4")] == "4.0-mlops" and specs[("selection", "v3.4")] == "3.4"
    assert specs[("selection", "random")] == "baseline"
    sel = next(r for r in recs if r["type"] == "selection" and r["data"]["engine"] == "v4")
    assert sel["data"]["pipeline_audit"], "stage transitions go under data.pipeline_audit"
    end = recs[-1]
    assert end["type"] == "run_end" and end["data"]["metrics"]["cells"] and end["data"]["artifacts"]
    start = recs[0]["data"]
    assert start["inputs"]["panel_sha256"] and "versions" in start and start["parameters"]["htr"]


def test_cli_audit_verify(small_run, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    exe = str(Path(sys.executable).with_name("tournament"))
    ok = subprocess.run([exe, "audit", "verify", str(small_run.run_dir)], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0 and "ok:" in ok.stdout
    copy = tmp_path / "run"
    shutil.copytree(small_run.run_dir, copy)
    raw = bytearray((copy / "audit.jsonl").read_bytes())
    starts = [0] + [i + 1 for i, b in enumerate(raw) if b == ord("\n")]
    i = raw.index(b'"ts":"', starts[7]) + 8  # a digit of record 7's timestamp
    raw[i] = ord("1") if raw[i] != ord("1") else ord("2")
    (copy / "audit.jsonl").write_bytes(bytes(raw))
    bad = subprocess.run([exe, "audit", "verify", str(copy)], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "seq 7" in bad.stderr
    rec = subprocess.run([exe, "audit", "recompute", str(small_run.run_dir)], capture_output=True, text=True,
                         timeout=300)
    assert rec.returncode == 0 and "sharpe=" in rec.stdout


def test_quarantine_summary_uses_the_quarantined_windows():
    """A run whose windows hold a market-wide crash: the crash window is quarantined, and the summary's
    'ex_quarantine' metrics exclude its bars (the check name is audit's own constant)."""
    import json
    import tempfile

    from audit.checks.quarantine import NAME
    from tests.tournament.conftest import small_config
    from tournament.run import run_tournament

    cfg = small_config(market={"synthetic_bars": 700, "synthetic_candidates": 48}, engines=["raw"],
                       profiles=["equal_weight"], backends=["native"], simulators=["reference"], max_windows=6)
    with tempfile.TemporaryDirectory() as d:
        out = run_tournament(cfg, d)
        crash_bar = int(0.85 * 700)
        b = json.loads((out.run_dir / "bootstrap.json").read_text())
        wins = pd.read_parquet(out.run_dir / "windows.parquet")
        dates = pd.read_parquet(out.run_dir / "returns.parquet")["date"]
        assert NAME == "outlier_quarantine"
        q = b["quarantine"]["windows"]
        assert q, "the crash window must be quarantined"
        w = wins[wins.window.isin(q)]
        crash_date = pd.Timestamp("2021-01-01", tz="UTC") + pd.Timedelta(days=crash_bar)
        assert ((w.test_start <= crash_date) & (w.test_end >= crash_date)).any()
        m = next(iter(b["quarantine"]["metrics_with_and_without"].values()))
        assert m["n_bars_excluded"] > 0 and m["ex_quarantine"]["n_periods"] < m["all"]["n_periods"]
        assert len(dates) > 0
