"""Hierarchical Risk Parity (Lopez de Prado, 2016), native and through riskfolio's ``HCPortfolio``.

Both take the same daily covariance S and follow the same steps, so they agree before any cap:

1. correlation ``rho`` of S; distance ``d = sqrt(0.5 (1 - rho))`` (clipped to [0, 1]);
2. single linkage (``scipy.cluster.hierarchy.linkage``, no optimal leaf ordering), quasi-diagonal order
   = the dendrogram's leaves left to right;
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
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.spatial.distance import squareform

from contracts.errors import SolverError


def correlation_distance(cov: np.ndarray) -> np.ndarray:
    """``sqrt(0.5 (1 - rho))`` of the correlation of ``cov`` (zero diagonal, symmetric)."""
    sd = np.sqrt(np.diag(cov))
    rho = cov / np.outer(sd, sd)
    d = np.sqrt(np.clip(0.5 * (1.0 - rho), 0.0, 1.0))
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0.0)
    return d


def quasi_diagonal_order(cov: np.ndarray) -> np.ndarray:
    """Leaf order of the single-linkage dendrogram on the correlation distance."""
    if cov.shape[0] == 1:
        return np.zeros(1, dtype=int)
    z = linkage(squareform(correlation_distance(cov), checks=False), method="single")
    return leaves_list(z)


def _cluster_variance(cov: np.ndarray, items: np.ndarray) -> float:
    sub = cov[np.ix_(items, items)]
    ivp = 1.0 / np.diag(sub)
    ivp = ivp / ivp.sum()
    return float(ivp @ sub @ ivp)


def hrp_native(cov: np.ndarray) -> np.ndarray:
    """HRP weights (non-negative, sum 1) of daily covariance ``cov`` (see module docstring)."""
    n = cov.shape[0]
    w = np.ones(n)
    items = [quasi_diagonal_order(cov)]
    while items:
        items = [part for it in items if len(it) > 1
                 for part in (it[: len(it) // 2], it[len(it) // 2:])]
        for left, right in zip(items[0::2], items[1::2]):
            v_l, v_r = _cluster_variance(cov, left), _cluster_variance(cov, right)
            alpha = 1.0 - v_l / (v_l + v_r)
            w[left] *= alpha
            w[right] *= 1.0 - alpha
    return w / w.sum()


def hrp_riskfolio(cov: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """HRP weights from ``riskfolio.HCPortfolio`` with our covariance as its custom covariance and
    codependence, single linkage, no optimal leaf ordering, ``rm='MV'``. ``returns`` (T x N, NaN -> 0)
    only sizes riskfolio's inputs. Raises SolverError if riskfolio returns nothing."""
    import riskfolio as rp

    n = cov.shape[0]
    if n == 1:
        return np.ones(1)
    names = [f"a{i}" for i in range(n)]
    cov_df = pd.DataFrame(cov, index=names, columns=names)
    port = rp.HCPortfolio(returns=pd.DataFrame(returns, columns=names))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        res = port.optimization(model="HRP", codependence="custom_cov", rm="MV", rf=0,
                                linkage="single", leaf_order=False, method_cov="custom_cov",
                                custom_cov=cov_df)
    if res is None:
        raise SolverError(f"riskfolio HCPortfolio returned no weights ({out.getvalue().strip()[:120]})")
    w = res["weights"].reindex(names).to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise SolverError("riskfolio HCPortfolio returned non-finite weights")
    return w / w.sum()
