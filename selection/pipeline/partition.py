"""Stage 4, Partitioning (``FactorBucketizer``): SELECTION_SPEC section 4.

Covers every candidate without a hard veto, in id order. For each lookback (60/120/200, replaced by
the train length when longer) the pairwise-complete correlation of the direction-adjusted returns is
computed by masked matrix products (pairs with fewer than 20 common observations, or a zero
variance over them, get 0; the diagonal is 1), ridge-shrunk ``(1-s) C + s I`` with the window's
shrinkage, and turned into ``D = sqrt(0.5 (1 - C))``; the distances are averaged over the lookbacks.
Ward linkage (scipy) on the condensed distances; ``fcluster`` at 0.7, and with more than 25 clusters
``maxclust = 25``. Labels are renumbered 0.. in order of first appearance along the sorted ids.
Density: mean over clusters with >= 2 members of the mean pairwise (unshrunk, lookback-averaged)
correlation, weighted by the number of pairs; None when no cluster has two members.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from selection.pipeline.context import Partition, SelectionContext


def _masked_corr(ya: np.ndarray, y: np.ndarray, min_obs: int) -> np.ndarray:
    """Pairwise-complete correlation of the columns of ``ya`` against those of ``y`` (rows x cols).

    With ``M`` the validity masks and ``Y0`` the column-centred values with NaN set to 0:
    ``n = Ma'M``, ``Sa = Y0a'M`` (sum of column a over the rows common with b), ``Sb = Ma'Y0``,
    ``Saa``, ``Sbb``, ``Sab = Y0a'Y0``; ``cov = Sab - Sa Sb / n``.
    """
    def centred(v):
        m = ~np.isnan(v)
        cnt = m.sum(axis=0)
        mu = np.where(cnt > 0, np.where(m, v, 0.0).sum(axis=0) / np.maximum(cnt, 1), 0.0)
        return np.where(m, v - mu, 0.0), m.astype(np.float64)

    a0, ma = centred(ya)
    b0, mb = centred(y)
    n = ma.T @ mb
    sa, sb = a0.T @ mb, ma.T @ b0
    saa, sbb = (a0 * a0).T @ mb, ma.T @ (b0 * b0)
    sab = a0.T @ b0
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sab - sa * sb / n
        va = saa - sa * sa / n
        vb = sbb - sb * sb / n
        c = cov / np.sqrt(va * vb)
    ok = (n >= min_obs) & (va > 1e-300) & (vb > 1e-300)
    return np.where(ok & np.isfinite(c), c, 0.0)


class _CorrSource:
    """Rows of the pairwise-complete correlation matrix of the columns of ``y``, block by block.

    Columns without NaN are correlated by one product of unit-norm centred columns; the columns with
    a NaN (``inc``) go through the masked products against every column (``_masked_corr``), kept as
    an (incomplete x k) matrix. Pairs with fewer than ``min_obs`` common rows or a zero variance get
    0; the diagonal is 1; values are clipped to [-1, 1].
    """

    def __init__(self, y: np.ndarray, min_obs: int):
        self.k = y.shape[1]
        full = ~np.isnan(y).any(axis=0)
        if y.shape[0] >= min_obs and full.any():
            yc = np.where(full, y, 0.0)
            yc = yc - yc.mean(axis=0)
            ss = np.sqrt(np.einsum("ij,ij->j", yc, yc))
            spread = ss > 0
            yc /= np.where(spread, ss, 1.0)
            yc[:, ~spread] = 0.0  # zero spread (or incomplete: overwritten below) -> 0
            self.yn = yc
        else:
            self.yn = np.zeros((max(y.shape[0], 1), self.k))
        self.inc = np.flatnonzero(~full)
        self.ci = _masked_corr(y[:, self.inc], y, min_obs) if self.inc.size else None
        self.pos = np.full(self.k, -1)
        self.pos[self.inc] = np.arange(self.inc.size)

    def rows(self, r0: int, r1: int) -> np.ndarray:
        c = self.yn[:, r0:r1].T @ self.yn
        if self.ci is not None:
            c[:, self.inc] = self.ci[:, r0:r1].T
            local = self.pos[r0:r1]
            hit = np.flatnonzero(local >= 0)
            if hit.size:
                c[hit] = self.ci[local[hit]]
        np.clip(c, -1.0, 1.0, out=c)
        idx = np.arange(r0, r1)
        c[idx - r0, idx] = 1.0
        return c


def pairwise_corr(y: np.ndarray, min_obs: int) -> np.ndarray:
    """Pairwise-complete Pearson correlation of the columns of ``y`` (bars x k), NaN-aware
    (``_CorrSource``'s rules), as one k x k matrix."""
    src = _CorrSource(y, min_obs)
    return src.rows(0, src.k)


BLOCK_ROWS = 256  # rows per block: a block of a 5,000-candidate matrix is ~10 MB (cache-friendly)


def distance_matrix(x: np.ndarray, lookbacks: tuple[int, ...], shrinkage: float,
                    min_obs: int) -> tuple[np.ndarray, np.ndarray]:
    """(averaged distance matrix, averaged unshrunk correlation) over the lookbacks.

    ``D = sqrt(0.5 (1 - ((1-s) C + s I)))``, i.e. ``sqrt(0.5 - 0.5 (1-s) C)`` off the diagonal and 0
    on it; computed in row blocks so that each k x k pass stays in cache.
    """
    t, k = x.shape
    dist = np.zeros((k, k))
    corr = np.zeros((k, k))
    lbs = [min(lb, t) for lb in lookbacks]
    a = -0.5 * (1.0 - shrinkage)
    for lb in lbs:
        src = _CorrSource(x[t - lb:], min_obs)
        for r0 in range(0, k, BLOCK_ROWS):
            r1 = min(k, r0 + BLOCK_ROWS)
            c = src.rows(r0, r1)
            corr[r0:r1] += c
            c *= a
            c += 0.5
            np.maximum(c, 0.0, out=c)
            np.sqrt(c, out=c)
            idx = np.arange(r0, r1)
            c[idx - r0, idx] = 0.0
            dist[r0:r1] += c
    dist /= len(lbs)
    corr /= len(lbs)
    return dist, corr


def cluster_labels(dist: np.ndarray, cut: float, max_clusters: int) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(labels 0.., Ward linkage or None, whether the maxclust fallback was used)."""
    k = dist.shape[0]
    if k < 2:
        return np.zeros(k, dtype=np.int64), None, False
    z = linkage(squareform(dist, checks=False), method="ward")
    lab = fcluster(z, t=cut, criterion="distance")
    used = False
    if lab.max() > max_clusters:
        lab = fcluster(z, t=max_clusters, criterion="maxclust")
        used = True
    _, first = np.unique(lab, return_index=True)
    order = lab[np.sort(first)]  # labels in order of first appearance
    remap = {int(old): new for new, old in enumerate(order)}
    return np.array([remap[int(v)] for v in lab], dtype=np.int64), z, used


def density(corr: np.ndarray, labels: np.ndarray) -> float | None:
    """Pair-weighted mean intra-cluster correlation; None when no cluster has two members."""
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    n = int(same.sum())
    return float(corr[same].mean()) if n else None


def partition(returns: pd.DataFrame, ids: list[str], lookbacks: tuple[int, ...], shrinkage: float,
              min_obs: int, cut: float, max_clusters: int) -> Partition:
    """Partition the candidates ``ids`` (sorted here) from their train returns."""
    order = sorted(ids)
    x = returns[order].to_numpy(dtype=np.float64) if order else np.zeros((len(returns), 0))
    dist, corr = distance_matrix(x, lookbacks, shrinkage, min_obs)
    lab, z, used = cluster_labels(dist, cut, max_clusters)
    return Partition(labels=pd.Series(lab, index=pd.Index(order, name="candidate"), name="cluster"),
                     linkage=z, order=order, density=density(corr, lab) if len(order) else None,
                     used_maxclust=used, shrinkage=shrinkage)


@dataclass(frozen=True)
class FactorBucketizer:
    """Partitioning: clusters of the candidates without a hard veto (once per window)."""

    lookbacks: tuple[int, ...] = (60, 120, 200)
    min_common_obs: int = 20
    cut: float = 0.7
    max_clusters: int = 25
    name: ClassVar[str] = "partitioning"
    reads: ClassVar[tuple[str, ...]] = ("returns", "vetoes", "params")
    writes: ClassVar[tuple[str, ...]] = ("clusters", "audit_trail")

    def __call__(self, ctx: SelectionContext) -> SelectionContext:
        clean = ~ctx.vetoes.to_numpy(dtype=bool).any(axis=1)
        ids = list(ctx.vetoes.index[clean])
        shrink = float(ctx.params["shrinkage_intensity"])
        part = partition(ctx.returns, ids, self.lookbacks, shrink, self.min_common_obs, self.cut,
                         self.max_clusters)
        sizes = part.sizes
        data = {"n_candidates": len(ids), "n_clusters": len(sizes),
                "sizes": {str(k): v for k, v in sizes.items()}, "maxclust_fallback": part.used_maxclust,
                "shrinkage_intensity": shrink, "cluster_density": part.density}
        return ctx.model_copy(update={"clusters": part,
                                      "audit_trail": ctx.event(self.name, "partitioned", data)})
