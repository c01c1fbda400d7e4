"""Benchmark of the allocation pillar: solve time per profile and optimiser backend.

For N = 20, 50, 200, 500 atoms on T = 1,000 daily bars of a seeded 3-factor return panel (25 clusters
at most, a third of the atoms SHORT), the Ledoit-Wolf covariance is estimated once per size (not
timed: both backends share it), then each profile is run on each backend; the time is the best of
``--repeats`` runs (default 1, to keep the run short) after a warm-up run that is not timed: always
for native (it fills the ``ProblemCache``, so native times are warm-cache re-solves), and for
riskfolio at the first size only (riskfolio builds its problem on every call by design).
Each row also names the solver that answered (riskfolio's Sharpe problem fails in Clarabel at
several sizes, even with Clarabel's default settings; the chain then falls to ECOS, which is what
riskfolio's time then measures).
Reported: seconds per solve, as process CPU time (the primary figure: the machine is shared, and
with BLAS pinned to one thread and Clarabel's default single-threaded LDL it equals the wall time of
an idle machine) and as wall-clock time; the riskfolio/native ratios measured in the same run; the
largest absolute weight difference and relative objective difference between the backends.
The times include the caps, the market-neutral LPs and the cap projection, which both backends share.

Usage: ``python benchmarks/allocation.py [--json] [--sizes 20 50 200 500] [--repeats 1]``
``--json`` prints one JSON object with the same figures, including ``speedup_n500`` (riskfolio /
native CPU time, N = 500, MinVariance; ``speedup_n500_wall`` the wall-clock ratio) and
``max_abs_weight_diff`` (over the convex profiles and sizes).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # BLAS threads pinned, set visibly, before numpy
# Run as a script, this file's folder is sys.path[0] and its name would shadow the package: replace
# it by the repository root (the editable install may list ``allocation`` as a namespace).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [os.path.dirname(_HERE)] + [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from allocation import AllocationConfig, ProblemCache, estimate_covariance  # noqa: E402
from allocation import profiles as pf  # noqa: E402
from contracts import AllocationRequest, Backend, Direction, Logic, StrategyAtom  # noqa: E402

CONVEX = ("min_variance", "max_sharpe", "market_neutral")
PROFILES = CONVEX + ("hrp",)
FUNCS = {"min_variance": pf.min_variance, "max_sharpe": pf.max_sharpe,
         "market_neutral": pf.market_neutral, "hrp": pf.hrp_profile}


def make_request(n: int, t: int = 1000, seed: int = 0) -> AllocationRequest:
    """Seeded 3-factor panel of daily simple returns; cluster = i % 25; the first n // 3 are SHORT."""
    rng = np.random.default_rng(seed)
    f = rng.normal(0.0, 0.01, size=(t, 3))
    load = rng.normal(1.0, 0.5, size=(3, n)) * np.array([[1.0], [0.5], [0.3]])
    r = 4e-4 + f @ load + rng.normal(0.0, 0.015, size=(t, n)) * rng.uniform(0.5, 2.0, size=n)
    idx = pd.date_range("2022-01-01", periods=t, freq="D", tz="UTC")
    atoms, cols = [], {}
    for i in range(n):
        d = Direction.SHORT if i < n // 3 else Direction.LONG
        a = StrategyAtom(id=f"A{i}_mom_{d.value}", symbol=f"S{i}", identity=f"A{i}", direction=d,
                         logic=Logic.MOM, cluster=i % 25, conviction={"champion": float(i)})
        atoms.append(a)
        cols[a.id] = d.sign * r[:, i]
    return AllocationRequest(atoms=atoms, atom_returns=pd.DataFrame(cols, index=idx),
                             asset_returns=pd.DataFrame(r, index=idx,
                                                        columns=[f"S{i}" for i in range(n)]),
                             benchmark_returns=pd.Series(f[:, 0], index=idx), shrinkage=0.05)


def _time(fn, repeats: int, warm: bool) -> tuple[float, float, pf.Raw]:
    """(best wall seconds, best process-CPU seconds, last outcome) over ``repeats`` timed runs."""
    out = fn() if warm else None  # warm-up (not timed): imports, first compile, native cache fill
    wall = cpu = np.inf
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu, out


