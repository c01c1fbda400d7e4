"""Every CSCV half's per-period Sharpe in one compiled pass (``audit.statistics.pbo._all_half_sharpes``).

For each combination of ``h`` blocks (rows of ``combos``, in ``itertools.combinations`` order) and each
trial, the half's count, sums, minimum and maximum are its blocks' added in block order,
``((b0 + b1) + b2) + ...``, the order of the numpy version this replaces (a prefix tree walked level by
level with fancy indexing: 24,309 prefixes and five temporaries of prefixes x trials per level at
S = 16). Here the combinations are walked in order and a prefix shared with the previous combination is
kept (one row of partial sums per depth), so each half costs the additions below its first new block.
The Sharpe then follows the same elementwise steps: ``var = max(t2 - t1 * t1 / n, 0) / (n - 1)``,
``mean = t1 / n + colmean``, ``mean / sqrt(var)`` where the half is not constant and ``var > 0``, else
0. IEEE-rounded ``+ - * / sqrt`` only (numba without fastmath), so the values are numpy's bit for bit
(``tests/audit/test_pbo_fast.py``). Imported lazily (numba).
"""
from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True)
def _halves(combos, n_b, s1, s2, bmin, bmax, colmean, out):
    n_c, h = combos.shape
    n_tr = s1.shape[1]
    acc_n = np.empty(h)
    acc_1 = np.empty((h, n_tr))
    acc_2 = np.empty((h, n_tr))
    acc_lo = np.empty((h, n_tr))
    acc_hi = np.empty((h, n_tr))
    prev = np.full(h, -1, dtype=np.int64)
    for c in range(n_c):
        k0 = 0  # first depth whose block differs from the previous combination's
        while k0 < h and combos[c, k0] == prev[k0]:
            k0 += 1
        for k in range(k0, h):
            b = combos[c, k]
            prev[k] = b
            if k == 0:
                acc_n[0] = n_b[b]
                for j in range(n_tr):
                    acc_1[0, j] = s1[b, j]
                    acc_2[0, j] = s2[b, j]
                    acc_lo[0, j] = bmin[b, j]
                    acc_hi[0, j] = bmax[b, j]
            else:
                acc_n[k] = acc_n[k - 1] + n_b[b]
                for j in range(n_tr):
                    acc_1[k, j] = acc_1[k - 1, j] + s1[b, j]
                    acc_2[k, j] = acc_2[k - 1, j] + s2[b, j]
                    acc_lo[k, j] = min(acc_lo[k - 1, j], bmin[b, j])
                    acc_hi[k, j] = max(acc_hi[k - 1, j], bmax[b, j])
        n = acc_n[h - 1]
        for j in range(n_tr):
            t1 = acc_1[h - 1, j]
            t2 = acc_2[h - 1, j]
            var = t2 - t1 * t1 / n
            if var < 0.0:  # np.maximum(var, 0.0): only var > 0 is used below
                var = 0.0
            var = var / (n - 1.0)
            if acc_lo[h - 1, j] != acc_hi[h - 1, j] and var > 0.0:
                out[c, j] = (t1 / n + colmean[j]) / math.sqrt(var)
            else:
                out[c, j] = 0.0


def all_half_sharpes(combos: np.ndarray, n_b: np.ndarray, s1: np.ndarray, s2: np.ndarray,
                     bmin: np.ndarray, bmax: np.ndarray, colmean: np.ndarray) -> np.ndarray:
    """Per-period Sharpe (combinations x trials) of every half (see the module docstring)."""
    out = np.empty((combos.shape[0], s1.shape[1]))
    _halves(np.ascontiguousarray(combos, dtype=np.int64), np.ascontiguousarray(n_b, dtype=np.float64),
            np.ascontiguousarray(s1), np.ascontiguousarray(s2), np.ascontiguousarray(bmin),
            np.ascontiguousarray(bmax), np.ascontiguousarray(colmean, dtype=np.float64), out)
    return out


__all__ = ["all_half_sharpes"]
