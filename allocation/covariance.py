"""Covariance estimation, betas and ex-ante volatility: pure functions over numpy/pandas.

Units: inputs are daily simple returns; covariances are daily (return units squared); annualising
multiplies a variance by ``periods_per_year`` P.

NaN rule: a NaN in an atom stream is a bar without a position (the gate is off or the asset has no
price), so it is taken as a zero return for estimation (``NaN -> 0``). This keeps every estimate
defined on the same bars, and a column that is entirely NaN becomes a constant (zero-variance) column.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import sklearn
from sklearn.covariance import empirical_covariance, ledoit_wolf_shrinkage, shrunk_covariance

from contracts.errors import ConfigError, DataError

#: Variance floor (daily return units squared, i.e. a daily volatility of 1e-6). An atom whose estimated
#: variance is below it (constant returns, all-NaN column) gets this variance and zero correlation with
#: the others, so that the covariance is positive definite and inverse-variance weights are finite.
VARIANCE_FLOOR = 1e-12


def clean_returns(returns: pd.DataFrame | np.ndarray, what: str = "atom_returns") -> np.ndarray:
    """Return a float array (T x N) with NaN replaced by 0; raise DataError on an infinite value.

    One pass in the common case (every value finite): the frame's float64 values are returned as a
    read-only view, without a copy; otherwise a copy with NaN -> 0."""
    if isinstance(returns, pd.DataFrame):
        x = returns.to_numpy(dtype=np.float64, copy=False)
    else:
        x = np.asarray(returns, dtype=np.float64)
    if x.ndim != 2:
        raise DataError(f"{what}: expected a 2-D array (bars x columns), got shape {x.shape}")
    if np.isfinite(x).all():
        x = x.view()
        x.flags.writeable = False  # a view of the caller's data: never written through
        return x
    inf = np.isinf(x)
    if inf.any():
        rows, cols = np.nonzero(inf)
        name = returns.columns[cols[0]] if isinstance(returns, pd.DataFrame) else int(cols[0])
        date = returns.index[rows[0]] if isinstance(returns, pd.DataFrame) else int(rows[0])
        raise DataError(f"{what}: infinite return for {name!r} at {date}")
    return np.where(np.isnan(x), 0.0, x)


def ridge_correlation(cov: np.ndarray, shrinkage: float) -> np.ndarray:
    """Apply ``(1-s) C + s I`` to the correlation C of ``cov`` and map back with the same variances.

    Zero-variance columns are first floored to ``VARIANCE_FLOOR`` with zero correlation.
    """
    if not 0.0 <= shrinkage <= 1.0:
        raise ConfigError(f"shrinkage must be in [0, 1], got {shrinkage}")
    cov = np.array(cov, dtype=np.float64, copy=True)
    var = np.diag(cov).copy()
    low = var < VARIANCE_FLOOR
    if low.any():
        cov[low, :] = 0.0
        cov[:, low] = 0.0
        var[low] = VARIANCE_FLOOR
        cov[np.diag_indices_from(cov)] = var
    sd = np.sqrt(var)
    corr = cov / np.outer(sd, sd)
    corr = 0.5 * (corr + corr.T)
    np.fill_diagonal(corr, 1.0)
    corr = (1.0 - shrinkage) * corr + shrinkage * np.eye(corr.shape[0])
    return corr * np.outer(sd, sd)


def estimate_covariance(
    returns: pd.DataFrame | np.ndarray,
    shrinkage: float = 0.0,
    method: Literal["ledoit_wolf", "sample"] = "ledoit_wolf",
) -> np.ndarray:
    """Daily covariance (N x N) of the atom streams.

    ``ledoit_wolf``: sklearn's Ledoit-Wolf estimate (``ledoit_wolf_covariance``: centred, shrunk
    towards a scaled identity; positive definite even when T < N); ``sample``: the unbiased sample covariance
    (ddof=1). Then the ridge ``(1-s) C + s I`` on the correlation with ``s = shrinkage``, mapped back
    with the estimated variances (see ``ridge_correlation``). NaN -> 0 before estimation.
    """
    x = clean_returns(returns)
    t, n = x.shape
    if n == 0:
        return np.zeros((0, 0))
    if t < 2:
        raise DataError(f"atom_returns: {t} bar(s); at least 2 are needed to estimate a covariance")
    if method == "ledoit_wolf":
        cov = ledoit_wolf_covariance(x)
    elif method == "sample":
        cov = np.atleast_2d(np.cov(x, rowvar=False, ddof=1))
    else:
        raise ConfigError(f"covariance method {method!r} is not one of 'ledoit_wolf', 'sample'")
    return ridge_correlation(cov, shrinkage)


def ledoit_wolf_covariance(x: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf covariance of finite returns ``x`` (T x N, T >= 2), daily units squared.

    sklearn's own kernels, called as ``LedoitWolf.fit`` calls them: centre on the column means, then
    ``ledoit_wolf_shrinkage`` and ``empirical_covariance`` on the centred data and
    ``shrunk_covariance`` (``(1 - s) S + s mu I``). Equal, bit for bit, to
    ``sklearn.covariance.ledoit_wolf(x)[0]`` (tests/allocation/test_covariance.py), without the
    estimator's precision matrix (``pinvh``) and with sklearn's input validation skipped (``x`` is
    checked finite by ``clean_returns``): 0.16 ms instead of 0.27 ms per call on 252 x 20. A
    constant panel gives zero (sklearn's shrinkage is 0 when ``beta == 0``)."""
    xc = x - x.mean(0)
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        shrinkage = ledoit_wolf_shrinkage(xc, assume_centered=True)
        emp = empirical_covariance(xc, assume_centered=True)
        return np.atleast_2d(shrunk_covariance(emp, shrinkage))


