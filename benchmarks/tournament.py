"""Tournament benchmark: full-preset wall time and memory, a skfolio walk-forward, and the executors.

1. ``full`` preset without the report (process executor, 2 workers): wall seconds and the peak RSS of
   the process tree (the main process plus every child, summed; psutil sampled every 0.2 s), and the
   **per-phase profile** (``phase_profile``: market load + derived fields, selection per engine group,
   allocation per backend, simulation per simulator, checks, statistics, files; seconds and share of
   the wall time, from ``RunOutcome.phase_seconds``). Targets (issue 23): full <= 90 s with sampled
   verification, quick <= 20 s. ``--quick`` runs the quick preset instead, ``--both`` both,
   ``--full-verification`` adds the full preset with ``verification: full`` (information);
   ``--skip-full`` skips them. Every run starts with a cold derived-fields cache (``WFAUDIT_CACHE_DIR``
   set to a new temporary folder), so the market phase includes the derivation.
2. The same HRP and MinVariance walk-forward by skfolio and by ``allocation.allocate`` (native
   backend, one ``ProblemCache`` over every window) on equal inputs: 20 fully listed spot symbols of
   the synthetic market (``--bars`` bars, default enough for 137 windows of train 252 / test 20),
   daily simple returns. skfolio: ``WalkForward(test_size=20, train_size=252)`` + ``cross_val_predict``;
   MinVariance = ``MeanRisk`` (minimise variance, long-only, budget 1) and HRP with single linkage on
   the angular distance of the prior's covariance (no optimal leaf ordering), both with a Ledoit-Wolf
   prior. Ours: 20 LONG ``rating`` atoms in 20 clusters, shrinkage 0 (plain Ledoit-Wolf), and
   ``cluster_cap=1.0`` so that the problems are identical (whether the default 0.25 cap would bind
   is reported). Timed: skfolio's ``cross_val_predict`` calls; ours, every window's request build and
   ``allocate`` (the cvxpy compile of the first window included). ``skfolio_speedup`` = skfolio /
   ours on HRP + MinVariance together (target >= 10x). Below 10x, ``allocate`` is profiled (cProfile).
3. Serial vs process(2) vs dask(2) on the quick preset with 8 windows and no report
   (``--executors-preset`` and ``--windows``, 0 for all windows, choose another preset and span);
   ``process_efficiency`` and ``dask_efficiency`` = serial seconds / (2 x parallel seconds), also on
   the units phase alone (``*_units_efficiency``); ``executors_identical`` when returns/weights/positions
   Parquet files and ``performance_matrix.csv`` are identical (``assert_frame_equal(check_exact=True)``).

numba JIT warm-up is excluded (a tiny simulation of each kind runs first; NUMBA_CACHE_DIR is set).
The machine may be shared: each measurement records ``os.getloadavg()`` at its start and end.

Usage: ``python benchmarks/tournament.py [--quick | --both] [--full-verification] [--skip-full]
[--skip-skfolio] [--skip-executors] [--executors-preset quick] [--windows 8] [--bars 2993] [--json]``
"""
from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(_ROOT, ".cache", "numba"))
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("WFAUDIT_CACHE_DIR", os.path.join(_ROOT, ".cache", "wfaudit"))
# Run as a script, this file's folder is sys.path[0] and this file's name would shadow the
# ``tournament`` package: replace it by the repository root.
sys.path[:] = [_ROOT] + [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402

from allocation import AllocationConfig, ProblemCache, allocate  # noqa: E402
from contracts import AllocationRequest, Direction, Logic, StrategyAtom  # noqa: E402
from contracts.enums import Backend, Profile  # noqa: E402
from market.panel import simple_returns  # noqa: E402
from market.synthetic import SyntheticConfig, generate  # noqa: E402
from tournament.config import load_config  # noqa: E402
from tournament.run import CACHE_ENV, run_tournament  # noqa: E402

TRAIN, TEST, N_ASSETS, TARGET_WINDOWS = 252, 20, 20, 137
FRAMES = ("returns.parquet", "weights.parquet", "positions.parquet", "performance_matrix.csv")


class TreeRSS:
    """Peak of the summed RSS of this process and all its children (psutil, sampled every 0.2 s)."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak = interval, 0

    def _sample(self) -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._sample())

    def __enter__(self) -> "TreeRSS":
        self.peak = self._sample()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.gib = self.peak / 2**30


class LastUnit:
    """``run_tournament`` progress callback: the time the last unit finished (units phase end)."""

    def __init__(self):
        self.t0, self.last = time.perf_counter(), None

    def __call__(self, done: int, total: int) -> None:
        self.last = time.perf_counter() - self.t0


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def warm_numba() -> None:
    """A tiny simulation of each kind, so that numba compilation (or cache load) is not timed
    (``tournament.post_tasks.warm_simulation_task``, which the runs' workers also get)."""
    from tournament.post_tasks import warm_simulation_task

    warm_simulation_task(None, 0)


# ---- 1. full preset ----------------------------------------------------------------------------------

def bench_full(preset: str, overrides: dict | None = None) -> dict:
    cfg = load_config(preset=preset, overrides={"report": False, "executor": "process", "workers": 2,
                                                **(overrides or {})})
    la0 = load()
    old_cache = os.environ.get(CACHE_ENV)
    with tempfile.TemporaryDirectory() as tmp, TreeRSS() as mem:
        os.environ[CACHE_ENV] = os.path.join(tmp, "cache")  # a cold derived-fields cache: derivation timed
        try:
            t0, units = time.perf_counter(), LastUnit()
            out = run_tournament(cfg, os.path.join(tmp, "runs"), progress=units)
            dt = time.perf_counter() - t0
            verif = json.loads((out.run_dir / "bootstrap.json").read_text()).get("verification")
        finally:
            os.environ.pop(CACHE_ENV) if old_cache is None else os.environ.__setitem__(CACHE_ENV, old_cache)
    return {"preset": preset, "overrides": overrides or {}, "full_preset_seconds": dt,
            "full_preset_peak_rss_gib": mem.gib,
            "units_seconds": units.last, "postprocess_seconds": dt - (units.last or 0.0),
            "n_cells": out.n_cells, "n_units": out.n_units, "loadavg_start": la0, "loadavg_end": load(),
            "phases": phase_profile(out.phase_seconds, dt), "verification": verif,
            "target_seconds": 300, "target_gib": 8}


#: post-unit phases of ``finish_run`` in the order they start (``report`` is off in these runs; ``meta``: the
#: meta-portfolio of the quick preset; ``statistics``: queued before the files, gathered after the checks)
POST_PHASES = ("plans", "simulation:vectorbt", "simulation:reference", "meta", "statistics", "files", "ledger",
               "checks")


def phase_profile(raw: dict, wall: float) -> dict:
    """Seconds and share of the run's wall time per phase, from ``RunOutcome.phase_seconds``.

    ``market`` (load + derived fields) and the post-unit phases are wall seconds of the main
    process. The units phase runs on the workers: its wall seconds are split across selection per
    engine group, allocation per backend, request building and the unit's view/pool set-up in
    proportion to the seconds the workers spent in each (summed over units). ``other`` is the rest
    (config, unit files and their ledger records, run_end)."""
    out: dict[str, dict] = {}

    def put(name: str, sec: float) -> None:
        out[name] = {"seconds": round(sec, 3), "share": round(sec / wall, 4) if wall else None}

    put("market load + derived fields", raw.get("market", 0.0))
    units_wall = raw.get("units", 0.0)
    parts = {k[5:]: v for k, v in raw.items() if k.startswith("unit:")}
    split = {k: v for k, v in parts.items() if k.startswith(("selection:", "allocation:"))}
    split["view + pool"] = max(parts.get("selection", 0.0) - sum(v for k, v in split.items()
                                                                  if k.startswith("selection:")), 0.0)
    split["allocation: other"] = max(parts.get("allocation", 0.0) - sum(v for k, v in split.items()
                                                                         if k.startswith("allocation:")), 0.0)
    busy = sum(split.values())
    for k, v in split.items():
        put(f"units: {k}", units_wall * v / busy if busy else 0.0)
    for k in POST_PHASES + tuple(k for k in raw if k in ("report",)):
        if k in raw:
            put(k, raw[k])
    put("other", max(wall - sum(v["seconds"] for v in out.values()), 0.0))
    out["_worker_seconds"] = {k: round(v, 3) for k, v in parts.items()}
    out["_units_wall_seconds"] = round(units_wall, 3)
    return out


# ---- 2. skfolio walk-forward ---------------------------------------------------------------------------

def walk_forward_returns(n_bars: int) -> tuple[pd.DataFrame, int]:
    """Daily simple returns of 20 spot symbols fully listed over the span, trimmed to whole windows."""
    mkt = generate(SyntheticConfig(n_bars=n_bars))
    closes = mkt.data.closes
    ok = [s for s in closes.columns if not s.endswith(".P") and closes[s].notna().all() and (closes[s] > 0).all()]
    if len(ok) < N_ASSETS:
        raise SystemExit(f"only {len(ok)} fully listed spot symbols in the synthetic market")
    rets = simple_returns(closes[sorted(ok)[:N_ASSETS]]).iloc[1:]
    n_win = min(TARGET_WINDOWS, (len(rets) - TRAIN) // TEST)
    return rets.iloc[len(rets) - (TRAIN + n_win * TEST):], n_win


def skfolio_models() -> dict:
    from skfolio.cluster import HierarchicalClustering, LinkageMethod
    from skfolio.distance import CovarianceDistance
    from skfolio.moments import LedoitWolf
    from skfolio.optimization import HierarchicalRiskParity, MeanRisk, ObjectiveFunction
    from skfolio.prior import EmpiricalPrior
    from skfolio.seriation import HierarchicalSeriation

    prior = lambda: EmpiricalPrior(covariance_estimator=LedoitWolf())  # noqa: E731
    return {
        "min_variance": MeanRisk(objective_function=ObjectiveFunction.MINIMIZE_RISK, min_weights=0.0,
                                 max_weights=1.0, budget=1.0, prior_estimator=prior()),
        "hrp": HierarchicalRiskParity(
            prior_estimator=prior(), distance_estimator=CovarianceDistance(covariance_estimator="precomputed"),
            seriation_estimator=HierarchicalSeriation(
                hierarchical_clustering_estimator=HierarchicalClustering(linkage_method=LinkageMethod.SINGLE),
                optimal_ordering=False)),
    }


def run_skfolio(rets: pd.DataFrame, n_win: int) -> dict:
    from sklearn.base import clone
    from skfolio.model_selection import WalkForward, cross_val_predict

    out = {}
    for name, model in skfolio_models().items():
        clone(model).fit(rets.iloc[:TRAIN])  # warm-up (imports, first calls), not timed
        t0 = time.perf_counter()
        pred = cross_val_predict(model, rets, cv=WalkForward(test_size=TEST, train_size=TRAIN))
        dt = time.perf_counter() - t0
        w = np.array([p.weights for p in pred.portfolios])
        if w.shape != (n_win, N_ASSETS):
            raise SystemExit(f"skfolio {name}: {w.shape[0]} windows, expected {n_win}")
        out[name] = (w, dt)
    return out


def _atoms(symbols: list[str]) -> list[StrategyAtom]:
    return [StrategyAtom(id=StrategyAtom.make_id(s, Logic.RATING, Direction.LONG), symbol=s, identity=s,
                         direction=Direction.LONG, logic=Logic.RATING, cluster=i) for i, s in enumerate(symbols)]


def _request(rets: pd.DataFrame, atoms: list[StrategyAtom], k: int) -> AllocationRequest:
    train = rets.iloc[k * TEST: k * TEST + TRAIN]
    return AllocationRequest(atoms=atoms, atom_returns=train.set_axis([a.id for a in atoms], axis=1),
                             asset_returns=train, shrinkage=0.0, periods_per_year=365)


def run_ours(rets: pd.DataFrame, n_win: int, profile: str, acfg: AllocationConfig) -> tuple[np.ndarray, float, float, list]:
    """(weights n_win x 20, total seconds, allocate-only seconds, allocations) over every window."""
    atoms = _atoms(list(rets.columns))
    cache = ProblemCache()
    ws, allocs, t_alloc = [], [], 0.0
    t0 = time.perf_counter()
    for k in range(n_win):
        req = _request(rets, atoms, k)
        t1 = time.perf_counter()
        a = allocate(req, Profile(profile), Backend.NATIVE, acfg, cache)
        t_alloc += time.perf_counter() - t1
        ws.append([a.weights[x.id] for x in atoms])
        allocs.append(a)
    return np.array(ws), time.perf_counter() - t0, t_alloc, allocs


def run_ours_shared(rets: pd.DataFrame, n_win: int, acfg: AllocationConfig) -> float:
    """Seconds for both profiles per window with one cache (as a tournament unit does: the window's
    covariance is then estimated once for both profiles)."""
    atoms = _atoms(list(rets.columns))
    cache = ProblemCache()
    t0 = time.perf_counter()
    for k in range(n_win):
        req = _request(rets, atoms, k)
        for p in (Profile.MIN_VARIANCE, Profile.HRP):
            allocate(req, p, Backend.NATIVE, acfg, cache)
    return time.perf_counter() - t0


def minvar_worst_window(rets: pd.DataFrame, w: np.ndarray, w_sk: np.ndarray) -> dict:
    """Why MinVariance differs: the window of the largest difference, each solution's daily variance
    under the (shared) Ledoit-Wolf covariance, and skfolio re-fitted with Clarabel tolerances 1e-12."""
    from skfolio.moments import LedoitWolf
    from skfolio.optimization import MeanRisk, ObjectiveFunction
    from skfolio.prior import EmpiricalPrior

    k = int(np.abs(w - w_sk).max(axis=1).argmax())
    train = rets.iloc[k * TEST: k * TEST + TRAIN]
    cov = LedoitWolf().fit(train.to_numpy()).covariance_
    tight = MeanRisk(objective_function=ObjectiveFunction.MINIMIZE_RISK, budget=1.0,
                     prior_estimator=EmpiricalPrior(covariance_estimator=LedoitWolf()),
                     solver_params={"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12,
                                    "max_iter": 500}).fit(train).weights_
    return {"window": k, "max_abs_diff": float(np.abs(w[k] - w_sk[k]).max()),
            "variance_ours": float(w[k] @ cov @ w[k]), "variance_skfolio": float(w_sk[k] @ cov @ w_sk[k]),
            "variance_skfolio_tight": float(tight @ cov @ tight),
            "max_abs_diff_vs_skfolio_tight": float(np.abs(w[k] - tight).max())}


def profile_ours(rets: pd.DataFrame, n_win: int, acfg: AllocationConfig, top: int = 30) -> str:
    """cProfile of our walk-forward (both profiles), cumulative, restricted to the allocation path."""
    prof = cProfile.Profile()
    prof.enable()
    for p in ("min_variance", "hrp"):
        run_ours(rets, n_win, p, acfg)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(
        r"allocation/|cvxpy/problems/problem.py|clarabel_conif|sklearn/covariance|scipy/cluster/hierarchy", top)
    return buf.getvalue().replace(_ROOT + "/", "").replace(".venv/lib/python3.11/site-packages/", "")


def bench_skfolio(n_bars: int, do_profile: bool) -> dict:
    la0 = load()
    rets, n_win = walk_forward_returns(n_bars)
    sk = run_skfolio(rets, n_win)
    acfg = AllocationConfig(cluster_cap=1.0)
    _request(rets, _atoms(list(rets.columns)), 0)  # pydantic warm-up, not timed
    rows, ours_total, ours_alloc, sk_total = {}, 0.0, 0.0, 0.0
    for p in ("min_variance", "hrp"):
        w, t_all, t_alloc, allocs = run_ours(rets, n_win, p, acfg)
        w_sk, t_sk = sk[p]
        rows[p] = {"max_abs_weight_diff": float(np.abs(w - w_sk).max()),
                   "ours_seconds": t_all, "ours_allocate_seconds": t_alloc, "skfolio_seconds": t_sk,
                   "ours_ms_per_window": 1e3 * t_all / n_win, "skfolio_ms_per_window": 1e3 * t_sk / n_win,
                   "speedup": t_sk / t_all, "statuses": sorted({a.status for a in allocs}),
                   "max_weight": float(max(w.max(), w_sk.max()))}
        if p == "min_variance":
            rows[p]["worst_window"] = minvar_worst_window(rets, w, w_sk)
        ours_total += t_all
        ours_alloc += t_alloc
        sk_total += t_sk
    shared = run_ours_shared(rets, n_win, acfg)
    out = {"n_windows": n_win, "n_assets": N_ASSETS, "n_bars_market": n_bars,
           "symbols": list(rets.columns), "span": [str(rets.index[0].date()), str(rets.index[-1].date())],
           "profiles": rows, "skfolio_speedup": sk_total / ours_total,
           "skfolio_speedup_allocate_only": sk_total / ours_alloc,
           "ours_shared_cache_seconds": shared, "skfolio_speedup_shared_cache": sk_total / shared,
           "max_abs_weight_diff_vs_skfolio": max(r["max_abs_weight_diff"] for r in rows.values()),
           "default_cluster_cap_0.25_would_bind": any(r["max_weight"] > 0.25 + 1e-9 for r in rows.values()),
           "loadavg_start": la0, "loadavg_end": load()}
    if do_profile or out["skfolio_speedup"] < 10:
        out["profile"] = profile_ours(rets, n_win, acfg)
    return out


# ---- 3. executors ----------------------------------------------------------------------------------

def _frames(run_dir) -> dict[str, pd.DataFrame]:
    return {n: (pd.read_csv if n.endswith(".csv") else pd.read_parquet)(run_dir / n) for n in FRAMES}


def bench_executors(max_windows: int | None, preset: str = "quick") -> dict:
    """Serial, process(2) and dask(2) on ``preset`` (its last ``max_windows`` windows; None: all):
    wall seconds, ``process_efficiency`` and ``dask_efficiency`` = serial seconds / (2 x parallel
    seconds) on the whole run and on the units phase alone, and ``executors_identical``."""
    base = {"report": False, "max_windows": max_windows}
    runs, frames = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, workers in (("serial", 1), ("process", 2), ("dask", 2)):
            cfg = load_config(preset=preset, overrides={**base, "executor": kind, "workers": workers})
            la0 = load()
            t0, units = time.perf_counter(), LastUnit()
            out = run_tournament(cfg, tmp, progress=units)
            dt = time.perf_counter() - t0
            runs[kind] = {"workers": workers, "seconds": dt, "units_seconds": units.last,
                          "postprocess_seconds": dt - (units.last or 0.0), "n_units": out.n_units,
                          "loadavg_start": la0, "loadavg_end": load()}
            frames[kind] = _frames(out.run_dir)
    mismatch = []
    for kind in ("process", "dask"):
        for name in FRAMES:
            try:
                pd.testing.assert_frame_equal(frames["serial"][name], frames[kind][name], check_exact=True)
            except AssertionError as exc:
                mismatch.append(f"{kind}/{name}: {str(exc).splitlines()[0]}")
    eff = {}
    for kind in ("process", "dask"):
        r, s0 = runs[kind], runs["serial"]
        eff[f"{kind}_efficiency"] = s0["seconds"] / (r["workers"] * r["seconds"])
        if r["units_seconds"] and s0["units_seconds"]:
            eff[f"{kind}_units_efficiency"] = s0["units_seconds"] / (r["workers"] * r["units_seconds"])
    return {"preset": preset, "max_windows": max_windows, "runs": runs, **eff,
            "executors_identical": not mismatch, "mismatches": mismatch}


# ---- output ----------------------------------------------------------------------------------------

def print_table(res: dict) -> None:
    print("== 1. tournament preset runs (report off, process executor, 2 workers) ==")
    runs = res.get("presets") or {}
    if not runs:
        print("skipped")
    for name, f in runs.items():
        print(f"-- {name}: preset={f['preset']} {f['overrides'] or ''} cells={f['n_cells']}  units={f['n_units']}")
        print(f"wall seconds         {f['full_preset_seconds']:9.1f}")
        print(f"  units phase {f['units_seconds']:.1f} s, after the units (simulate, audit, statistics, "
              f"files) {f['postprocess_seconds']:.1f} s")
        print(f"peak RSS (tree) GiB  {f['full_preset_peak_rss_gib']:9.2f}   (target <= {f['target_gib']})")
        print(f"loadavg start {f['loadavg_start']}  end {f['loadavg_end']}")
        print(f"  {'phase':<36} {'seconds':>8} {'share':>7}")
        for ph, v in f["phases"].items():
            if not ph.startswith("_"):
                print(f"  {ph:<36} {v['seconds']:8.2f} {100 * v['share']:6.1f}%")
        print(f"  worker seconds summed over units: {f['phases']['_worker_seconds']}")
        v = f.get("verification") or {}
        print(f"  verification {v.get('mode')}: {v.get('n_pairs')} pairs {v.get('by_reason')}, windows "
              f"{v.get('windows_verified')}, max |dw| {v.get('max_abs_weight_diff')}")
    s = res.get("skfolio")
    print(f"\n== 2. walk-forward vs skfolio ==")
    if s:
        print(f"{s['n_windows']} windows (train {TRAIN}, test {TEST}), {s['n_assets']} daily series, "
              f"{s['span'][0]}..{s['span'][1]} (synthetic market, {s['n_bars_market']} bars)")
        print(f"{'profile':<13} {'ours s':>8} {'alloc s':>8} {'skfolio s':>9} {'ours ms/w':>9} "
              f"{'sk ms/w':>8} {'speedup':>8} {'max|dw|':>9}  statuses")
        for p, r in s["profiles"].items():
            print(f"{p:<13} {r['ours_seconds']:8.3f} {r['ours_allocate_seconds']:8.3f} {r['skfolio_seconds']:9.3f} "
                  f"{r['ours_ms_per_window']:9.2f} {r['skfolio_ms_per_window']:8.2f} {r['speedup']:8.2f} "
                  f"{r['max_abs_weight_diff']:9.2e}  {r['statuses']}")
        print(f"skfolio_speedup (HRP+MinVariance, incl. request build) {s['skfolio_speedup']:.2f}x "
              f"(allocate only {s['skfolio_speedup_allocate_only']:.2f}x; target >= 10x)")
        print(f"ours, both profiles per window on one cache (covariance shared): "
              f"{s['ours_shared_cache_seconds']:.3f} s -> {s['skfolio_speedup_shared_cache']:.2f}x")
        ww = s["profiles"]["min_variance"]["worst_window"]
        print(f"MinVariance worst window {ww['window']}: max|dw| {ww['max_abs_diff']:.2e}; daily variance ours "
              f"{ww['variance_ours']:.12e}, skfolio {ww['variance_skfolio']:.12e}, skfolio at tol 1e-12 "
              f"{ww['variance_skfolio_tight']:.12e} (max|dw| vs ours {ww['max_abs_diff_vs_skfolio_tight']:.2e})")
        print(f"max_abs_weight_diff_vs_skfolio {s['max_abs_weight_diff_vs_skfolio']:.3e}; "
              f"default cluster cap 0.25 would bind: {s['default_cluster_cap_0.25_would_bind']}")
        print(f"loadavg start {s['loadavg_start']}  end {s['loadavg_end']}")
        if "profile" in s:
            print("cProfile of our allocate() walk-forward (both profiles, cumulative):")
            print("\n".join(x[:150] for x in s["profile"].splitlines() if x.strip())[:6000])
    else:
        print("skipped")
    e = res.get("executors")
    print(f"\n== 3. executors ({e['preset'] if e else '-'} preset, last {e['max_windows'] if e else '-'} windows, "
          f"report off) ==")
    if e:
        for k, r in e["runs"].items():
            print(f"{k:<8} workers={r['workers']}  {r['seconds']:7.1f} s (units {r['units_seconds']:6.1f} s, "
                  f"after units {r['postprocess_seconds']:5.1f} s)  loadavg {r['loadavg_start']} -> "
                  f"{r['loadavg_end']}")
        print(f"efficiency = serial s / (2 x parallel s): process {e['process_efficiency']:.2f} (units phase "
              f"{e.get('process_units_efficiency', float('nan')):.2f}), dask {e['dask_efficiency']:.2f} (units phase "
              f"{e.get('dask_units_efficiency', float('nan')):.2f})")
        print(f"executors_identical {e['executors_identical']}  {e['mismatches'] or ''}")
    else:
        print("skipped")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--quick", action="store_true", help="quick preset instead of full in measurement 1")
    ap.add_argument("--both", action="store_true", help="quick and full presets in measurement 1")
    ap.add_argument("--full-verification", action="store_true",
                    help="also the full preset with verification: full (riskfolio on every window)")
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--skip-skfolio", action="store_true")
    ap.add_argument("--skip-executors", action="store_true")
    ap.add_argument("--profile", action="store_true", help="profile allocate() even at >= 10x")
    ap.add_argument("--bars", type=int, default=TRAIN + TARGET_WINDOWS * TEST + 1,
                    help="bars of the synthetic market for measurement 2 (default: 137 windows)")
    ap.add_argument("--save", help="also write the JSON object to this file")
    ap.add_argument("--windows", type=int, default=8, help="max_windows of measurement 3 (0: all windows)")
    ap.add_argument("--executors-preset", default="quick", choices=["quick", "full", "large"],
                    help="preset of measurement 3 (serial vs process(2) vs dask(2))")
    args = ap.parse_args(argv)
    warnings.simplefilter("default")
    warm_numba()
    res: dict = {"loadavg_start": load()}
    if not args.skip_skfolio:
        res["skfolio"] = bench_skfolio(args.bars, args.profile)
    if not args.skip_executors:
        res["executors"] = bench_executors(args.windows or None, args.executors_preset)
    if not args.skip_full:
        runs = {}
        for preset in (["quick", "full"] if args.both else ["quick"] if args.quick else ["full"]):
            runs[f"{preset}_preset"] = bench_full(preset)
        if args.full_verification:
            runs["full_preset_full_verification"] = bench_full("full", {"verification": "full"})
        res["presets"] = runs
    res["loadavg_end"] = load()
    runs = res.get("presets", {})
    flat = {"full_preset_seconds": runs.get("full_preset", {}).get("full_preset_seconds"),
            "quick_preset_seconds": runs.get("quick_preset", {}).get("full_preset_seconds"),
            "full_preset_full_verification_seconds":
                runs.get("full_preset_full_verification", {}).get("full_preset_seconds"),
            "phases": {k: {p: v["seconds"] for p, v in r["phases"].items() if not p.startswith("_")}
                       for k, r in runs.items()},
            "full_preset_peak_rss_gib": runs.get("full_preset", {}).get("full_preset_peak_rss_gib"),
            "skfolio_speedup": res.get("skfolio", {}).get("skfolio_speedup"),
            "max_abs_weight_diff_vs_skfolio": res.get("skfolio", {}).get("max_abs_weight_diff_vs_skfolio"),
            "executors_identical": res.get("executors", {}).get("executors_identical"),
            "process_efficiency": res.get("executors", {}).get("process_efficiency"),
            "dask_efficiency": res.get("executors", {}).get("dask_efficiency"),
            "executors_preset": res.get("executors", {}).get("preset")}
    if args.save:
        with open(args.save, "w") as fh:
            json.dump({**flat, **res}, fh, default=str, indent=1)
    if args.json:
        print(json.dumps({**flat, **res}, default=str))
    else:
        print_table(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
