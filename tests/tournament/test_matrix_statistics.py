"""The performance matrix and bootstrap.json carry both DSR readings, the trial counts and the method,
one CI per distinct return series, HAC paired tests that can pass Holm, and PBO's null spread (issue 14)."""
import json

import numpy as np
import pandas as pd
import pytest

from audit.statistics import deflated_sharpe
from tournament.matrix import series_seed


def test_matrix_has_both_dsr_readings_and_counts(small_run):
    d = small_run.run_dir
    m = pd.read_csv(d / "performance_matrix.csv")
    for col in ("dsr", "dsr_raw", "dsr_clustered", "dsr_method", "n_trials", "n_trials_clustered",
                "n_trials_effective"):
        assert col in m.columns, col
    t = m[m["trial"]]
    assert (t["dsr_method"] == "raw").all()
    assert np.allclose(t["dsr"], t["dsr_raw"])
    assert (t["n_trials"] == len(t)).all()
    assert ((t["n_trials_clustered"] >= 1) & (t["n_trials_clustered"] <= len(t))).all()
    # the matrix's headline equals the kernel on the trials' common returns
    ret = pd.read_parquet(d / "returns.parquet")
    wide = ret[ret.cell_id.isin(t.cell_id)].pivot(index="date", columns="cell_id", values="return").dropna()
    wide = wide[list(t.cell_id)]
    cid = t.cell_id.iloc[0]
    ref = deflated_sharpe(wide[cid].to_numpy(), wide.to_numpy())
    row = t.set_index("cell_id").loc[cid]
    assert row["dsr"] == pytest.approx(ref.dsr_raw, rel=1e-8, abs=1e-12)  # CSV keeps 10 digits
    assert row["dsr_clustered"] == pytest.approx(ref.dsr_clustered, rel=1e-8, abs=1e-12)


def test_bootstrap_json_dsr_block_paired_and_pbo_null(small_run):
    b = json.loads((small_run.run_dir / "bootstrap.json").read_text())
    dsr = b["dsr"]
    assert dsr["method"] == "raw" and dsr["n_trials_raw"] == b["n_trials"]
    assert 1 <= dsr["n_trials_clustered"] <= dsr["n_trials_raw"]
    best = dsr["best_trial"]
    for k in ("cell_id", "sharpe", "sharpe_ci_low", "sharpe_ci_high", "dsr", "dsr_raw", "dsr_clustered"):
        assert k in best
    pt = b["paired_tests"]
    assert pt["pvalue_method"].startswith("hac_delta")
    assert pt["min_achievable_pvalue"] < pt["holm_first_threshold"]
    assert pt["holm_first_threshold"] == pytest.approx(0.05 / pt["n_pairs"])
    for v in pt["verdicts"].values():
        assert v["resolvable"] and v["detectable_difference"] > 0
    for t in pt["tests"]:
        assert 0 <= t["pvalue"] <= 1 and t["pvalue_bootstrap"] >= 1 / (t["n_boot"] + 1) - 1e-15
        assert t["pvalue"] >= t["pvalue_hac"]
        if t["pvalue_hac"] <= 0.05 and t["status"] == "ok":
            assert t["pvalue_studentized_bootstrap"] is not None
    null = b["pbo"]["null"]
    assert 0 <= null["mean"] <= 1 and null["sd"] >= 0 and null["reps"] == 30
    assert b["mcs"]["loss"] == "sharpe"
    assert all(s["studentized"] for s in b["spa"].values())


def test_one_ci_per_distinct_return_series(tmp_path):
    """Cells whose daily returns are identical get the same CI (the seed comes from the content).
    Fixture: equal weights on both optimiser backends, kept as complete cells (``verification: full``)."""
    from tests.tournament.conftest import small_config
    from tournament.run import run_tournament

    cfg = small_config(engines=["raw", "v4"], profiles=["equal_weight"], simulators=["reference"],
                       verification="full")
    d = run_tournament(cfg, tmp_path).run_dir
    m = pd.read_csv(d / "performance_matrix.csv").set_index("cell_id")
    ret = pd.read_parquet(d / "returns.parquet")
    groups: dict[bytes, list[str]] = {}
    for cid, g in ret.groupby("cell_id"):
        groups.setdefault(g.sort_values("date")["return"].to_numpy().tobytes(), []).append(cid)
    shared = [cids for cids in groups.values() if len(cids) > 1]
    assert shared, "fixture: expected cells with identical returns (e.g. the same weights on both backends)"
    for cids in shared:
        lows = m.loc[cids, "sharpe_ci_low"].to_numpy()
        highs = m.loc[cids, "sharpe_ci_high"].to_numpy()
        assert np.all(lows == lows[0]) and np.all(highs == highs[0]), cids


def test_series_seed_depends_on_content_and_base_only():
    x = np.linspace(-0.01, 0.01, 50)
    assert series_seed(42, "sharpe_ci", x) == series_seed(42, "sharpe_ci", x.copy())
    assert series_seed(42, "sharpe_ci", x) != series_seed(43, "sharpe_ci", x)
    y = x.copy()
    y[7] += 1e-12
    assert series_seed(42, "sharpe_ci", x) != series_seed(42, "sharpe_ci", y)
