"""Shared helpers of the statistics kernels: input checks, the Sharpe kernel, block lengths.

Conventions used by every kernel of this package:

- Returns are simple returns per period (a fraction; daily in this toolkit), risk-free rate 0.
- The *per-period* Sharpe ratio is ``mean / std`` with ``std`` the sample standard deviation
  (``ddof=1``); the *annualised* Sharpe multiplies it by ``sqrt(periods_per_year)``.
- **Zero-variance rule.** A series whose values are all identical (``max == min``, e.g. a cell
  liquidated early whose returns are constant 0, or a flat cash line) has an undefined Sharpe.
  It is given Sharpe ``0.0`` and flagged ``degenerate``; a kernel never returns NaN for it.
  The test is exact (``max == min``), not a tolerance on ``std``: a tolerance would misclassify
  genuinely low-volatility series, and the exact test cannot be fooled by rounding
  (``np.std`` of a constant non-zero array can be ~1e-19 rather than 0, which would give an
  absurd Sharpe of ~1e16).
"""
from __future__ import annotations

import math
import numpy as np
import pandas as pd
from arch.bootstrap import optimal_block_length

from contracts.errors import ConfigError, DataError


def as_series_1d(returns: object, field: str, min_obs: int = 3) -> np.ndarray:
    """Return ``returns`` as a finite 1-D float64 array; raise ``DataError`` naming the field.

    ``min_obs`` is the smallest legal length (3 keeps ``std(ddof=1)`` and the block-length
    estimator meaningful).
    """
    index = returns.index if isinstance(returns, pd.Series) else None
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(f"{field}: expected a 1-D series of returns, got shape {arr.shape}")
    if arr.shape[0] < min_obs:
        raise DataError(f"{field}: {arr.shape[0]} observations, at least {min_obs} needed")
    bad = ~np.isfinite(arr)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        where = index[pos] if index is not None else pos
        raise DataError(f"{field}: non-finite return at {where!r} ({int(bad.sum())} in all)")
    return arr


def as_matrix(
    returns: object, field: str, min_obs: int = 3, min_cols: int = 1
) -> tuple[np.ndarray, list[object]]:
    """Return a T x N matrix as finite float64 and its column labels; raise ``DataError``."""
    if isinstance(returns, pd.DataFrame):
        labels: list[object] = list(returns.columns)
        index = returns.index
        arr = returns.to_numpy(dtype=np.float64)
    else:
        arr = np.asarray(returns, dtype=np.float64)
        index = None
        labels = list(range(arr.shape[1])) if arr.ndim == 2 else []
    if arr.ndim != 2:
        raise DataError(f"{field}: expected a 2-D (dates x trials) matrix, got shape {arr.shape}")
    if arr.shape[0] < min_obs:
        raise DataError(f"{field}: {arr.shape[0]} dates, at least {min_obs} needed")
    if arr.shape[1] < min_cols:
        raise DataError(f"{field}: {arr.shape[1]} columns, at least {min_cols} needed")
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        when = index[row] if index is not None else row
        raise DataError(
            f"{field}: non-finite return for column {labels[col]!r} at {when!r} "
            f"({int(bad.sum())} in all); trials must share common dates"
        )
    return arr, labels