def mean_returns(returns: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Sample mean daily return of each atom stream (NaN -> 0, as for the covariance)."""
    return clean_returns(returns).mean(axis=0)


def atom_betas(atom_returns: pd.DataFrame, benchmark: pd.Series | None) -> np.ndarray:
    """Beta of each atom stream to the benchmark: ``cov(a, b) / var(b)`` (ddof=1), daily returns.

    Bars where the benchmark is NaN are dropped; atom NaN -> 0. Raises DataError when the benchmark is
    missing, not aligned with the atom streams, too short or constant.
    """
    if benchmark is None:
        raise DataError("benchmark_returns: market_neutral needs the benchmark's train-slice returns")
    b = pd.Series(benchmark)
    if isinstance(atom_returns, pd.DataFrame) and not b.index.equals(atom_returns.index):
        raise DataError("benchmark_returns: its index is not the atom_returns' train bars")
    bv = b.to_numpy(dtype=np.float64)
    ok = np.isfinite(bv)
    if ok.sum() < 2:
        raise DataError(f"benchmark_returns: {int(ok.sum())} finite bar(s); at least 2 are needed")
    a = clean_returns(atom_returns)[ok]
    bv = bv[ok]
    bc = bv - bv.mean()
    var_b = float(bc @ bc) / (len(bv) - 1)
    if var_b <= 0.0:
        raise DataError("benchmark_returns: constant on the train slice, beta is undefined")
    cov_ab = (a - a.mean(axis=0)).T @ bc / (len(bv) - 1)
    return cov_ab / var_b


def ex_ante_volatility(weights: np.ndarray, cov: np.ndarray, periods_per_year: int) -> float:
    """Annualised ex-ante volatility ``sqrt(w' S w * P)`` (fraction, not percent); S daily."""
    w = np.asarray(weights, dtype=np.float64)
    var = float(w @ np.asarray(cov, dtype=np.float64) @ w)
    return float(np.sqrt(max(var, 0.0) * periods_per_year))


def factor(cov: np.ndarray) -> np.ndarray:
    """A square factor G with ``G.T @ G == cov`` (from the eigen-decomposition; works when singular)."""
    vals, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
    return np.sqrt(np.clip(vals, 0.0, None))[:, None] * vecs.T