def run(sizes: list[int], repeats: int) -> dict:
    cfg = AllocationConfig()
    rows = []
    for size_no, n in enumerate(sizes):
        req = make_request(n)
        cov = estimate_covariance(req.atom_returns, req.shrinkage, "ledoit_wolf")
        cache = ProblemCache()
        for prof in PROFILES:
            res = {}
            for backend in (Backend.RISKFOLIO, Backend.NATIVE):
                inp = pf.Inputs(req, cov, backend, cfg, cache if backend is Backend.NATIVE else None)
                # native: always warm (its cache is filled by the warm-up); riskfolio rebuilds its
                # problem on every call, so only its first size is warmed (imports, first calls)
                warm = backend is Backend.NATIVE or size_no == 0
                res[backend] = _time(lambda inp=inp: FUNCS[prof](inp), repeats, warm)
            (t_rf, c_rf, raw_rf), (t_nat, c_nat, raw_nat) = res[Backend.RISKFOLIO], res[Backend.NATIVE]
            w_rf, w_nat = raw_rf.weights, raw_nat.weights
            obj = (lambda w: float(w @ cov @ w)) if prof != "max_sharpe" else (
                lambda w: float(req.atom_returns.mean().to_numpy() @ w / np.sqrt(w @ cov @ w)))
            rows.append({"n": n, "profile": prof, "riskfolio_s": c_rf, "native_s": c_nat,
                         "ratio": c_rf / c_nat, "riskfolio_wall_s": t_rf, "native_wall_s": t_nat,
                         "ratio_wall": t_rf / t_nat,
                         "max_abs_weight_diff": float(np.abs(w_rf - w_nat).max()),
                         "objective_rel_diff": abs(obj(w_rf) / obj(w_nat) - 1.0),
                         "solver_native": raw_nat.result.solver if raw_nat.result else None,
                         "solver_riskfolio": raw_rf.result.solver if raw_rf.result else None})
        rows[-1]["cache_hits"] = cache.hits
    convex = [r for r in rows if r["profile"] in CONVEX]
    n500 = [r for r in rows if r["n"] == 500 and r["profile"] == "min_variance"]
    return {"t_bars": 1000, "covariance": "ledoit_wolf", "repeats": repeats,
            "timing": "process CPU seconds, best of repeats (wall-clock in *_wall_s)",
            "rows": rows, "speedup_n500": n500[0]["ratio"] if n500 else None,
            "speedup_n500_wall": n500[0]["ratio_wall"] if n500 else None,
            "max_abs_weight_diff": max(r["max_abs_weight_diff"] for r in convex),
            "max_objective_rel_diff": max(r["objective_rel_diff"] for r in convex)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 200, 500])
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args(argv)
    out = run(args.sizes, args.repeats)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"allocation solve time, T = 1000 bars, Ledoit-Wolf covariance, best of {args.repeats}; "
          "CPU = process CPU seconds (BLAS and solvers single-threaded), wall = wall-clock")
    print(f"{'N':>4} {'profile':<15} {'rf CPU s':>9} {'nat CPU s':>9} {'ratio':>7} {'rf wall':>8} "
          f"{'nat wall':>8} {'ratio':>7} {'max|dw|':>9} {'obj rel':>9}  solvers (riskfolio/native)")
    for r in out["rows"]:
        print(f"{r['n']:>4} {r['profile']:<15} {r['riskfolio_s']:>9.4f} {r['native_s']:>9.4f} "
              f"{r['ratio']:>7.2f} {r['riskfolio_wall_s']:>8.4f} {r['native_wall_s']:>8.4f} "
              f"{r['ratio_wall']:>7.2f} {r['max_abs_weight_diff']:>9.2e} {r['objective_rel_diff']:>9.2e}"
              f"  {r['solver_riskfolio']}/{r['solver_native']}")
    print(f"speedup_n500 (MinVariance, riskfolio/native, CPU): {out['speedup_n500']}; "
          f"wall-clock: {out['speedup_n500_wall']}")
    print(f"max_abs_weight_diff (convex profiles): {out['max_abs_weight_diff']:.3e}; "
          f"max objective rel diff: {out['max_objective_rel_diff']:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
