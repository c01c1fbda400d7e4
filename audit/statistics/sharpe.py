"""Annualised Sharpe ratio with a stationary-bootstrap confidence interval.

Default interval: the studentised bootstrap (bootstrap-t; Efron & Tibshirani 1993, ch. 12; for
the Sharpe ratio Ledoit & Wolf 2008, section 3.2). Each replicate's ``t* = (SR* - SR) / se*``
uses the Mertens (2002) iid standard error ``se = sqrt((1 - g3 SR + (g4 - 1)/4 SR^2)/(n - 1))``
(the PSR kernel's); the blocks carry the serial dependence into the spread of ``t*``. Measured in
``benchmarks/calibration.py`` on AR(1)-GARCH(1,1) Student-t returns of 1,000 days, the plain
percentile interval covered the true Sharpe about 0.89 of the time at a nominal 0.95 (150-300
series), the studentised one 0.96 (400 series; figures in the README). ``method="percentile"`` keeps the percentile
interval.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from audit.statistics._common import (
    as_series_1d, auto_block_length, check_alpha, check_block_length, check_n_boot,
    check_positive, check_seed, percentile_ci, sharpe_per_period,
)
from contracts.errors import ConfigError

STATUS_OK = "ok"
STATUS_DEGENERATE = "degenerate"


@dataclass(frozen=True)
class SharpeCI:
    """Result of :func:`sharpe_ci`. Sharpe figures are **annualised** unless named per-period.

    ``sharpe`` = ``sharpe_per_period * sqrt(periods_per_year)``; ``ci_low``/``ci_high`` are the
    percentile bounds of the bootstrap distribution of the annualised Sharpe at level
    ``1 - alpha``. ``degenerate`` is True when the series is constant (Sharpe 0, CI (0, 0),
    status ``"degenerate"``). ``degenerate_draws`` counts bootstrap replicates that happened to
    be constant (each given Sharpe 0 by the same rule).
    """

    sharpe: float
    ci_low: float
    ci_high: float
    sharpe_per_period: float
    periods_per_year: float
    n_obs: int
    n_boot: int
    alpha: float
    block_length: int
    block_length_auto: bool
    seed: int
    degenerate: bool
    degenerate_draws: int
    status: str
    method: str = "studentized"

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready dict (for ``bootstrap.json``)."""
        return asdict(self)


def sharpe_ci(
    returns: object,
    periods_per_year: float,
    seed: int,
    n_boot: int = 1000,
    alpha: float = 0.05,
    block_length: int | None = None,
    method: str = "studentized",
) -> SharpeCI:
    """Annualised Sharpe ratio and its stationary-bootstrap percentile CI.

    Parameters
    ----------
    returns
        1-D simple returns per period (fractions), e.g. a cell's daily TWR returns; risk-free 0.
    periods_per_year
        Periods per year used to annualise (e.g. 365 for crypto daily bars, 252 for equities).
    seed
        Non-negative integer; the bootstrap draws from ``np.random.default_rng(seed)``.
    n_boot
        Bootstrap replications (default 1000).
    alpha
        Two-sided level; the CI is ``[q(alpha/2), q(1 - alpha/2)]`` (default 95%).
    block_length
        Mean block length of the stationary bootstrap (Politis & Romano 1994). ``None`` (default)
        estimates it with ``arch.bootstrap.optimal_block_length`` ('stationary' column, rounded
        up, floored at 1).

    method
        ``"studentized"`` (default, bootstrap-t, see the module docstring) or ``"percentile"``.

    Returns
    -------
    SharpeCI
        Annualised Sharpe ``mean / std(ddof=1) * sqrt(periods_per_year)`` and its CI.

    Zero-variance rule: a constant series (all returns equal, e.g. liquidated early with
    constant 0 returns) gets Sharpe 0.0, CI (0.0, 0.0), ``degenerate=True``, no bootstrap.
    Bootstrap replicates that are constant get Sharpe 0 by the same rule (counted).
    """
    x = as_series_1d(returns, "returns")
    if method not in ("studentized", "percentile"):
        raise ConfigError(f"method: expected 'studentized' or 'percentile', got {method!r}")
    ppy = check_positive(periods_per_year, "periods_per_year")
    seed = check_seed(seed)
    n_boot = check_n_boot(n_boot)
    alpha = check_alpha(alpha)
    scale = math.sqrt(ppy)
    if block_length is not None:
        block_length = check_block_length(block_length, x.size)
    sr, degenerate = sharpe_per_period(x)
    if bool(degenerate):
        return SharpeCI(
            sharpe=0.0, ci_low=0.0, ci_high=0.0, sharpe_per_period=0.0, periods_per_year=ppy,
            n_obs=int(x.size), n_boot=n_boot, alpha=alpha,
            block_length=1 if block_length is None else block_length,
            block_length_auto=block_length is None, seed=seed, degenerate=True,
            degenerate_draws=0, status=STATUS_DEGENERATE, method=method,
        )
    b = auto_block_length(x) if block_length is None else block_length
    boot_sr, boot_deg, se_b = boot_sharpe_draws(x, b, n_boot, seed)
    if method == "percentile":
        lo, hi = percentile_ci(boot_sr * scale, alpha)
    else:
        se = float(mertens_se(x[None, :], np.atleast_1d(sr))[0])
        ok = ~boot_deg & (se_b > 0.0)
        t_star = (boot_sr[ok] - float(sr)) / se_b[ok]
        if t_star.size < 2 or se == 0.0:
            lo, hi = percentile_ci(boot_sr * scale, alpha)
        else:
            q_lo, q_hi = percentile_ci(t_star, alpha)
            lo, hi = (float(sr) - q_hi * se) * scale, (float(sr) - q_lo * se) * scale
    return SharpeCI(
        sharpe=float(sr) * scale, ci_low=lo, ci_high=hi, sharpe_per_period=float(sr),
        periods_per_year=ppy, n_obs=int(x.size), n_boot=n_boot, alpha=alpha, block_length=b,
        block_length_auto=block_length is None, seed=seed, degenerate=False,
        degenerate_draws=int(boot_deg.sum()), status=STATUS_OK, method=method,
    )


