"""The buy-and-hold baselines: simulated like any cell with the execution model, audited from their own
selection files, shown in the matrix as baselines (never trials) and in the report against the best trial."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.tournament.conftest import small_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tournament.run import run_tournament

    cfg = small_config(engines=["v4", "raw"], profiles=["equal_weight", "min_variance"], backends=["native"],
                       costs={"fees": 0.0, "slippage": 0.0}, report=True)
    return cfg, run_tournament(cfg, tmp_path_factory.mktemp("bl"))


def _series(d, cid):
    r = pd.read_parquet(d / "returns.parquet")
    g = r[r.cell_id == cid].sort_values("date")
    return pd.Series(g["return"].to_numpy(), index=pd.DatetimeIndex(g["date"])), g


def test_baselines_are_cells_but_never_trials(run):
    cfg, out = run
    mat = pd.read_csv(out.run_dir / "performance_matrix.csv")
    bl = mat[mat["baseline"]]
    assert sorted(bl["engine"].unique()) == ["bh:benchmark", "bh:pool"]
    assert len(bl) == 2 * len(cfg.simulators) and not bl["trial"].any()
    assert mat.loc[mat["trial"], "n_trials"].dropna().max() == (~mat["baseline"] & mat["trial"]).sum()
    b = json.loads((out.run_dir / "bootstrap.json").read_text())
    assert b["n_trials"] == int(mat["trial"].sum())
    assert b["baselines"]["pool_rule"] == "raw winners" and b["baselines"]["benchmark"] == "BTCUSDT"
    assert b["checks"]["by_status"]["fail"] == 0, b["checks"]["failures"]


def test_benchmark_buy_and_hold_earns_the_benchmarks_returns(run):
    """Frictionless: cash until the first fill, then exactly the benchmark's close-to-close returns
    (the position is carried across windows; each fill re-targets 100% of value, a zero trade)."""
    from tournament.market_io import load_market

    cfg, out = run
    mat = pd.read_csv(out.run_dir / "performance_matrix.csv")
    closes = load_market(cfg.market).closes["BTCUSDT"]
    bench = closes.pct_change(fill_method=None)
    for cid in mat.loc[mat["engine"] == "bh:benchmark", "cell_id"]:
        s, _ = _series(out.run_dir, cid)
        assert s.iloc[0] == 0.0
        np.testing.assert_allclose(s.iloc[1:].to_numpy(), bench.loc[s.index[1:]].to_numpy(), rtol=0, atol=1e-12)


def test_pool_buy_and_hold_is_an_equal_weight_basket_held_through_each_window(run):
    """Inside a window (after its fill bar) the return is the drifting equal-weight basket's, computed
    here from the prices and the raw engine's winners in the selection files."""
    from tournament.market_io import load_market

    cfg, out = run
    d = out.run_dir
    closes = load_market(cfg.market).closes
    rets = closes.pct_change(fill_method=None)
    mat = pd.read_csv(d / "performance_matrix.csv")
    cid = mat.loc[(mat["engine"] == "bh:pool") & (mat["simulator"] == "reference"), "cell_id"].iloc[0]
    s, g = _series(d, cid)
    sid = cfg.settings()[0].id
    checked = 0
    for k, gw in g.groupby("window"):
        doc = json.loads((d / "selection" / sid / str(k) / "portfolio_candidates.json").read_text())
        syms = sorted({w["symbol"] for w in doc["engines"]["raw"]["winners"]})
        bl = json.loads((d / "selection" / sid / str(k) / "baselines.json").read_text())
        assert sorted(a["symbol"] for a in bl["engines"]["bh:pool"]["winners"]) == syms
        dates = pd.DatetimeIndex(gw["date"])
        v = np.full(len(syms), 1.0 / len(syms))         # bought at the fill (the window's first test bar)
        for t in dates[1:]:
            r = rets.loc[t, syms].fillna(0.0).to_numpy()
            want = float((v * r).sum() / v.sum())
            assert s.loc[t] == pytest.approx(want, abs=1e-12)
            v = v * (1 + r)
            checked += 1
    assert checked > 20


def test_report_shows_the_baselines_and_the_best_trial_against_them(run):
    _, out = run
    html = (out.run_dir / "report" / "index.html").read_text()
    assert 'id="baselines-table"' in html and 'id="vs-baselines-table"' in html
    assert "bh:benchmark" in html and "bh:pool" in html
    assert "best trial vs benchmark buy-and-hold" in html and "best trial vs pool equal-weight buy-and-hold" in html
    b = json.loads((out.run_dir / "bootstrap.json").read_text())["baselines"]["vs_best_trial"]
    assert b["best_trial"]["engine"] in ("v4", "raw")
    for name in ("bh:benchmark", "bh:pool"):
        v = b[name]
        assert v["ci_low"] <= v["difference"] <= v["ci_high"]
        assert v["difference"] == pytest.approx(b["best_trial"]["sharpe"] - v["baseline_sharpe"], abs=0.05)