def check_positive(value: float, field: str) -> float:
    """Raise ``ConfigError`` unless ``value`` is a finite number > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{field}: expected a number > 0, got {value!r}") from exc
    if not math.isfinite(v) or v <= 0:
        raise ConfigError(f"{field}: expected a number > 0, got {value!r}")
    return v


def check_alpha(alpha: float, field: str = "alpha") -> float:
    """Raise ``ConfigError`` unless ``0 < alpha < 1``."""
    try:
        a = float(alpha)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{field}: expected 0 < {field} < 1, got {alpha!r}") from exc
    if not 0.0 < a < 1.0:
        raise ConfigError(f"{field}: expected 0 < {field} < 1, got {alpha!r}")
    return a


def check_n_boot(n_boot: int, field: str = "n_boot") -> int:
    """Raise ``ConfigError`` unless ``n_boot`` is an integer >= 10."""
    if not isinstance(n_boot, (int, np.integer)) or isinstance(n_boot, bool) or n_boot < 10:
        raise ConfigError(f"{field}: expected an integer >= 10, got {n_boot!r}")
    return int(n_boot)


def check_seed(seed: object) -> int:
    """Seeds are explicit non-negative integers (derived from the run's base seed upstream)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(seed)


def sharpe_per_period(x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Per-period Sharpe ``mean / std(ddof=1)`` along ``axis`` and the degenerate mask.

    Slices whose values are all identical get Sharpe 0.0 and ``degenerate=True`` (module rule).
    """
    x = np.asarray(x, dtype=np.float64)
    degenerate = np.ptp(x, axis=axis) == 0.0
    mean = x.mean(axis=axis)
    std = x.std(axis=axis, ddof=1)
    safe = np.where(degenerate, 1.0, std)
    sr = np.where(degenerate, 0.0, mean / safe)
    return sr, degenerate


def auto_block_length(x: np.ndarray, how: str = "max") -> int:
    """Stationary-bootstrap block length from ``arch.bootstrap.optimal_block_length``.

    Uses the ``'stationary'`` column (Politis & White 2004, Patton et al. 2009 correction),
    rounded up and floored at 1. For several columns ``how`` aggregates them: ``"max"``
    (the longest block keeps the strongest dependence of any column; conservative) or
    ``"median"``. A constant column has no dependence to preserve and contributes 1 (its
    estimate is 0/0 inside arch, so it is not passed to it). A series too short for arch's
    estimator (it scans ``ceil(sqrt(n)) + max(5, log10 n)`` lags; fewer than that + 2
    observations, i.e. n < 12) gets 1: too short to estimate any dependence.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    n_obs = arr.shape[0]
    m_max = math.ceil(math.sqrt(n_obs)) + max(5, int(math.log10(max(n_obs, 1))))
    live = np.ptp(arr, axis=0) > 0.0
    if not live.any() or n_obs < m_max + 2:
        return 1
    with np.errstate(divide="ignore", invalid="ignore"):
        est = stationary_block_estimates(arr[:, live])
    est = np.where(np.isfinite(est), est, 1.0)
    agg = float(np.max(est)) if how == "max" else float(np.median(est))
    return max(1, int(math.ceil(agg)))


def stationary_block_estimates(cols: np.ndarray) -> np.ndarray:
    """``optimal_block_length(cols)["stationary"]`` as float64 (T x k ``cols``, one estimate per column):
    arch's own per-column estimator (``arch.bootstrap.base._single_optimal_block``) on the same column
    views ``optimal_block_length`` passes it, without building its DataFrame (half of its ~0.9 ms per
    call). Falls back to ``optimal_block_length`` if arch no longer has that function."""
    try:
        from arch.bootstrap.base import _single_optimal_block
    except ImportError:  # pragma: no cover - a future arch
        return optimal_block_length(cols)["stationary"].to_numpy(dtype=np.float64)
    x_arr = np.asarray(cols, dtype=float)  # optimal_block_length: asarray(ensure2d(asarray(x, float)), float)
    if x_arr.ndim != 2:
        return optimal_block_length(cols)["stationary"].to_numpy(dtype=np.float64)
    return np.array([_single_optimal_block(col)[0] for col in x_arr.T], dtype=np.float64)


def check_block_length(block_length: object, n_obs: int) -> int:
    """An explicit block length: an integer in ``[1, n_obs]``; else ``ConfigError``."""
    if not isinstance(block_length, (int, np.integer)) or isinstance(block_length, bool):
        raise ConfigError(f"block_length: expected an integer, got {block_length!r}")
    b = int(block_length)
    if not 1 <= b <= n_obs:
        raise ConfigError(f"block_length: expected 1 <= block_length <= {n_obs}, got {b}")
    return b


def percentile_ci(samples: np.ndarray, alpha: float) -> tuple[float, float]:
    """Two-sided percentile interval ``[q(alpha/2), q(1-alpha/2)]`` (numpy 'linear' method)."""
    lo, hi = np.quantile(samples, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def stationary_indices(n_obs: int, block_length: int, n_boot: int, seed: int) -> np.ndarray:
    """``n_boot x n_obs`` row indices of a seeded stationary bootstrap (Politis & Romano 1994).

    The draws of ``arch.bootstrap.StationaryBootstrap`` (mean block length ``block_length``) with
    ``seed=np.random.default_rng(seed)``, replicate by replicate: ``n_obs`` block starts
    (``integers``), then ``n_obs`` uniforms (``random``), joined into blocks as arch's sampler joins
    them. Drawn in one compiled pass over the generator's words (``audit.statistics.draws``: the
    same numbers, without numpy's per-call overhead); ``tests/audit/test_draws.py`` pins them to the
    per-replicate calls and ``tests/audit/test_sharpe_fast.py`` to arch's generator.
    """
    from audit.statistics.draws import stationary_indices as draw  # numba: imported when first needed

    return draw(n_obs, block_length, n_boot, seed)
