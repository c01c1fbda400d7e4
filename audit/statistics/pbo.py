"""Probability of Backtest Overfitting by Combinatorially Symmetric Cross-Validation.

Bailey, Borwein, Lopez de Prado & Zhu (2017), "The probability of backtest overfitting",
Journal of Computational Finance 20(4). The T x N matrix of trial returns on common dates is cut
into ``S`` (even) contiguous row blocks; each of the ``C(S, S/2)`` choices of ``S/2`` blocks is an
in-sample (IS) set and its complement the out-of-sample (OOS) set. For each combination the trial
with the best IS Sharpe is picked and its OOS relative rank ``w = rank / (N + 1)`` (rank 1 =
worst, N = best) gives the logit ``lambda = ln(w / (1 - w))``. PBO is the share of
``lambda <= 0``: how often the IS winner lands at or below the OOS median.

Rules:
- Performance metric: per-period Sharpe ``mean / std(ddof=1)`` of the rows of the half.
- Blocks: ``numpy.array_split`` of the rows, so sizes differ by at most one and no row is
  dropped; each block needs >= 2 rows (``T >= 2 S``).
- Zero variance: a trial constant over a half (e.g. liquidated, constant 0) has Sharpe 0 there
  (exact test ``max == min``, as everywhere in this package).
- Ties: the IS winner is the first trial (column order) with the maximal IS Sharpe; the OOS rank
  is the average rank of ties (``scipy.stats.rankdata(method='average')``).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from audit.statistics._common import as_matrix
from contracts.errors import ConfigError, DataError

_CHUNK = 512  # combinations per vectorised step: bounds memory at ~_CHUNK * S/2 * N floats
#: combinations x trials up to which every half's Sharpe is computed at once (``_all_half_sharpes``,
#: about 8 such float arrays alive: ~400 MB at this bound); above it, chunk by chunk
_ALL_CELLS = 6_000_000


@dataclass(frozen=True)
class PBOResult:
    """Result of :func:`pbo_cscv`.

    ``lambdas``: one logit per combination (for the histogram). ``records`` (None when not asked for):
    one row per combination with ``is_blocks`` (comma-separated block numbers), ``best_trial`` (label),
    ``is_sharpe``/``oos_sharpe`` (per-period Sharpe of the IS winner), ``oos_rank`` (1..N,
    average for ties), ``w`` and ``lambda``. ``prob_oos_loss`` is the share of combinations
    whose IS winner has an OOS Sharpe < 0. ``n_degenerate_trials`` counts trials constant over
    the whole sample.
    """

    pbo: float
    lambdas: np.ndarray
    records: pd.DataFrame | None
    prob_oos_loss: float
    n_splits: int
    n_trials: int
    n_obs: int
    n_combinations: int
    n_degenerate_trials: int

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (lambdas included, per-combination records left out)."""
        return {
            "pbo": self.pbo, "lambdas": [float(v) for v in self.lambdas],
            "prob_oos_loss": self.prob_oos_loss, "n_splits": self.n_splits,
            "n_trials": self.n_trials, "n_obs": self.n_obs,
            "n_combinations": self.n_combinations,
            "n_degenerate_trials": self.n_degenerate_trials,
        }


def _half_sharpe(idx: np.ndarray, n_b: np.ndarray, s1: np.ndarray, s2: np.ndarray,
                 bmin: np.ndarray, bmax: np.ndarray, colmean: np.ndarray) -> np.ndarray:
    """Per-period Sharpe (combinations x trials) of the union of the blocks in ``idx``.

    Sums are over column-centred data (centring changes no Sharpe but avoids cancellation);
    a half whose values are all identical (min == max) gets Sharpe 0.
    """
    n = n_b[idx].sum(axis=1)[:, None]
    t1 = s1[idx].sum(axis=1)
    t2 = s2[idx].sum(axis=1)
    const = bmin[idx].min(axis=1) == bmax[idx].max(axis=1)
    var = np.maximum(t2 - t1 * t1 / n, 0.0) / (n - 1.0)
    mean = t1 / n + colmean
    ok = ~const & (var > 0.0)
    return np.where(ok, mean / np.sqrt(np.where(ok, var, 1.0)), 0.0)


def _prefix_levels(combos: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The prefix tree of ``combos`` (rows sorted lexicographically, as ``itertools.combinations``
    gives them): per length k = 1..h, ``(parent, block, node)``: the distinct k-prefixes' parent
    (index among the (k-1)-prefixes; unused at k = 1) and last block, and each row's k-prefix."""
    n_c, h = combos.shape
    new = np.zeros(n_c, dtype=bool)
    levels = []
    prev_node = None
    for k in range(h):
        new |= np.r_[True, combos[1:, k] != combos[:-1, k]]
        node = np.cumsum(new) - 1
        first = np.flatnonzero(new)
        parent = prev_node[first] if prev_node is not None else np.zeros(first.size, dtype=np.int64)
        levels.append((parent, combos[first, k], node))
        prev_node = node
    return levels


def _all_half_sharpes(combos: np.ndarray, n_b: np.ndarray, s1: np.ndarray, s2: np.ndarray,
                      bmin: np.ndarray, bmax: np.ndarray, colmean: np.ndarray) -> np.ndarray:
    """``_half_sharpe(combos, ...)`` of every combination at once, bit for bit: each half's sums add
    its blocks in block order as the reduction over a combination's blocks does
    (``((b0 + b1) + b2) + ...``), but every prefix shared with the previous combination is added once
    (the C(16, 8) halves have 24,309 prefixes against 102,960 block additions); min, max and counts are
    exact in any order. Compiled (``audit.statistics.pbo_kernel``: the combinations walked in order,
    no prefixes x trials temporaries)."""
    from audit.statistics.pbo_kernel import all_half_sharpes  # numba: imported when first needed

    return all_half_sharpes(combos, n_b, s1, s2, bmin, bmax, colmean)


def _complement_index(combos: np.ndarray, s: int) -> np.ndarray:
    """Per combination, the row of its complement (the OOS blocks are another combination's IS
    blocks, in the same ascending order)."""
    masks = (np.int64(1) << combos).sum(axis=1)
    full = (1 << s) - 1
    order = np.argsort(masks)
    return order[np.searchsorted(masks, full ^ masks, sorter=order)]


@lru_cache(maxsize=8)
def _complements(s: int) -> np.ndarray:
    """``_complement_index(_combinations(s), s)``, read-only, built once per ``s``."""
    out = _complement_index(_combinations(s), s)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=8)
