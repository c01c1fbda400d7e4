"""Bootstrap statistics benchmark (issue 23): the compiled per-replicate moments against the matrix path.

On synthetic AR(1) Student-t daily returns (the full preset's length, 957 days; 1,000 replicates, block
length from ``auto_block_length``) it times, in CPU seconds summed over the series:

- ``sharpe``: the Sharpe CI's replicate statistics, ``boot_sharpe_draws`` (``audit.statistics.bootmoments``:
  each replicate's sums as it is drawn) against ``boot_sharpe_stats(x, stationary_indices(...))`` (the
  index matrix, then the blocked numpy pass), which ``sharpe_ci`` used before;
- ``paired``: the paired test's replicate Sharpes of both legs, ``boot_sharpes`` against
  ``sharpe_per_period(a[idx], axis=1)`` and the same for ``b``;

and checks that both paths give the same bits (``identical``). numba compilation is excluded (a warm-up
call of each path first; the numba cache dir should be set, as the Makefile does).

Usage: ``python benchmarks/statistics.py [--series N] [--json]``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from audit.statistics._common import auto_block_length, sharpe_per_period, stationary_indices  # noqa: E402
from audit.statistics.paired import boot_sharpes  # noqa: E402
from audit.statistics.sharpe import boot_sharpe_draws, boot_sharpe_stats  # noqa: E402


def series(n_series: int, n_obs: int, seed: int = 0) -> np.ndarray:
    """``n_series`` AR(1) (phi 0.2) Student-t (4 df) daily returns, ~1% daily volatility."""
    rng = np.random.default_rng(seed)
    e = rng.standard_t(4, (n_series, n_obs)) * 0.007
    out = np.empty_like(e)
    out[:, 0] = e[:, 0]
    for t in range(1, n_obs):
        out[:, t] = 0.2 * out[:, t - 1] + e[:, t]
    return out + 0.0003


def _cpu(fn) -> tuple[float, object]:
    c0 = time.process_time()
    out = fn()
    return time.process_time() - c0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=40)
    ap.add_argument("--n-obs", type=int, default=957)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    xs = series(args.series, args.n_obs)
    blocks = [auto_block_length(x) for x in xs]
    R = args.n_boot
    boot_sharpe_draws(xs[0], 2, 20, 0), boot_sharpes(xs[:2], 2, 20, 0), stationary_indices(30, 2, 20, 0)  # warm-up

    def sharpe_new():
        return [boot_sharpe_draws(x, b, R, i) for i, (x, b) in enumerate(zip(xs, blocks))]

    def sharpe_old():
        return [boot_sharpe_stats(x, stationary_indices(x.size, b, R, i)) for i, (x, b) in enumerate(zip(xs, blocks))]

    pairs = [(xs[i], xs[i + 1], max(blocks[i], blocks[i + 1])) for i in range(0, len(xs) - 1, 2)]

    def paired_new():
        return [boot_sharpes(np.vstack([a, b]), bl, R, i) for i, (a, b, bl) in enumerate(pairs)]

    def paired_old():
        out = []
        for i, (a, b, bl) in enumerate(pairs):
            idx = stationary_indices(a.size, bl, R, i)
            out.append(np.vstack([sharpe_per_period(a[idx], axis=1)[0], sharpe_per_period(b[idx], axis=1)[0]]))
        return out

    t_sn, new_s = _cpu(sharpe_new)
    t_so, old_s = _cpu(sharpe_old)
    t_pn, new_p = _cpu(paired_new)
    t_po, old_p = _cpu(paired_old)
    same = all(u.tobytes() == v.tobytes() for a, b in zip(new_s, old_s) for u, v in zip(a, b))
    same = same and all(u.tobytes() == v.tobytes() for u, v in zip(new_p, old_p))
    res = {
        "series": args.series, "n_obs": args.n_obs, "n_boot": R, "pairs": len(pairs),
        "sharpe_cpu_compiled": round(t_sn, 3), "sharpe_cpu_matrix": round(t_so, 3),
        "sharpe_speedup": round(t_so / t_sn, 2) if t_sn > 0 else None,
        "paired_cpu_compiled": round(t_pn, 3), "paired_cpu_matrix": round(t_po, 3),
        "paired_speedup": round(t_po / t_pn, 2) if t_pn > 0 else None,
        "identical": bool(same), "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(res))
        return
    print(f"{args.series} series x {args.n_obs} days, {R} replicates (CPU s)")
    print(f"| path | compiled | matrix | speedup |\n|---|---|---|---|")
    print(f"| sharpe CI replicates | {t_sn:.3f} | {t_so:.3f} | {res['sharpe_speedup']}x |")
    print(f"| paired replicates ({len(pairs)} pairs) | {t_pn:.3f} | {t_po:.3f} | {res['paired_speedup']}x |")
    print(f"identical: {res['identical']}  load: {res['load_average']}")


if __name__ == "__main__":
    main()
