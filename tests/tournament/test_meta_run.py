"""The meta-portfolio end to end (issue 17): a small run with three sleeves on two calendars."""
import json

import numpy as np
import pandas as pd
import pytest

from audit.raw_audit import compare_with_run
from audit.verify import load_records, verify_ledger
from tests.tournament.conftest import small_config
from tests.tournament.test_meta_alloc import independent_carry, independent_hrp

META = {
    "engines": ["v4", "raw"],
    "profiles": ["equal_weight", "min_variance", "hrp"],
    "backends": ["native"],
    "max_windows": 6,
    "sleeves": [{"name": "crypto_v4_hrp", "source": "run", "engine": "v4", "profile": "hrp"},
                {"name": "crypto_raw_mv", "source": "run", "engine": "raw", "profile": "min_variance"},
                # the run's market filtered to its perpetuals: walked forward (never a reused cell)
                {"name": "crypto_perp", "source": "run", "engine": "raw", "profile": "equal_weight",
                 "asset_types": ["perp"]},
                {"name": "equities_v4", "source": "synthetic", "calendar": "exchange", "synthetic_seed": 11,
                 "engine": "v4", "profile": "equal_weight"}],
    "meta": {"allocators": ["inverse_vol", "hrp", "equal_weight", "min_variance"], "step_size": 10,
             "train_window": 60, "min_history": 20},
}


@pytest.fixture(scope="module")
def meta_run(tmp_path_factory):
    from tournament.run import run_tournament

    return run_tournament(small_config(**META), tmp_path_factory.mktemp("meta_runs"))


def _own_returns(d, doc) -> dict[str, pd.Series]:
    """Each sleeve's returns from returns.parquet on its own trading days (documented rule: a weekday
    sleeve's weekend rows on the meta calendar are its stale marks)."""
    ret = pd.read_parquet(d / "returns.parquet")
    out = {}
    for s in doc["sleeves"]:
        g = ret[ret["cell_id"] == s["cell_id"]].sort_values("date")
        r = pd.Series(g["return"].to_numpy(), index=pd.DatetimeIndex(g["date"]))
        if s["trading_days"] == "weekdays":
            r = r[r.index.day_of_week < 5]
        out[s["name"]] = r
    return out


def test_matrix_has_meta_and_sleeve_rows_with_every_figure(meta_run):
    d = meta_run.run_dir
    mat = pd.read_csv(d / "performance_matrix.csv")
    doc = json.loads((d / "meta" / "sleeves.json").read_text())
    meta_rows = mat[mat["meta"].fillna("").str.startswith("meta:")]
    assert sorted(meta_rows["engine"].unique()) == ["meta:equal_weight", "meta:hrp", "meta:inverse_vol",
                                                   "meta:min_variance"]
    assert len(meta_rows) == 4 * 2  # x vectorbt, reference
    for col in ("sharpe", "sharpe_ci_low", "sharpe_ci_high", "cagr", "max_drawdown", "annual_volatility", "psr",
                "dsr", "n_trials"):
        assert meta_rows[col].notna().all(), col
    assert (~meta_rows["trial"].astype(bool)).all()
    # the trials deflated: the tournament's trials + 2 walked-forward sleeves + 4 meta configurations
    n_trials = int(mat["trial"].astype(bool).sum())
    assert (meta_rows["n_trials"] == n_trials + 2 + 4).all()
    markers = dict(zip(mat["cell_id"], mat["meta"].fillna("")))
    calendars = {s["name"]: s["calendar"] for s in doc["sleeves"]}
    assert calendars == {"crypto_v4_hrp": "crypto", "crypto_raw_mv": "crypto", "crypto_perp": "crypto",
                         "equities_v4": "exchange"}
    for s in doc["sleeves"]:
        assert markers[s["cell_id"]] == f"sleeve:{s['name']}"
        assert s["reused_cell"] == (s["name"] in ("crypto_v4_hrp", "crypto_raw_mv"))


