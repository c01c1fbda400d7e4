"""A small hand-built run directory (DESIGN section 3 schemas) for the report tests and timings.

``build_run(root, n_windows=...)`` writes config.yaml, audit.jsonl (with ``audit.ledger.
LedgerWriter``), selection/<sid>/<k>/portfolio_candidates.json (with a real scipy Ward linkage),
the Parquet files (checked by ``contracts.schemas.check_frame``), performance_matrix.csv and
bootstrap.json. Every number is drawn from ``numpy.random.default_rng(seed)``; the returned
``FixtureRun`` keeps what the tests compare the pages against.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.cluster.hierarchy import linkage

from audit.ledger import LedgerWriter
from contracts.cell import CellKey, SettingKey
from contracts.enums import RecordType, SpecVersion
from contracts.schemas import RUN_SCHEMAS, check_frame

ENGINES = ["v4", "v3.4", "random"]
PROFILES = ["hrp", "min_variance"]
BANDS = {"hrp": "0.45-0.50", "min_variance": "0.35"}
P = 365


@dataclass
class FixtureRun:
    run_dir: Path
    cells: pd.DataFrame
    matrix: pd.DataFrame
    returns: pd.DataFrame
    allocations: dict = field(default_factory=dict)   # (unit, engine, profile, backend) -> record data
    candidates: dict = field(default_factory=dict)    # unit -> portfolio_candidates content
    settings: list = field(default_factory=list)
    liquidated_cell: str = ""
    boot: dict = field(default_factory=dict)


def _clock():
    t = [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)]

    def tick():
        t[0] = t[0] + dt.timedelta(seconds=1)
        return t[0]
    return tick


def _cells(settings: list[SettingKey]) -> list[CellKey]:
    out = []
    for i, s in enumerate(settings):
        backends = ["native", "riskfolio"] if i == 0 else ["native"]
        sims = ["vectorbt", "reference"] if i == 0 else ["vectorbt"]
        for e in ENGINES:
            for p in PROFILES:
                for b in backends:
                    for sm in sims:
                        out.append(CellKey(engine=e, profile=p, backend=b, simulator=sm, **s.model_dump()))
    return out


def _selection(rng, engine: str, k: int, cutoff: str) -> dict:
    n = 8
    ids = [f"S{i}_mom_{'LONG' if i % 3 else 'SHORT'}" for i in range(n)]
    x = rng.normal(size=(n, 30))
    z = linkage(x, method="ward")
    n_win = 4 if engine != "random" else 3
    winners = []
    for i in range(n_win):
        d = "LONG" if i % 3 else "SHORT"
        winners.append({"id": f"S{i}_mom_{d}", "symbol": f"S{i}USDT", "identity": f"S{i}", "direction": d,
                        "logic": "mom", "cluster": i % 3, "sector": ["L1", "DeFi", "AI"][i % 3],
                        "conviction": {"logmps": float(np.round(rng.normal(), 6))} if engine != "random" else {},
                        "htr_stage": (1 + (k % 2)) if engine != "random" else None})
    rejected = [{"id": ids[i], "symbol": f"S{i}USDT", "reasons": ["liquidity_floor"] if i % 2 else
                 ["sentiment", "adx_floor"], "last_stage": 1} for i in range(n_win, n)]
    stage = (1 + (k % 2)) if engine != "random" else None
    hardened = bool(k % 3 == 0) and engine == "v4"
    audit_ev = []
    if engine != "random":
        audit_ev = [{"stage": "vetoes", "event": "decided", "data": {
            "hardened": hardened, "entropy_mean": 0.51, "critical_value": 0.41, "entropy_max": 0.9, "n": n,
            "shrinkage_intensity": 0.05 if hardened else 0.01}}]
        for s in range(1, (stage or 0) + 1):
            audit_ev.append({"stage": "policy", "event": "pass", "data": {
                "scorer": "logmps", "stage": s, "n_winners": n_win if s == stage else 2, "n_shorts": 1,
                "n_forced": 0, "thresholds": {"entropy_max": 0.9, "efficiency_min": 0.1, "adx_min": 20},
                "n_vetoed": {"liquidity_floor": 2}}})
    funnel = None if engine == "random" else {
        "snapshot": 12, "deduplicated": 10, "after_hard_vetoes": n, "after_all_vetoes_stage1": 5,
        "winners_by_stage": {str(stage): n_win}, "n_clusters": 3}
    return {"engine": engine, "spec_version": {"v4": "4.0-mlops", "v3.4": "3.4"}.get(engine, "baseline"),
            "window": k, "cutoff_date": cutoff, "htr_stage": stage,
            "shrinkage_intensity": 0.05 if hardened else 0.01, "hardened": hardened,
            "manifest": {"shrinkage_intensity": 0.05 if hardened else 0.01, "hardened": hardened},
            "winners": winners, "rejected": rejected if engine != "random" else [],
            "clusters": {w["id"]: w["cluster"] for w in winners},
            "linkage": z.tolist() if engine != "random" else None,
            "linkage_labels": ids if engine != "random" else None, "funnel": funnel,
            "metrics": {"avg_conviction": 0.3}, "pipeline_audit": audit_ev}


def build_run(root: str | Path, *, n_windows: int = 3, seed: int = 0, point_in_time: bool = True,
              sweep: bool = True) -> FixtureRun:
    rng = np.random.default_rng(seed)
    run_dir = Path(root) / "run-fixture"
    run_dir.mkdir(parents=True)
    base = SettingKey(step_size=5, train_window=30, feature_lookback=20)
    settings = [base] + ([SettingKey(step_size=10, train_window=30, feature_lookback=20)] if sweep else [])
    cfg = {"preset": "test", "seed": seed, "engines": ENGINES, "profiles": PROFILES,
           "base": base.model_dump(), "sweeps": {"step_size": [10] if sweep else []},
           "market": {"calendar": "crypto"}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    n_bars = 30 + 5 * n_windows
    dates = pd.date_range("2024-01-01", periods=n_bars, freq="D", tz="UTC")
    fx = FixtureRun(run_dir, None, None, None, settings=settings)  # type: ignore[arg-type]
    w = LedgerWriter(run_dir / "audit.jsonl", "run-fixture", clock=_clock())
    w.append(RecordType.RUN_START, SpecVersion.RUN, {
        "key": "run_start", "inputs": {
            "git_commit": "abc123def456", "panel_sha256": "f" * 64, "snapshot_sha256": {"snap": "e" * 64},
            "point_in_time": point_in_time, "n_symbols": 8, "n_bars": n_bars, "first_date": "2024-01-01",
            "last_date": str(dates[-1].date()), "calendar": "crypto", "periods_per_year": P,
            "source": "synthetic"},
        "events": [{"kind": "flash_crash", "date": str(dates[33].date())}],
        "parameters": {"htr": {"min_winners": 4}}, "versions": {"numpy": np.__version__}})
    if not point_in_time:
        w.append(RecordType.WARNING, SpecVersion.RUN, {
            "key": "warning:single_export", "code": "single_undated_export",
            "message": "candidates come from one undated export used for every window"})
    cells = _cells(settings)
    win_rows, weight_rows, ret_rows = [], [], []
    sched: dict[str, list[tuple[int, int]]] = {}
    for s in settings:
        n = n_windows if s == base else max(1, n_windows // 2)
        sched[s.id] = [(k, 29 + s.step_size * k) for k in range(n)]
        for k, c in sched[s.id]:
            unit = f"{s.id}/{k}"
            win_rows.append((s.id, k, dates[c], dates[c + 1], dates[c + 1], dates[c + s.step_size], dates[c - 29]))
            w.append(RecordType.WINDOW, SpecVersion.RUN, {"key": f"window:{unit}", "unit": unit, "setting_id": s.id,
                                                          "window": k, "cutoff": dates[c].isoformat()})
            sels = {e: _selection(rng, e, k, dates[c].isoformat()) for e in ENGINES}
            fx.candidates[unit] = {"window": k, "cutoff_date": dates[c].isoformat(), "engines": sels}
            p = run_dir / "selection" / s.id / str(k) / "portfolio_candidates.json"
            p.parent.mkdir(parents=True)
            p.write_text(json.dumps(fx.candidates[unit]))
            for e, sel in sels.items():
                w.append(RecordType.SELECTION, SpecVersion.V4, {
                    "key": f"selection:{unit}:{e}", "unit": unit, "engine": e, "htr_stage": sel["htr_stage"],
                    "manifest": sel["manifest"], "funnel": sel["funnel"], "atoms": [a["id"] for a in sel["winners"]],
                    "metrics": sel["metrics"], "pipeline_audit": sel["pipeline_audit"]})
                for prof in PROFILES:
                    for b in (["native", "riskfolio"] if s == base else ["native"]):
                        raw = rng.uniform(0.1, 1.0, size=len(sel["winners"]))
                        wts = {a["id"]: float(x) for a, x in zip(sel["winners"], raw / raw.sum())}
                        fb = (e == "v3.4" and prof == "min_variance" and k == 1 and b == "native")
                        # issue 19: v4's HRP relaxed its atom cap in window 1 (every setting)
                        rl = (e == "v4" and prof == "hrp" and k == 1 and b == "native")
                        data = {"key": f"allocation:{unit}:{e}|{prof}|{b}", "unit": unit, "engine": e,
                                "profile": prof, "backend": b, "weights": wts, "solver": "clarabel",
                                "status": "fallback" if fb else ("relaxed" if rl else "optimal"),
                                "fallback_used": fb,
                                "reason": "infeasible: equal weight" if fb else (
                                    "relaxed to stay feasible: atom_cap=0.3" if rl else None),
                                "binding": ["cluster_cap:0"], "relaxed": {"atom_cap": 0.3} if rl else {},
                                "diagnostics": {"ex_ante_vol_annual": float(rng.uniform(0.2, 0.6))}}
                        w.append(RecordType.ALLOCATION, SpecVersion.V4, data)
                        fx.allocations[(unit, e, prof, b)] = data
                        for cell in cells:
                            if (cell.engine, cell.profile.value, cell.backend.value, cell.setting) == (e, prof, b, s):
                                for a in sel["winners"]:
                                    weight_rows.append((cell.id, k, a["id"], a["symbol"], a["direction"], wts[a["id"]]))
    liq_cell = next(c for c in cells if c.engine == "v3.4" and c.profile.value == "hrp" and c.setting == base
                    and c.backend.value == "native" and c.simulator.value == "vectorbt")
    fx.liquidated_cell = liq_cell.id
    for cell in cells:
        for k, c in sched[cell.setting.id]:
            r = rng.normal(0.001, 0.02, size=cell.step_size)
            for j in range(cell.step_size):
                ret_rows.append((cell.id, dates[c + 1 + j], k, float(r[j]), False))
    ret = pd.DataFrame(ret_rows, columns=[c.name for c in RUN_SCHEMAS["returns.parquet"]])
    # the liquidated cell: -100% on its window-1 third bar, 0 afterwards
    m = ret["cell_id"] == liq_cell.id
    liq_date = dates[29 + 5 + 3]
    ret.loc[m & (ret["date"] == liq_date), "return"] = -1.0
    ret.loc[m & (ret["date"] > liq_date), "return"] = 0.0
    ret.loc[m & (ret["date"] >= liq_date), "liquidated"] = True
    fx.returns = ret
    _write_frames(run_dir, cells, ret, win_rows, weight_rows)
    for s in settings:
        sub = ret[ret["cell_id"].isin([c.id for c in cells if c.setting == s])]
        for k, g in sub.groupby("window"):
            piv = g.pivot(index="date", columns="cell_id", values="return").sort_index()
            w.append(RecordType.SIMULATION, SpecVersion.RUN, {
                "key": f"simulation:{s.id}/{k}", "window": int(k), "setting_id": s.id,
                "dates": [d.isoformat() for d in piv.index], "periods_per_year": P,
                "returns": {cid: piv[cid].tolist() for cid in piv.columns}})
    w.append(RecordType.SIMULATION, SpecVersion.RUN, {"key": "simevent:0", "event": {
        "type": "liquidation", "cell_id": liq_cell.id, "date": liq_date.isoformat(), "bar": 37, "equity": 0.0}})
    _checks(w, cells, base, liq_cell, liq_date)
    w.close()
    fx.cells = pd.read_parquet(run_dir / "cells.parquet")
    fx.matrix = _with_status_counts(run_dir, _matrix(run_dir, cells, ret, base, rng), cells, sched,
                                    fx.allocations)
    fx.boot = _bootstrap(run_dir, fx.matrix, rng)
    return fx


def _write_frames(run_dir, cells, ret, win_rows, weight_rows):
    def put(name, df):
        check_frame(df, name).to_parquet(run_dir / name, index=False)
    rows = []
    for c in cells:
        r = ret.loc[ret["cell_id"] == c.id, "return"].to_numpy()
        rows.append({"cell_id": c.id, **c.dims(), "sim_total_return": float(np.prod(1 + r) - 1),
                     "sim_sharpe": float(r.mean() / r.std(ddof=1) * np.sqrt(P)), "sim_max_drawdown": -0.1,
                     "liquidated": bool(ret.loc[ret["cell_id"] == c.id, "liquidated"].any()),
                     "n_windows": int(ret.loc[ret["cell_id"] == c.id, "window"].nunique())})
    put("cells.parquet", pd.DataFrame(rows))
    put("windows.parquet", pd.DataFrame(win_rows, columns=[c.name for c in RUN_SCHEMAS["windows.parquet"]]))
    put("weights.parquet", pd.DataFrame(weight_rows, columns=[c.name for c in RUN_SCHEMAS["weights.parquet"]]))
    put("returns.parquet", ret)
    for name in ("positions.parquet", "exposure.parquet"):
        put(name, pd.DataFrame({c.name: pd.Series(dtype={"string": "string", "float64": "float64"}.get(
            c.dtype, "datetime64[ns, UTC]" if c.dtype.startswith("datetime") else c.dtype))
            for c in RUN_SCHEMAS[name]}))


def _checks(w, cells, base, liq_cell, liq_date):
    def chk(name, status, details, cell_id=None, window=None):
        w.append(RecordType.CHECK, SpecVersion.RUN, {"key": f"check:{name}:{cell_id}:{window}", "name": name,
                                                     "status": status, "cell_id": cell_id, "window": window,
                                                     "details": details})
    for c in cells:
        chk("metric_mismatch", "fail" if c.id == liq_cell.id else "pass",
            {"metrics": {"sharpe": {"sim": 1.0, "audit": 1.2 if c.id == liq_cell.id else 1.0, "ok": c.id != liq_cell.id}}},
            c.id)
        chk("volatility_band", "pass", {"realised_vol": 0.4, "band": [0.45, 0.5], "flag": None}, c.id)
    chk("outlier_quarantine", "warn", {"reasons": ["market_crash"], "worst_span_return": -0.3}, None, 0)
    chk("zero_bankruptcy", "fail", {"liquidated_date": liq_date.isoformat(), "liquidated_window": 1, "final_equity": 0.0},
        liq_cell.id)
    for c in cells:
        if c.setting == base and c.simulator.value == "vectorbt" and c.backend.value == "native":
            chk("backend_disagreement", "warn" if c.engine == "v4" else "pass",
                {"native_cell": c.id, "riskfolio_cell": "rf", "max_abs_weight_diff": 0.02 if c.engine == "v4" else 1e-6,
                 "worst_window": 2, "tolerance": 1e-4}, c.id)
            chk("simulator_disagreement", "pass", {"vectorbt_cell": c.id, "reference_cell": "ref",
                                                  "max_abs_return_diff": 3e-9, "tolerance": 1e-6}, c.id)
    w.append(RecordType.CHECK, SpecVersion.RUN, {"key": "check_summary", "name": "summary", "ok": False})


def _matrix(run_dir, cells, ret, base, rng) -> pd.DataFrame:
    rows = []
    for c in cells:
        r = ret.loc[ret["cell_id"] == c.id, "return"].to_numpy()
        sh = float(r.mean() / r.std(ddof=1) * np.sqrt(P))
        trial = c.backend.value == "native" and c.simulator.value == "vectorbt"
        vol = float(r.std(ddof=1) * np.sqrt(P))
        rows.append({"cell_id": c.id, **c.dims(), "trial": trial, "sharpe": sh, "sharpe_ci_low": sh - 1.0,
                     "sharpe_ci_high": sh + 1.0, "cagr": float(rng.normal(0.1, 0.1)), "max_drawdown": -0.2,
                     "annual_volatility": vol, "vol_band": BANDS[c.profile.value], "band_distance": 0.05,
                     "psr": 0.7, "dsr": float(rng.uniform()) if trial else np.nan, "n_trials": 12 if trial else np.nan,
                     "n_trials_effective": 7.5 if trial else np.nan, "liquidated": bool(r.min() <= -1.0),
                     "drift": False, "n_windows": 3, "degenerate": False})
    m = pd.DataFrame(rows)
    m.to_csv(run_dir / "performance_matrix.csv", index=False, float_format="%.10g")
    return pd.read_csv(run_dir / "performance_matrix.csv")


def _with_status_counts(run_dir, matrix, cells, sched, allocations) -> pd.DataFrame:
    """The matrix with ``n_relaxed``/``n_fallback`` (tournament.relaxations) counted from the
    allocation records written above."""
    counts = {}
    for c in cells:
        recs = [allocations[(f"{c.setting.id}/{k}", c.engine, c.profile.value, c.backend.value)]
                for k, _ in sched[c.setting.id]]
        counts[c.id] = (sum(r["status"] == "relaxed" for r in recs), sum(bool(r["fallback_used"]) for r in recs))
    matrix = matrix.copy()
    matrix["n_relaxed"] = matrix["cell_id"].map(lambda cid: counts[cid][0])
    matrix["n_fallback"] = matrix["cell_id"].map(lambda cid: counts[cid][1])
    matrix.to_csv(run_dir / "performance_matrix.csv", index=False, float_format="%.10g")
    return pd.read_csv(run_dir / "performance_matrix.csv")


def _bootstrap(run_dir, matrix, rng) -> dict:
    boot = {"n_trials": int(matrix["trial"].sum()), "common_dates": 15,
            "effective_trials": {"n_effective": 7.5, "n_trials": 12},
            "pbo": {"pbo": 0.3125, "lambdas": rng.normal(0.5, 1.0, size=70).tolist(), "prob_oos_loss": 0.4,
                    "n_splits": 8, "n_trials": 12, "n_obs": 15, "n_combinations": 70, "n_degenerate_trials": 1},
            "paired_tests": {"tests": [
                {"comparison": "v4 vs v3.4", "a": "v4", "b": "v3.4", "profile": "hrp", "step_size": 5,
                 "train_window": 30, "feature_lookback": 20, "difference": 0.42, "ci_low": -0.1, "ci_high": 0.9,
                 "pvalue": 0.0123, "pvalue_holm": 0.0369, "reject_holm": True},
                {"comparison": "v4 vs random", "a": "v4", "b": "random", "profile": "hrp", "step_size": 5,
                 "train_window": 30, "feature_lookback": 20, "difference": -0.2, "ci_low": -0.8, "ci_high": 0.4,
                 "pvalue": 0.456, "pvalue_holm": 0.912, "reject_holm": False}],
                "verdicts": {"v4 vs v3.4": {"n": 1, "a_better_significant": 1, "b_better_significant": 0,
                                            "mean_difference": 0.42},
                             "v4 vs random": {"n": 1, "a_better_significant": 0, "b_better_significant": 0,
                                              "mean_difference": -0.2}}, "correction": "holm"},
            "spa": {"hrp": {"pvalues": {"consistent": 0.234, "lower": 0.2, "upper": 0.3}}},
            "mcs": {"included": ["v4|hrp"], "excluded": ["random|hrp"], "pvalues": {"v4|hrp": 1.0, "random|hrp": 0.01}},
            "checks": {"ok": False, "n_checks": 5, "by_name": {"bankruptcy": {"pass": 0, "warn": 0, "fail": 1}},
                       "failures": [{"name": "bankruptcy", "cell_id": "x", "window": None}], "warnings": []},
            "quarantine": {"windows": [0], "metrics_with_and_without": {
                str(matrix.loc[matrix["trial"], "cell_id"].iloc[0]): {"all": {"sharpe": 1.5, "max_drawdown": -0.2}, "ex_quarantine": {"sharpe": 1.1,
                                                                                     "max_drawdown": -0.1},
                       "n_bars_excluded": 5, "windows_excluded": [0]}}},
            "htr_stages": {"v4": {"stages": {"1": 2, "2": 1}, "hardened": 1, "windows": 3},
                           "random": {"stages": {"None": 3}, "hardened": 0, "windows": 3}}}
    (run_dir / "bootstrap.json").write_text(json.dumps(boot))
    return boot
