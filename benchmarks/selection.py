"""Benchmark of the v4 selection pipeline (one window) against a per-asset loop.

Inputs: a seeded synthetic market of N assets x 500 daily bars (20 factors, 10 % late listings,
LONG and SHORT, 4 logics, 10 sectors, all liquid) and one candidate per asset; the train slice is
the whole panel, ``feature_lookback`` 120. ``depth_cap`` is set to N so that all N candidates reach
the features (the default cap of 100 per logic and direction would cut the pool to 800).

Measured in the same run (``time.perf_counter``, best of ``--repeat``):
- ``v4 pipeline``: ``registry.run_window(view, ["v4"], ...)`` with the default config (champion
  Log-MPS and the ridge challenger scored, the policy for v4), fresh ``FeatureCache`` each run
  sharing one warmed entropy null-table cache (the null tables are a cross-window cache: building
  them is warm-up, excluded);
- ``vectorised features+scores``: the feature store and the Log-MPS scores of the same pool;
- ``loop features+scores``: the same features and scores computed column by column in plain
  Python/numpy (``loop_features``), checked against the vectorised values (max relative error).

``loop_speedup`` is the loop's time over the vectorised features+scores time at N=1000 (the loop
runs at the smallest size only unless ``--loop-all``).

Run: ``.venv/bin/python benchmarks/selection.py [--json] [--sizes 1000 5000] [--repeat 2] [--loop-all]``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# ``selection`` package: put the repository root first instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np
import pandas as pd
from scipy import stats

from contracts.candidate import CANDIDATE_COLUMNS
from contracts.window import Window
from market.calendar import CRYPTO
from market.entropy import EntropyNullCache, permutation_entropy
from market.view import PastView
from selection.config import LOGMPS_COMPONENTS, SelectionConfig
from selection.pipeline.features import build_feature_store
from selection.pipeline.ingestion import deduplicate, direction_adjusted_returns, normalise_pool
from selection.pipeline.scoring import MAPPINGS, log_mps
from selection.registry import FeatureCache, run_window

BARS = 500
LOOKBACK = 120


def make_market(n: int, seed: int = 0) -> PastView:
    rng = np.random.default_rng([seed, n])
    k = 20
    fac = rng.normal(0.0, 0.02, (BARS, k))
    load = np.zeros((n, k))
    load[np.arange(n), rng.integers(0, k, n)] = rng.uniform(0.5, 1.2, n)
    r = fac @ load.T + rng.normal(0.0, 0.02, (BARS, n)) + rng.normal(0.0, 0.001, n)
    closes = 100.0 * np.cumprod(1.0 + np.clip(r, -0.5, 0.5), axis=0)
    late = rng.random(n) < 0.10
    starts = rng.integers(100, BARS - 30, n)
    for j in np.flatnonzero(late):
        closes[: starts[j], j] = np.nan
    idx = pd.date_range("2021-01-01", periods=BARS, freq="D", tz="UTC")
    syms = [f"S{j:05d}USDT.P" for j in range(n)]
    d = np.where(rng.random(n) < 0.3, "SHORT", "LONG")
    sign = np.where(d == "SHORT", -1.0, 1.0)
    pool = pd.DataFrame({
        "symbol": syms, "exchange": "BINANCE", "asset_type": "perp",
        "sector": [f"sec{j % 10}" for j in range(n)],
        "logic": np.array(["rating", "trend", "mom", "rev"])[np.arange(n) % 4], "direction": d,
        "Value.Traded": rng.uniform(6e7, 5e9, n), "Recommend.All": sign * rng.uniform(-0.2, 0.9, n),
        "Recommend.MA": sign * rng.uniform(-0.5, 0.9, n), "ROC": rng.uniform(-30, 30, n),
        "Volatility.D": rng.uniform(1, 10, n), "ADX": rng.uniform(5, 45, n), "snapshot_date": idx[-1],
    })[list(CANDIDATE_COLUMNS)]
    w = Window(index=0, cutoff=BARS - 1, train_start=0, step_size=20, n_test=20)
    return PastView(window=w, closes=pd.DataFrame(closes, index=idx, columns=syms), pool=pool,
                    calendar=CRYPTO)


def _hurst_loop(y: np.ndarray) -> float:
    n = y.size
    if n < 32:
        return 0.5
    lx, ly = [], []
    lag = 8
    while lag <= n / 2:
        rs = []
        for b in range(n // lag):
            blk = y[b * lag:(b + 1) * lag]
            if blk.max() == blk.min():
                continue
            dev = blk - blk.mean()
            cum = np.cumsum(dev)
            rs.append((cum.max() - cum.min()) / math.sqrt(float(np.mean(dev * dev))))
        if rs:
            lx.append(math.log(lag))
            ly.append(math.log(float(np.mean(rs))))
        lag *= 2
    if len(lx) < 2:
        return 0.5
    return float(min(1.0, max(0.0, np.polyfit(lx, ly, 1)[0])))


def loop_features(x: np.ndarray, valid_closes: np.ndarray, pool: pd.DataFrame, p: int,
                  cache: EntropyNullCache) -> pd.DataFrame:
    """The feature store, one candidate at a time (the per-asset reference)."""
    rows = []
    for j in range(x.shape[1]):
        col = x[:, j]
        v = col[~np.isnan(col)]
        n = v.size
        f = {"n_valid": float(n)}
        f["momentum"] = v.mean() * p if n else math.nan
        f["volatility"] = v.std(ddof=1) * math.sqrt(p) if n >= 2 else math.nan
        f["stability"] = 1.0 / (f["volatility"] + 1e-9)
        path = np.abs(v).sum()
        f["efficiency"] = math.nan if n < 10 else (0.0 if path < 1e-12 else abs(v.sum()) / path)
        f["hurst"] = _hurst_loop(v)
        f["hurst_clean"] = min(1.0, max(0.0, 1.0 - 2.0 * abs(f["hurst"] - 0.5)))
        const = n == 0 or v.max() == v.min()
        f["skew"] = 0.0 if n <= 2 or const else float(stats.skew(v))
        f["kurtosis"] = 0.0 if n <= 2 or const else float(stats.kurtosis(v))
        if n <= 20:
            f["cvar"], f["tail_gain"] = -0.1, 0.0
        else:
            q05, q95 = np.quantile(v, [0.05, 0.95])
            f["cvar"] = float(v[v <= q05].mean())
            hi = v[v > q95]
            f["tail_gain"] = float(hi.mean()) if hi.size else 0.0
        raw, nw = permutation_entropy(col[:, None])
        f["entropy"] = float(cache.percentile(raw, nw)[0])
        nh = valid_closes[:, j].sum()
        f["n_history"], f["survival"] = float(nh), nh / valid_closes.shape[0]
        row = pool.iloc[j]
        vt = row["Value.Traded"]
        f["liquidity"] = math.log10(vt) if vt > 0 else math.nan
        for c in ("Recommend.All", "Recommend.MA", "ROC"):
            f[c] = row["d"] * row[c]
        f["Volatility.D"], f["ADX"] = row["Volatility.D"], row["ADX"]
        rows.append(f)
    fs = pd.DataFrame(rows, index=pool.index)
    sk, tg = fs["skew"], fs["tail_gain"]
    mm = lambda s: (s - s.min()) / (s.max() - s.min())  # noqa: E731
    fs["antifragility"] = (mm(sk) + mm(tg)) * np.minimum(1.0, fs["n_valid"] / p)
    return fs


def loop_scores(fs: pd.DataFrame, weights: dict[str, float]) -> np.ndarray:
    probs = {k: MAPPINGS[m](fs[k].to_numpy()) for k, (m, _) in LOGMPS_COMPONENTS.items()}
    out = np.empty(len(fs))
    for i in range(len(fs)):
        s = 0.0
        for k in LOGMPS_COMPONENTS:
            s += weights[k] * math.log(probs[k][i])
        out[i] = math.exp(s)
    return out


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def measure(n: int, repeat: int, null_cache: EntropyNullCache, loop: bool) -> dict:
    view = make_market(n)
    cfg = SelectionConfig(depth_cap=n)
    run_window(view, ["v4"], cfg, seed=0, cache=FeatureCache(null_cache=null_cache))  # warm-up
    t_pipe, res = _best(lambda: run_window(view, ["v4"], cfg, seed=0,
                                           cache=FeatureCache(null_cache=null_cache)), repeat)
    pool = deduplicate(normalise_pool(view.pool), view.closes, cfg, [])
    ret = direction_adjusted_returns(view.closes, pool, BARS)
    valid = ~np.isnan(view.closes[list(pool["symbol"])].to_numpy())
    w = cfg.effective_weights()

    def vec():
        fs = build_feature_store(ret, valid, pool, LOOKBACK, 365, null_cache)
        return fs, log_mps(fs, w)

    t_vec, (fs, a) = _best(vec, repeat)
    out = {"n": n, "pipeline_s": t_pipe, "vector_s": t_vec, "n_winners": len(res["v4"].atoms),
           "n_clusters": res["v4"].funnel.n_clusters}
    if loop:
        x = ret.to_numpy()[-LOOKBACK:]
        t_loop, (lfs, la) = _best(lambda: (lambda f: (f, loop_scores(f, w)))(
            loop_features(x, valid, pool, 365, null_cache)), 1)
        cols = [c for c in lfs.columns if c in fs.columns]
        err = np.nanmax(np.abs(lfs[cols].to_numpy() - fs[cols].to_numpy())
                        / np.maximum(1e-12, np.abs(fs[cols].to_numpy())))
        out.update(loop_s=t_loop, speedup=t_loop / t_vec, max_rel_err=float(err),
                   score_rel_err=float(np.max(np.abs(la - a) / np.maximum(1e-300, a))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--loop-all", action="store_true",
                    help="run the per-asset loop at every size (default: the smallest only, ~5 s "
                         "at N=1000 against ~35 s at N=5000)")
    args = ap.parse_args()
    null_cache = EntropyNullCache()
    rows = [measure(n, args.repeat, null_cache, loop=args.loop_all or n == min(args.sizes))
            for n in args.sizes]
    by_n = {r["n"]: r for r in rows}
    ref = by_n.get(1000, rows[0])
    summary = {"seconds_n1000": by_n.get(1000, {}).get("pipeline_s"),
               "seconds_n5000": by_n.get(5000, {}).get("pipeline_s"),
               "loop_speedup": ref.get("speedup"), "bars": BARS, "lookback": LOOKBACK, "rows": rows}
    if args.json:
        print(json.dumps(summary))
        return
    print(f"v4 selection, one window, {BARS} bars, lookback {LOOKBACK} (best of {args.repeat})")
    print(f"{'N':>6} {'pipeline s':>11} {'feat+score s':>13} {'loop s':>8} {'speedup':>8} "
          f"{'max rel err':>12} {'winners':>8} {'clusters':>9}")
    for r in rows:
        print(f"{r['n']:>6} {r['pipeline_s']:>11.3f} {r['vector_s']:>13.3f} {r.get('loop_s', math.nan):>8.2f} "
              f"{r.get('speedup', math.nan):>8.1f} {r.get('max_rel_err', math.nan):>12.1e} "
              f"{r['n_winners']:>8} {r['n_clusters']:>9}")
    print("targets: N=1000 <= 1 s, N=5000 <= 10 s, loop speedup >= 20x")


if __name__ == "__main__":
    main()