#: values per block of ``boot_sharpe_stats``: its deviations stay in cache, and short series (regime
#: figures) still take few blocks (the per-call overhead of numpy dominates below ~50,000 values)
_CELLS = 1 << 16  # replicates x observations per block (~0.5 MB of float64)


def boot_sharpe_stats(x: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per replicate ``x[idx[r]]``: the per-period Sharpe and degenerate flag of ``sharpe_per_period``
    and the Mertens standard error of ``mertens_se``, with the same floating-point operations (each
    row's reductions run along the row, so they do not depend on the blocking), computed block by
    block of ``_CELLS // n`` replicates with the deviations formed once (the separate calls formed the
    mean and the deviations twice over the whole R x n matrix). ``sharpe_ci`` now takes the same
    figures from ``boot_sharpe_draws`` (no R x n matrices); this matrix path is its reference in the
    tests and ``benchmarks/statistics.py``.
    """
    r, n = idx.shape
    rows = max(1, _CELLS // max(n, 1))
    sr = np.empty(r)
    deg = np.empty(r, dtype=bool)
    se = np.empty(r)
    for lo in range(0, r, rows):
        xb = x[idx[lo:lo + rows]]
        d = xb - xb.mean(axis=1, keepdims=True)
        d2 = d * d
        s2 = d2.sum(axis=1)
        dg = np.ptp(xb, axis=1) == 0.0
        std = np.sqrt(s2 / (n - 1))
        mean = xb.mean(axis=1)
        s = np.where(dg, 0.0, mean / np.where(dg, 1.0, std))
        m2 = s2 / n
        safe = np.where(m2 > 0.0, m2, 1.0)
        g3 = np.mean(d2 * d, axis=1) / safe**1.5
        g4 = np.mean(d2 * d2, axis=1) / safe**2
        v = np.maximum(1.0 - g3 * s + (g4 - 1.0) / 4.0 * s * s, 0.0) / (n - 1.0)
        sr[lo:lo + rows], deg[lo:lo + rows] = s, dg
        se[lo:lo + rows] = np.where(m2 > 0.0, np.sqrt(v), 0.0)
    return sr, deg, se


def boot_sharpe_draws(x: np.ndarray, block_length: int, n_boot: int,
                      seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``boot_sharpe_stats(x, stationary_indices(x.size, block_length, n_boot, seed))`` bit for bit,
    from each replicate's sums (``audit.statistics.bootmoments.stationary_moments``: no R x n index or
    value matrix); the elementwise steps below are ``boot_sharpe_stats``' on the per-replicate sums."""
    from audit.statistics.bootmoments import stationary_moments  # numba: imported when first needed

    sums, deg = stationary_moments(x[None, :], block_length, n_boot, seed, higher=True)
    s1, s2, s3, s4 = sums[0]
    dg = deg[0]
    n = x.size
    std = np.sqrt(s2 / (n - 1))
    mean = s1 / n
    s = np.where(dg, 0.0, mean / np.where(dg, 1.0, std))
    m2 = s2 / n
    safe = np.where(m2 > 0.0, m2, 1.0)
    g3 = (s3 / n) / safe**1.5
    g4 = (s4 / n) / safe**2
    v = np.maximum(1.0 - g3 * s + (g4 - 1.0) / 4.0 * s * s, 0.0) / (n - 1.0)
    return s, dg, np.where(m2 > 0.0, np.sqrt(v), 0.0)


def mertens_se(x: np.ndarray, sr: np.ndarray) -> np.ndarray:
    """Per-period Sharpe standard error of each row of ``x`` (R x n) given its Sharpes ``sr``:
    ``sqrt(max(0, 1 - g3 SR + (g4 - 1)/4 SR^2) / (n - 1))`` with the biased sample skewness
    and non-excess kurtosis (Mertens 2002; Bailey & Lopez de Prado 2012). Constant rows give 0.

    The third and fourth powers are products (``d2 * d``, ``d2 * d2``), not ``d**3``/``d**4``:
    numpy's ``pow`` is about 70x slower than a multiply on a bootstrap's 300 x 500 draws, and the
    products differ from it by at most a couple of ulps per term (relative ~1e-16 on the moments,
    far below the bootstrap's own Monte Carlo error).
    """
    n = x.shape[1]
    d = x - x.mean(axis=1, keepdims=True)
    d2 = d * d
    m2 = np.mean(d2, axis=1)
    safe = np.where(m2 > 0.0, m2, 1.0)
    g3 = np.mean(d2 * d, axis=1) / safe**1.5
    g4 = np.mean(d2 * d2, axis=1) / safe**2
    v = np.maximum(1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr, 0.0) / (n - 1.0)
    return np.where(m2 > 0.0, np.sqrt(v), 0.0)
