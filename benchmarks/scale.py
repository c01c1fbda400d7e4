"""Scale benchmark (issue 16): the ``large`` preset and how wall time and memory grow with the
candidate pool and the number of windows.

Every point is one ``tournament run`` of the ``large`` preset (synthetic market of 2,190 bars; every
engine and profile on the native backend, base setting plus the step-5 sweep; process executor,
``--workers`` workers, default 2; no report) in a fresh driver process, with a cold derived-fields
cache (a new ``WFAUDIT_CACHE_DIR``), so the market phase includes the derivation. Measured per point:
wall seconds of ``run_tournament`` (``RunOutcome.seconds``), its units phase, and the peak memory of the
process tree (``TreeMemory``, psutil sampled every 0.5 s): the headline ``peak_gib`` is the peak of the
tree's summed PSS (copy-on-write pages the forked workers share with the driver count once); the summed
RSS (``peak_rss_gib``, which counts them in every process) and the driver's and workers' own peaks
are information.

Points (``max_windows`` = W keeps the last W base windows and the step-5 windows over the same span:
5 W units):
- against candidates: 100, 300, 1,000 candidate records at W = ``--windows`` (default 2);
- against windows: W = 2, 4, 8 at 300 candidates (the W = 2 point is shared).

Fitted: log-log slopes (``numpy.polyfit`` of log seconds and log GiB on log candidates, and on log
units) and joint fits ``log y = a + b_c log candidates + b_u log units`` over every point, of the
units phase, of the phases after it and of the peak memory; with the 1,000-candidate market phase
they project the wall time of the whole ``large`` preset (1,000 candidates, 485 units) when it is not run, labelled a
projection (one power law on the wall time would understate it: the small points are mostly fixed
costs); its peak memory is projected from the 1,000-candidate point along the windows series' memory
slope. ``--reuse FILE`` refits and replots points saved with ``--save``. The projected worker count for 10,000 candidates at the same
wall time is ``workers x 10^b_c`` (units phase parallel, efficiency 1 assumed: an upper bound on the
speed-up, so a lower bound on workers). ``--large`` also runs the whole large preset
(``large_preset_seconds``, ``large_preset_peak_gib``); without it both are null.

Usage: ``python benchmarks/scale.py [--json] [--large] [--large-windows W] [--workers 2] [--windows 2]
[--plot docs/scale.png] [--save FILE] [--reuse FILE]``
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
sys.path[:] = [_ROOT] + [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

CANDIDATES = (100, 300, 1000)
WINDOWS = (2, 4, 8)
WINDOWS_AT = 300  # candidates of the windows series
TARGET_CANDIDATES = 10_000


def _bench_tournament():
    """``benchmarks/tournament.py`` as a module (its ``TreeRSS`` and ``load``), not as ``tournament``."""
    spec = importlib.util.spec_from_file_location("bench_tournament", os.path.join(_HERE, "tournament.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def point_main(args) -> int:
    """Child mode: one run of the large preset; prints one JSON line of its outcome."""
    from tournament.config import load_config
    from tournament.run import run_tournament

    over = {"workers": args.workers, "market": {"synthetic_candidates": args.candidates}}
    if args.max_windows:
        over["max_windows"] = args.max_windows
    cfg = load_config(preset="large", overrides=over)
    out = run_tournament(cfg, args.runs_dir)
    print(json.dumps({"seconds": out.seconds, "units_seconds": out.phase_seconds.get("units"),
                      "market_seconds": out.phase_seconds.get("market"), "n_units": out.n_units,
                      "n_cells": out.n_cells}))
    return 0


class TreeMemory:
    """Peak memory of a driver process and its workers (psutil, sampled every ``interval`` seconds).

    PSS (proportional set size, Linux: ``memory_full_info().pss``) divides each page among the
    processes that map it, so the forked workers' copy-on-write pages shared with the driver count
    once; summed over the tree it is the memory the run takes. RSS counts a shared page in every
    process that maps it: summed over the tree it overstates (kept as information). Peaks: of the
    tree's sums, of the driver alone, of the workers' sum and of the largest worker; ``timeline``
    holds ``(seconds, driver PSS, workers' PSS)`` every ``timeline_every`` seconds (GiB)."""

    def __init__(self, pid: int, interval: float = 0.5, timeline_every: float = 10.0):
        import psutil

        self.proc, self.interval, self.every = psutil.Process(pid), interval, timeline_every
        self.peak = {k: 0 for k in ("tree_pss", "tree_rss", "driver_pss", "driver_rss", "workers_pss",
                                    "worker_max_pss")}
        self.timeline: list[tuple[float, float, float]] = []
        self._t0, self._next = time.perf_counter(), 0.0

    @staticmethod
    def _mem(p) -> tuple[int, int]:
        import psutil

        try:
            info = p.memory_full_info()
            return info.pss, info.rss
        except psutil.AccessDenied:  # no smaps access: PSS unknown, RSS stands in
            rss = p.memory_info().rss
            return rss, rss

    def sample(self) -> None:
        import psutil

        try:
            driver = self._mem(self.proc)
            workers = []
            for c in self.proc.children(recursive=True):
                try:
                    workers.append(self._mem(c))
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            return
        w_pss = sum(x[0] for x in workers)
        now = {"tree_pss": driver[0] + w_pss, "tree_rss": driver[1] + sum(x[1] for x in workers),
               "driver_pss": driver[0], "driver_rss": driver[1], "workers_pss": w_pss,
               "worker_max_pss": max((x[0] for x in workers), default=0)}
        for k, v in now.items():
            self.peak[k] = max(self.peak[k], v)
        t = time.perf_counter() - self._t0
        if t >= self._next:
            self.timeline.append((round(t, 1), round(driver[0] / 2**30, 3), round(w_pss / 2**30, 3)))
            self._next = t + self.every

    def gib(self) -> dict:
        """``peak_gib`` (the tree's PSS: the headline), ``peak_rss_gib`` (summed RSS, information),
        the driver's and the workers' peaks, and the timeline."""
        g = {k: v / 2**30 for k, v in self.peak.items()}
        return {"peak_gib": g["tree_pss"], "peak_rss_gib": g["tree_rss"], "driver_peak_gib": g["driver_pss"],
                "driver_peak_rss_gib": g["driver_rss"], "workers_peak_gib": g["workers_pss"],
                "worker_max_peak_gib": g["worker_max_pss"], "memory_timeline": self.timeline}


def run_point(candidates: int, max_windows: int | None, workers: int, bt) -> dict:
    """One point in a fresh driver process; the tree's memory sampled from here (``TreeMemory``)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, WFAUDIT_CACHE_DIR=os.path.join(tmp, "cache"), PYTHONPATH=_ROOT)
        cmd = [sys.executable, os.path.abspath(__file__), "--point", "--candidates", str(candidates),
               "--workers", str(workers), "--runs-dir", os.path.join(tmp, "runs")]
        if max_windows:
            cmd += ["--max-windows", str(max_windows)]
        la0 = bt.load()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        mem = TreeMemory(proc.pid)
        while proc.poll() is None:
            mem.sample()
            time.sleep(mem.interval)
        wall = time.perf_counter() - t0
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"point {candidates} candidates, W={max_windows} failed:\n{err[-3000:]}")
        res = json.loads(out.strip().splitlines()[-1])
    return {"candidates": candidates, "max_windows": max_windows, "workers": workers, **res,
            "process_wall_seconds": wall, **mem.gib(), "loadavg_start": la0, "loadavg_end": bt.load()}


def slope(x, y) -> float:
    """Log-log least-squares slope of y on x."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def joint_fit(points: list[dict], key: str = "seconds") -> dict:
    """``log y = a + b_c log candidates + b_u log units`` over every point (least squares), y = ``key``."""
    X = np.array([[1.0, math.log(p["candidates"]), math.log(p["n_units"])] for p in points])
    y = np.log([max(p[key], 1e-3) for p in points])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return {"a": float(coef[0]), "b_candidates": float(coef[1]), "b_units": float(coef[2])}


def _at(fit: dict, candidates: float, units: float) -> float:
    return math.exp(fit["a"] + fit["b_candidates"] * math.log(candidates) + fit["b_units"] * math.log(units))


def fits(res: dict, workers: int) -> None:
    """Exponents and projections from the points in ``res`` (in place)."""
    by_c, by_w = res["by_candidates"], res["by_windows"]
    for p in by_c + by_w:
        p["post_seconds"] = max(p["seconds"] - p["units_seconds"] - p["market_seconds"], 1e-3)
    pts = by_c + [p for p in by_w if p not in by_c]
    res["exponents"] = {
        "time_vs_candidates": slope([p["candidates"] for p in by_c], [p["seconds"] for p in by_c]),
        "units_time_vs_candidates": slope([p["candidates"] for p in by_c], [p["units_seconds"] for p in by_c]),
        "memory_vs_candidates": slope([p["candidates"] for p in by_c], [p["peak_gib"] for p in by_c]),
        "time_vs_units": slope([p["n_units"] for p in by_w], [p["seconds"] for p in by_w]),
        "units_time_vs_units": slope([p["n_units"] for p in by_w], [p["units_seconds"] for p in by_w]),
        "memory_vs_units": slope([p["n_units"] for p in by_w], [p["peak_gib"] for p in by_w]),
        "joint_wall": joint_fit(pts), "joint_units_phase": joint_fit(pts, "units_seconds"),
        "joint_after_units": joint_fit(pts, "post_seconds"), "joint_memory": joint_fit(pts, "peak_gib")}
    n_large = res["large_preset_units"]
    e = res["exponents"]
    market = next(p["market_seconds"] for p in by_c if p["candidates"] == 1000)
    # per phase: the small points' wall time is mostly fixed costs, so one power law on the wall time
    # would understate a 485-unit run; the units phase and the phases after it are fitted apart
    res["large_preset_projected_seconds"] = (market + _at(e["joint_units_phase"], 1000, n_large)
                                             + _at(e["joint_after_units"], 1000, n_large))
    # memory: the 1,000-candidate point grown along the windows series' slope (the joint fit mixes the
    # candidates' strong and the units' weak growth and understates it)
    big = next(p for p in by_c if p["candidates"] == 1000)
    res["large_preset_projected_gib"] = big["peak_gib"] * (n_large / big["n_units"]) ** max(e["memory_vs_units"], 0.0)
    res["projected_workers_10000_candidates"] = math.ceil(workers * (TARGET_CANDIDATES / 1000)
                                                          ** e["units_time_vs_candidates"])


def large_units() -> int:
    from tournament.config import load_config
    from tournament.run import schedules

    cfg = load_config(preset="large")
    sched = schedules(cfg, cfg.market.synthetic_bars)
    return sum(len(v) for v in sched.values())


def plot(res: dict, path: str) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, xs_name, label in ((axes[0], "by_candidates", "candidates", "candidate records"),
                                    (axes[1], "by_windows", "n_units", "units (windows x settings)")):
        pts = res[key]
        x = np.array([p[xs_name] for p in pts], float)
        for yk, lab, style in (("seconds", "wall s", "o-"), ("units_seconds", "units phase s", "s--")):
            ax.loglog(x, [p[yk] for p in pts], style, label=lab)
        ax.set_xlabel(label)
        ax.set_ylabel("seconds")
        ax2 = ax.twinx()
        ax2.plot(x, [p["peak_gib"] for p in pts], "^:", color="tab:red", label="peak GiB (tree)")
        ax2.set_ylabel("peak memory GiB (tree; PSS, or RSS for points measured before it)", color="tab:red")
        axis = "candidates" if key == "by_candidates" else "units"
        e = res["exponents"]
        ax.set_title(f"wall ~ x^{e['time_vs_' + axis]:.2f}, units phase ~ x^{e['units_time_vs_' + axis]:.2f}, "
                     f"memory ~ x^{e['memory_vs_' + axis]:.2f}", fontsize=9)
        ax.legend(loc="upper left", fontsize=8)
        ax2.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"large preset points, process executor, {res['workers']} workers "
                 f"(loadavg {res['loadavg_start']} -> {res['loadavg_end']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--large", action="store_true", help="also run the whole large preset")
    ap.add_argument("--large-windows", type=int, help="also run the large preset reduced to this max_windows "
                    "(reported as large_reduced; large_preset_* stay the whole preset's)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--windows", type=int, default=WINDOWS[0], help="max_windows of the candidates series")
    ap.add_argument("--plot", default=os.path.join(_ROOT, "docs", "scale.png"))
    ap.add_argument("--save")
    ap.add_argument("--reuse", help="refit and replot the points saved (--save) in this file")
    ap.add_argument("--point", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--candidates", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--max-windows", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--runs-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.point:
        return point_main(args)
    bt = _bench_tournament()
    if args.reuse:  # refit and replot saved points (and a saved large run) without running them again
        with open(args.reuse) as fh:
            old = json.load(fh)
        res = {k: old[k] for k in ("workers", "loadavg_start", "by_candidates", "by_windows")}
        for k in ("large", "large_partial", "large_reduced"):
            if k in old:
                res[k] = old[k]
        args.workers = res["workers"]
    else:
        res = {"workers": args.workers, "loadavg_start": bt.load()}
        by_c = [run_point(n, args.windows, args.workers, bt) for n in CANDIDATES]
        shared = next(p for p in by_c if p["candidates"] == WINDOWS_AT) if args.windows == WINDOWS[0] else None
        by_w = [shared if (w == WINDOWS[0] and shared) else run_point(WINDOWS_AT, w, args.workers, bt)
                for w in WINDOWS]
        res["by_candidates"], res["by_windows"] = by_c, by_w
    res["large_preset_units"] = large_units()
    fits(res, args.workers)
    if args.large_windows:
        res["large_reduced"] = run_point(1000, args.large_windows, args.workers, bt)
    if args.large:
        res["large"] = run_point(1000, None, args.workers, bt)
    big = res.get("large")
    res["large_preset_seconds"] = big["seconds"] if big else None
    res["large_preset_peak_gib"] = big["peak_gib"] if big else None
    res["loadavg_end"] = old.get("loadavg_end") if args.reuse else bt.load()
    if args.plot:
        plot(res, args.plot)
        res["plot"] = os.path.relpath(args.plot, _ROOT)
    if args.save:
        with open(args.save, "w") as fh:
            json.dump(res, fh, indent=1)
    if args.json:
        print(json.dumps(res))
    else:
        print_table(res)
    return 0


def print_table(res: dict) -> None:
    print(f"== scale: large preset points, process executor, {res['workers']} workers ==")
    print(f"{'candidates':>10} {'W':>3} {'units':>6} {'wall s':>8} {'units s':>8} {'market s':>8} {'peak GiB':>8}  loadavg")
    for p in res["by_candidates"] + [p for p in res["by_windows"] if p not in res["by_candidates"]]:
        print(f"{p['candidates']:>10} {p['max_windows'] or '-':>3} {p['n_units']:>6} {p['seconds']:8.1f} "
              f"{p['units_seconds']:8.1f} {p['market_seconds']:8.1f} {p['peak_gib']:8.2f}  "
              f"{p['loadavg_start']} -> {p['loadavg_end']}")
    e = res["exponents"]
    print(f"log-log exponents: time vs candidates {e['time_vs_candidates']:.2f} (units phase "
          f"{e['units_time_vs_candidates']:.2f}), memory vs candidates {e['memory_vs_candidates']:.2f}; "
          f"time vs units {e['time_vs_units']:.2f} (units phase {e['units_time_vs_units']:.2f}), "
          f"memory vs units {e['memory_vs_units']:.2f}")
    for name in ("joint_wall", "joint_units_phase", "joint_after_units", "joint_memory"):
        j = e[name]
        print(f"{name}: y = e^{j['a']:.2f} x candidates^{j['b_candidates']:.2f} x units^{j['b_units']:.2f}")
    print(f"large preset ({res['large_preset_units']} units): measured "
          f"{res['large_preset_seconds'] if res['large_preset_seconds'] is not None else 'not run (--large)'} s, "
          f"peak {res['large_preset_peak_gib']} GiB; projected (market + units phase + after the units fits) "
          f"{res['large_preset_projected_seconds']:.0f} s, {res['large_preset_projected_gib']:.2f} GiB")
    print(f"projected workers for {TARGET_CANDIDATES} candidates at the same wall time: "
          f"{res['projected_workers_10000_candidates']}")
    for name in ("large_reduced", "large"):
        p = res.get(name)
        if p and "driver_peak_gib" in p:
            print(f"{name} (W={p['max_windows'] or 'all'}, {p['n_units']} units): {p['seconds']:.1f} s; peak PSS tree "
                  f"{p['peak_gib']:.2f} GiB (driver {p['driver_peak_gib']:.2f}, workers {p['workers_peak_gib']:.2f}, "
                  f"largest worker {p['worker_max_peak_gib']:.2f}); summed RSS {p['peak_rss_gib']:.2f} GiB")


if __name__ == "__main__":
    sys.exit(main())
