"""CPU seconds of a serial sample of units, by phase (``time.process_time``, cold caches).

Runs every k-th unit of the preset's schedule (over all settings, so that about ``--units`` run) in
one process with fresh caches, as a worker would, and prints one JSON line: ``cpu_total`` and the
CPU seconds of ``run_twin_windows`` for the v4 family (``sel:v4fam``) and v3.4 (``sel:v3.4``), of
``allocate`` per backend (``alloc:native``, ``alloc:riskfolio``) and the rest (view, requests, result
building). ``--root DIR`` imports the toolkit from DIR (e.g. ``git archive`` of another commit), so
two commits can be compared; run both at the same time on a loaded machine, each then sees the same
load.

Usage: ``python benchmarks/unit_cpu.py [--preset full] [--units 112] [--root DIR]``
"""
from __future__ import annotations

import os
import sys

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"


def main() -> int:
    import argparse
    import json
    import time

    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="full")
    ap.add_argument("--units", type=int, default=112)
    ap.add_argument("--root", default=os.path.dirname(here))
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(root, ".cache", "numba"))
    sys.path[:] = [root] + [p for p in sys.path if os.path.abspath(p or ".") != here]

    import tournament.unit as U
    from market.ratings import DerivedCache
    from tournament.config import load_config
    from tournament.market_io import load_market
    from tournament.run import cache_dir, schedules
    from tournament.verification import verification_sample

    cpu: dict[str, float] = {}
    run_windows, allocate = U.run_twin_windows, U.allocate

    def add(k: str, v: float) -> None:
        cpu[k] = cpu.get(k, 0.0) + v

    def timed_window(views, names, *a, **k):
        t = time.process_time()
        out = run_windows(views, names, *a, **k)
        add("sel:v3.4" if names == ["v3.4"] else "sel:v4fam", time.process_time() - t)
        return out

    def timed_allocate(req, profile, backend, *a, **k):
        t = time.process_time()
        out = allocate(req, profile, backend, *a, **k)
        add("alloc:" + backend.value, time.process_time() - t)
        return out

    U.run_twin_windows, U.allocate = timed_window, timed_allocate
    cfg = load_config(preset=args.preset, overrides={"executor": "serial", "workers": 1})
    market = load_market(cfg.market, derived_cache=DerivedCache(cache_dir() / "derived"))
    sched = schedules(cfg, len(market.closes.index))
    ctx = U.UnitContext(market=market, config=cfg, verify_windows=frozenset(verification_sample(cfg, sched)))
    keys = [U.UnitKey(s, w) for s in cfg.settings() for w in sched[s.id]]
    keys = keys[::max(1, len(keys) // max(1, args.units))]
    t0 = time.process_time()
    for key in keys:
        U.run_unit(ctx, key)
    total = time.process_time() - t0
    out = {"root": root, "units": len(keys), "cpu_total": round(total, 2),
           **{k: round(v, 2) for k, v in sorted(cpu.items())},
           "rest": round(total - sum(cpu.values()), 2), "load": os.getloadavg()}
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
