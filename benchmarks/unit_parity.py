"""Before/after parity of units: ``run_unit(ctx, key).to_json()`` for a fixed set of keys, saved and compared.

A speed change must not change a unit's decisions. This script builds the ``UnitContext`` as
``tournament.run`` does (market with a derived-fields cache, verification sample of the base setting)
for the ``full`` preset and runs 12 units serially: the base setting's first, last and a sampled
(riskfolio-verified) window, and first/middle/last windows of settings that change the step, the train
window and the feature lookback. ``--save DIR`` writes one JSON per unit (timings, the ``seconds`` field,
dropped); ``--compare DIR`` recomputes and reports every unit whose JSON differs (exit code 1), with the
first differing path. ``--profile FILE`` also writes a cProfile of the unit calls (pstats format).

Usage: ``python benchmarks/unit_parity.py (--save DIR | --compare DIR) [--profile FILE] [--preset full]``
"""
from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(_ROOT, ".cache", "numba"))
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"
sys.path[:] = [_ROOT] + [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from market.ratings import DerivedCache  # noqa: E402
from tournament.config import load_config  # noqa: E402
from tournament.market_io import load_market  # noqa: E402
from tournament.run import cache_dir, schedules  # noqa: E402
from tournament.unit import UnitContext, UnitKey, run_unit  # noqa: E402
from tournament.verification import verification_sample  # noqa: E402


def unit_keys(cfg, sched) -> list[UnitKey]:
    """12 keys: base first / sampled / last, then first, middle and last of three other settings."""
    settings = cfg.settings()
    base = settings[0]
    verify = sorted(verification_sample(cfg, sched))
    wins = {w.index: w for w in sched[base.id]}
    sampled = next((k for k in verify[1:-1]), verify[0] if verify else min(wins))
    keys = [UnitKey(base, sched[base.id][0]), UnitKey(base, wins[sampled]), UnitKey(base, sched[base.id][-1])]
    others = [s for s in settings[1:]]
    # one setting per swept dimension where possible (step, train, lookback differ from the base)
    picked = []
    for attr in ("step_size", "train_window", "feature_lookback"):
        s = next((s for s in others if getattr(s, attr) != getattr(base, attr) and s not in picked), None)
        if s is not None:
            picked.append(s)
    for s in picked:
        ws = sched[s.id]
        keys += [UnitKey(s, ws[0]), UnitKey(s, ws[len(ws) // 2]), UnitKey(s, ws[-1])]
    return keys


def unit_json(ctx: UnitContext, key: UnitKey) -> dict:
    d = run_unit(ctx, key).to_json()
    d.pop("seconds", None)
    return json.loads(json.dumps(d, sort_keys=True))


def first_diff(a, b, path="") -> str | None:
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}/{k}: missing on one side"
            d = first_diff(a[k], b[k], f"{path}/{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_diff(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--save")
    g.add_argument("--compare")
    ap.add_argument("--profile")
    ap.add_argument("--preset", default="full")
    args = ap.parse_args()
    cfg = load_config(preset=args.preset, overrides={"executor": "serial", "workers": 1})
    market = load_market(cfg.market, derived_cache=DerivedCache(cache_dir() / "derived"))
    sched = schedules(cfg, len(market.closes.index))
    ctx = UnitContext(market=market, config=cfg, verify_windows=frozenset(verification_sample(cfg, sched)))
    keys = unit_keys(cfg, sched)
    prof = cProfile.Profile() if args.profile else None
    out: dict[str, dict] = {}
    t0 = time.perf_counter()
    for key in keys:
        ts = time.perf_counter()
        if prof:
            prof.enable()
        out[key.id] = unit_json(ctx, key)
        if prof:
            prof.disable()
        print(f"{key.id}: {time.perf_counter() - ts:.2f} s", flush=True)
    print(f"total {time.perf_counter() - t0:.1f} s, load {os.getloadavg()}")
    if prof:
        prof.dump_stats(args.profile)
    name = lambda k: k.replace("/", "__") + ".json"  # noqa: E731
    if args.save:
        d = Path(args.save)
        d.mkdir(parents=True, exist_ok=True)
        for k, v in out.items():
            (d / name(k)).write_text(json.dumps(v, sort_keys=True))
        print(f"saved {len(out)} units to {d}")
        return 0
    d = Path(args.compare)
    bad = 0
    for k, v in out.items():
        ref = json.loads((d / name(k)).read_text())
        diff = first_diff(ref, v)
        if diff:
            bad += 1
            print(f"DIFFERS {k}: {diff}")
    print(f"{len(out) - bad} of {len(out)} units identical")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