def test_a_filtered_sleeve_holds_only_its_asset_type(meta_run):
    """The perp sleeve's pool is the run's pool filtered to perpetuals: every symbol it held is a perp."""
    d = meta_run.run_dir
    doc = json.loads((d / "meta" / "sleeves.json").read_text())
    perp = next(s for s in doc["sleeves"] if s["name"] == "crypto_perp")
    assert perp["provenance"]["sleeve_filter"]["asset_types"] == ["perp"]
    assert perp["n_oos"] > 0 and perp["own_calendar_summary"]["n_windows"] == 6
    from tournament.config import DataSpec
    from tournament.market_io import load_market
    from tests.tournament.conftest import SMALL

    m = load_market(DataSpec(**SMALL["market"]))
    kind = {}
    for f in m.snapshots.frames.values():
        kind.update(dict(zip(f["symbol"], f["asset_type"])))
    sw = pd.read_parquet(d / "meta" / "sleeve_weights.parquet")
    held = sw[sw["cell_id"] == perp["cell_id"]]
    assert len(held) and held["window"].nunique() >= 1
    assert {kind[s] for s in held["symbol"]} == {"perp"}
    assert (held.groupby("window")["weight"].sum() - 1).abs().max() < 1e-9


@pytest.mark.parametrize("allocator", ["inverse_vol", "hrp"])
def test_meta_weights_match_independent_recomputation_from_returns_parquet(meta_run, allocator):
    """Every window's weights from the sleeves' returns in returns.parquet: a loop carry alignment over
    the train window, numpy's covariance, inverse volatility written out / HRP written out (single
    linkage, bisection loop); to 1e-10."""
    d = meta_run.run_dir
    doc = json.loads((d / "meta" / "sleeves.json").read_text())
    cfg = doc["meta"]
    own = _own_returns(d, doc)
    cal = own[next(iter(own))].index
    for r in own.values():
        cal = cal.union(r.index)
    w = pd.read_parquet(d / "meta" / "weights.parquet")
    w = w[w["allocator"] == allocator]
    n_checked = 0
    for k, g in w.groupby("window"):
        cut = pd.Timestamp(g["cutoff"].iloc[0])
        i = cal.get_loc(cut)
        hist = {n: int((r.index <= cut).sum()) for n, r in own.items()}
        elig = sorted(n for n in own if hist[n] >= cfg["min_history"])
        got = dict(zip(g["sleeve"], g["weight"]))
        for n in own:
            if n not in elig:
                assert got[n] == 0.0
        if len(elig) < 2:
            continue
        start = cal[i - cfg["train_window"]] if i - cfg["train_window"] >= 0 else None
        x = independent_carry({n: own[n] for n in elig}, start, cut)
        cov = np.cov(x.to_numpy(), rowvar=False, ddof=1)
        if allocator == "inverse_vol":
            v = 1 / np.sqrt(np.diag(cov))
            want = v / v.sum()
        else:
            want = independent_hrp(cov)
        for n, wv in zip(x.columns, want):
            assert got[n] == pytest.approx(wv, abs=1e-10), (k, n)
        n_checked += 1
    assert n_checked >= 3  # windows with at least two sleeves eligible


def test_ledger_and_raw_audit_cover_the_meta_cells(meta_run):
    d = meta_run.run_dir
    rep = verify_ledger(d, require_run_end=True)
    assert rep.ok, rep.message
    res = compare_with_run(d)
    assert res["ok"], res["differences"][:5]
    mat = pd.read_csv(d / "performance_matrix.csv")
    added = set(mat.loc[mat["meta"].fillna("") != "", "cell_id"])
    assert added <= set(res["metrics"])  # recomputed from the ledger alone
    recs = load_records(d)
    allocs = [r["data"] for r in recs if r["type"] == "allocation" and r["data"].get("kind") == "meta_allocation"]
    w = pd.read_parquet(d / "meta" / "weights.parquet")
    assert len(allocs) == w.groupby(["allocator", "window"]).ngroups
    for a in allocs:
        g = w[(w["allocator"] == a["allocator"]) & (w["window"] == a["window"])]
        assert dict(zip(g["sleeve"], g["weight"])) == a["weights"]
        assert set(a["sleeve_returns_sha256"]) == set(g["sleeve"])
    sleeves = next(r["data"] for r in recs if r["data"].get("key") == "meta_sleeves")
    assert set(sleeves["sleeves"]) == {"crypto_v4_hrp", "crypto_raw_mv", "crypto_perp", "equities_v4"}
    checks = [r["data"] for r in recs if r["type"] == "check"]
    meta_cells = set(mat.loc[mat["meta"].fillna("").str.startswith("meta:"), "cell_id"])
    for name in ("metric_mismatch", "volatility_band", "zero_bankruptcy"):
        got = {c.get("cell_id") for c in checks if c.get("name") == name}
        assert meta_cells <= got, name
    mm = [c for c in checks if c.get("name") == "metric_mismatch" and c.get("cell_id") in meta_cells]
    assert all(c["status"] == "pass" for c in mm)
    sd = [c for c in checks if c.get("name") == "simulator_disagreement" and c.get("cell_id") in meta_cells]
    assert len(sd) == 4 and all(c["status"] == "pass" for c in sd)  # one per allocator (vectorbt cell)


