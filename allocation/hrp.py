"""Hierarchical Risk Parity (Lopez de Prado, 2016), native and through riskfolio's ``HCPortfolio``.

Both take the same daily covariance S and follow the same steps, so they agree before any cap:

1. correlation ``rho`` of S; distance ``d = sqrt(0.5 (1 - rho))`` (clipped to [0, 1]);
2. single linkage (``scipy.cluster.hierarchy.linkage``, no optimal leaf ordering), quasi-diagonal order
   = the dendrogram's leaves left to right (``leaves_order``, = scipy's ``leaves_list``);
3. recursive bisection of that order into halves; each half's variance is that of its
   inverse-variance portfolio; the left half gets ``1 - V_left / (V_left + V_right)`` of the parent.

With one atom the weight is 1. The cluster and atom caps are applied afterwards by
``constraints.project`` (both backends, same rule).
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import squareform

from allocation.solve import riskfolio_runtime
from contracts.errors import SolverError


def correlation_distance(cov: np.ndarray) -> np.ndarray:
    """``sqrt(0.5 (1 - rho))`` of the correlation of ``cov`` (zero diagonal, symmetric)."""
    sd = np.sqrt(np.diag(cov))
    rho = cov / np.outer(sd, sd)
    d = np.sqrt(np.clip(0.5 * (1.0 - rho), 0.0, 1.0))
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0.0)
    return d


def leaves_order(z: np.ndarray) -> np.ndarray:
    """Leaves of the linkage matrix ``z`` (scipy's format) from left to right: the same order as
    ``scipy.cluster.hierarchy.leaves_list``, without its linkage validity check (``z`` comes from
    ``scipy.cluster.hierarchy.linkage``, valid by construction)."""
    n = z.shape[0] + 1
    children = z[:, :2].astype(np.int64).tolist()
    out: list[int] = []
    stack = [2 * n - 2]  # the root
    while stack:
        node = stack.pop()
        if node < n:
            out.append(node)
        else:
            left, right = children[node - n]
            stack.append(right)  # popped after the whole left subtree
            stack.append(left)
    return np.array(out, dtype=np.int64)


def quasi_diagonal_order(cov: np.ndarray) -> np.ndarray:
    """Leaf order of the single-linkage dendrogram on the correlation distance."""
    if cov.shape[0] == 1:
        return np.zeros(1, dtype=int)
    z = linkage(squareform(correlation_distance(cov), checks=False), method="single")
    return leaves_order(z)


def _halves(n: int) -> tuple[np.ndarray, int]:
    """The recursive bisection of positions ``0..n-1`` as labels: ``labels[l, i]`` is the half that
    holds position i at level l (halves numbered so that siblings are ``2j, 2j + 1``), or ``h`` (the
    number of halves) when position i is already alone at that level."""
    rows: list[list[tuple[int, int]]] = []
    segments = [(0, n)] if n > 1 else []
    while segments:
        level = [h for a, b in segments for h in ((a, a + (b - a) // 2), (a + (b - a) // 2, b))]
        rows.append(level)
        segments = [(a, b) for a, b in level if b - a > 1]
    h = sum(len(level) for level in rows)
    out, g = [], 0
    for level in rows:
        row = [h] * n
        for a, b in level:
            row[a:b] = [g] * (b - a)
            g += 1
        out.append(row)
    return np.array(out, dtype=np.int64), h


def hrp_native(cov: np.ndarray) -> np.ndarray:
    """HRP weights (non-negative, sum 1) of daily covariance ``cov`` (see module docstring).

    Vectorised over the whole bisection: in the quasi-diagonal order every cluster is a contiguous
    block, and a split's share ``alpha`` depends only on its two halves' variances, so the variances
    of every half of every level come from one masked product and the weights are the products of
    the shares along each position's path (one masked product per level). The per-cluster loop (``ivp' S_cc ivp`` for each half,
    level by level) is the oracle in ``tests/allocation/test_hrp_kernels.py``; the two differ by
    float summation order only."""
    n = cov.shape[0]
    if n == 1:
        return np.ones(1)
    order = quasi_diagonal_order(cov)
    c = cov[np.ix_(order, order)]
    inv = 1.0 / np.diag(c)
    labels, h = _halves(n)
    flat = labels.ravel()
    ivp = inv / np.bincount(flat, weights=np.tile(inv, len(labels)), minlength=h + 1)[labels]
    rows = np.empty(labels.shape)
    for lev, lab in enumerate(labels):  # one level at a time: O(N^2) memory, like the covariance
        rows[lev] = np.where(lab[:, None] == lab[None, :], c, 0.0) @ ivp[lev]
    var = np.bincount(flat, weights=(ivp * rows).ravel(), minlength=h + 1)
    alpha = 1.0 - var[0:h:2] / (var[0:h:2] + var[1:h:2])
    share = np.ones(h + 1)
    share[0:h:2], share[1:h:2] = alpha, 1.0 - alpha
    w = np.prod(share[labels], axis=0)
    out = np.empty(n)
    out[order] = w / w.sum()
    return out


def hrp_riskfolio(cov: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """HRP weights from ``riskfolio.HCPortfolio`` with our covariance as its custom covariance and
    codependence, single linkage, no optimal leaf ordering, ``rm='MV'``. ``returns`` (T x N, NaN -> 0)
    only sizes riskfolio's inputs. Raises SolverError if riskfolio returns nothing. Runs under
    ``solve.riskfolio_runtime`` (pandas string storage, garbage collector paused: neither reaches
    the weights)."""
    import riskfolio as rp

    n = cov.shape[0]
    if n == 1:
        return np.ones(1)
    # integer labels 0..n-1 (label = position): riskfolio indexes its frames by label, and
    # pandas >= 3 stores string labels as Arrow strings, whose look-ups cost ~25% of a call;
    # the labels never reach the numbers (tests/allocation/test_references.py checks the
    # weights are bit-identical to string labels)
    names = list(range(n))
    cov_df = pd.DataFrame(cov, index=names, columns=names)
    port = rp.HCPortfolio(returns=pd.DataFrame(returns, columns=names))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), riskfolio_runtime():
        res = port.optimization(model="HRP", codependence="custom_cov", rm="MV", rf=0,
                                linkage="single", leaf_order=False, method_cov="custom_cov",
                                custom_cov=cov_df)
    if res is None:
        raise SolverError(f"riskfolio HCPortfolio returned no weights ({out.getvalue().strip()[:120]})")
    w = res["weights"].reindex(names).to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise SolverError("riskfolio HCPortfolio returned non-finite weights")
    return w / w.sum()