def _block_labels(s: int) -> tuple[str, ...]:
    """``"0,1,...,7"``-style labels of the IS blocks of every combination of ``s // 2`` of ``s``
    blocks, in ``itertools.combinations`` order (a pure function of ``s``, built once: 12,870
    labels at S = 16, and the PBO null calls pbo_cscv dozens of times)."""
    return tuple(",".join(map(str, c)) for c in itertools.combinations(range(s), s // 2))


@lru_cache(maxsize=8)
def _combinations(s: int) -> np.ndarray:
    """Every combination of ``s // 2`` of ``s`` blocks (rows, ``itertools.combinations`` order) as a
    read-only int64 array: a pure function of ``s``, built once (the PBO null calls pbo_cscv dozens of
    times at S = 16)."""
    combos = np.array(list(itertools.combinations(range(s), s // 2)), dtype=np.int64)
    combos.setflags(write=False)
    return combos


def pbo_cscv(trial_returns: object, n_splits: int = 16, *, records: bool = True) -> PBOResult:
    """PBO of a T x N (dates x trials) matrix of per-period returns on common dates.

    ``n_splits`` = S, even, >= 2 (default 16: C(16, 8) = 12,870 combinations, as in the paper).
    Deterministic: no random draw. Needs N >= 2 trials and T >= 2 S dates. ``records=False`` leaves
    the per-combination table out (``records`` None; every other field the same): the PBO null's
    replicates need only ``pbo``.
    """
    mat, labels = as_matrix(trial_returns, "trial_returns", min_obs=2, min_cols=2)
    if (not isinstance(n_splits, (int, np.integer)) or isinstance(n_splits, bool)
            or n_splits < 2 or n_splits % 2):
        raise ConfigError(f"n_splits: expected an even integer >= 2, got {n_splits!r}")
    s = int(n_splits)
    t, n = mat.shape
    if t < 2 * s:
        raise DataError(f"trial_returns: {t} dates, at least 2 * n_splits = {2 * s} needed")
    colmean = mat.mean(axis=0)
    centred = mat - colmean
    blocks = np.array_split(np.arange(t), s)
    n_b = np.array([len(b) for b in blocks], dtype=np.float64)
    s1 = np.stack([centred[b].sum(axis=0) for b in blocks])
    s2 = np.stack([(centred[b] ** 2).sum(axis=0) for b in blocks])
    bmin = np.stack([mat[b].min(axis=0) for b in blocks])
    bmax = np.stack([mat[b].max(axis=0) for b in blocks])
    combos = _combinations(s)
    n_c = combos.shape[0]
    best = np.empty(n_c, dtype=np.int64)
    is_best = np.empty(n_c)
    oos_best = np.empty(n_c)
    rank = np.empty(n_c)
    # every half's Sharpe once, prefixes shared; an OOS half is the IS half of another combination
    sr_all = _all_half_sharpes(combos, n_b, s1, s2, bmin, bmax, colmean) if n_c * n <= _ALL_CELLS else None
    other = _complements(s) if sr_all is not None else None
    if sr_all is None:
        in_is = np.zeros((n_c, s), dtype=bool)
        in_is[np.arange(n_c)[:, None], combos] = True
        compl = np.nonzero(~in_is)[1].reshape(n_c, s // 2)  # row-major: sorted per combination
    for lo in range(0, n_c, _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        if sr_all is not None:
            sr_is, sr_oos = sr_all[sl], sr_all[other[sl]]
        else:
            sr_is = _half_sharpe(combos[sl], n_b, s1, s2, bmin, bmax, colmean)
            sr_oos = _half_sharpe(compl[sl], n_b, s1, s2, bmin, bmax, colmean)
        k = np.argmax(sr_is, axis=1)
        rows = np.arange(k.size)
        o = sr_oos[rows, k]
        less = (sr_oos < o[:, None]).sum(axis=1)
        equal = (sr_oos == o[:, None]).sum(axis=1)
        best[sl], is_best[sl], oos_best[sl] = k, sr_is[rows, k], o
        rank[sl] = less + (equal + 1) / 2.0
    w = rank / (n + 1.0)
    lambdas = np.log(w / (1.0 - w))
    table = pd.DataFrame({
        "combination": np.arange(n_c),
        "is_blocks": list(_block_labels(s)),
        "best_trial": [labels[int(i)] for i in best],
        "is_sharpe": is_best, "oos_sharpe": oos_best, "oos_rank": rank, "w": w,
        "lambda": lambdas,
    }) if records else None
    n_deg = int((np.ptp(mat, axis=0) == 0.0).sum())
    assert n_c == math.comb(s, s // 2)
    return PBOResult(
        pbo=float(np.mean(lambdas <= 0.0)), lambdas=lambdas, records=table,
        prob_oos_loss=float(np.mean(oos_best < 0.0)), n_splits=s, n_trials=n, n_obs=t,
        n_combinations=n_c, n_degenerate_trials=n_deg,
    )