def test_summary_compares_meta_with_the_best_sleeve(meta_run):
    boot = json.loads((meta_run.run_dir / "bootstrap.json").read_text())
    info = boot["meta"]
    assert info["calendar"]["periods_per_year"] == 365
    assert len(info["cells"]) == 4  # one per allocator, the trial simulator's
    for c in info["cells"].values():
        v = c["vs_best_sleeve"]
        assert v["sleeve"] == max(c["sleeve_sharpes_on_meta_dates"], key=c["sleeve_sharpes_on_meta_dates"].get)
        assert v["ci_low"] <= v["difference"] <= v["ci_high"]
        assert c["diversification_ratio"]["realised"] > 0


def test_report_has_the_meta_section(meta_run):
    from reports import render_report

    index = render_report(meta_run.run_dir)
    html = index.read_text()
    assert 'id="meta"' in html and "meta-vs-sleeve-table" in html
    for png in ("meta_weights.png", "meta_equity.png", "meta_dr.png"):
        assert (index.parent / "img" / png).is_file(), png
    assert "vs best single sleeve" in html


def test_replay_of_a_meta_run_is_identical(meta_run, tmp_path):
    """Re-executing the run (sleeves' walk-forward and meta layer included) gives the same returns,
    matrix, bootstrap.json and keyed ledger records (meta_sleeves, meta_allocation, simulation)."""
    from tournament.replay import replay_run

    rep = replay_run(meta_run.run_dir, out_dir=tmp_path / "replay")
    assert rep.identical, rep.first


def test_mlflow_export_holds_the_meta_and_sleeve_cells(meta_run, tmp_path):
    """Issue 18 x 17: one child per matrix row, meta and walked-forward sleeve rows tagged as such."""
    pytest.importorskip("mlflow", reason="the mlflow extra")
    from mlflow.tracking import MlflowClient

    from tournament.export_mlflow import export_run

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    export_run(meta_run.run_dir, tracking_uri=uri, experiment="meta")
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("meta")
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    cells = [r for r in runs if r.data.tags["wfaudit.role"] == "cell"]
    mat = pd.read_csv(meta_run.run_dir / "performance_matrix.csv", dtype=str, keep_default_na=False)
    assert len(cells) == len(mat)
    kinds = {r.data.tags["wfaudit.cell_id"]: r.data.tags["wfaudit.kind"] for r in cells}
    for _, row in mat.iterrows():
        if row["engine"].startswith("meta:"):
            assert kinds[row["cell_id"]] == "meta"
        elif row["engine"].startswith("sleeve:"):
            assert kinds[row["cell_id"]] == "sleeve"
        else:
            assert kinds[row["cell_id"]] not in ("meta", "sleeve")
    assert sum(k == "meta" for k in kinds.values()) == mat["engine"].str.startswith("meta:").sum() > 0
    assert sum(k == "sleeve" for k in kinds.values()) == mat["engine"].str.startswith("sleeve:").sum() > 0


def test_replay_compares_the_meta_files(meta_run, tmp_path, monkeypatch):
    """A replay whose meta weights differ is not identical, and names meta/weights.parquet (the
    ledger's digest check, which catches an edited file first, is bypassed to reach the comparison)."""
    import shutil

    from contracts.errors import LedgerError
    from tournament import replay
    from tournament.replay import compare_runs

    copy = tmp_path / "copy"
    shutil.copytree(meta_run.run_dir, copy)
    w = pd.read_parquet(copy / "meta" / "weights.parquet")
    col = next(c for c in w.columns if pd.api.types.is_float_dtype(w[c]))
    w.loc[w.index[-1], col] = w[col].iloc[-1] + 1e-6
    w.to_parquet(copy / "meta" / "weights.parquet")
    with pytest.raises(LedgerError, match="meta/weights.parquet"):
        compare_runs(meta_run.run_dir, copy)
    monkeypatch.setattr(replay, "load_records", lambda d: load_records(d, check_files=False))
    assert compare_runs(meta_run.run_dir, meta_run.run_dir).identical
    rep = compare_runs(meta_run.run_dir, copy)
    assert not rep.identical and rep.first.file == "meta/weights.parquet"
