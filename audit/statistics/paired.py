"""Paired test of a Sharpe difference (Ledoit & Wolf 2008, HAC delta method) with a
block-bootstrap confidence interval, and Holm's step-down correction.

Why an analytic p-value: a bootstrap p-value cannot go below ``1 / (n_boot + 1)``, and Holm's
first threshold is ``alpha / m``; with 36 pairs and 300 draws (the quick preset), or 252 pairs and
1,000 draws (the full one), no pair could ever be rejected. The HAC p-value resolves to any level,
so the smallest achievable p-value is below every Holm threshold; the bootstrap gives the CI.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from audit.statistics._common import (
    as_series_1d, auto_block_length, check_alpha, check_block_length, check_n_boot,
    check_positive, check_seed, percentile_ci, sharpe_per_period,
)
from contracts.errors import DataError


@dataclass(frozen=True)
class PairedSharpeTest:
    """Result of :func:`paired_sharpe_test`; Sharpe figures **annualised**.

    ``difference = sharpe_a - sharpe_b``; ``ci_low``/``ci_high`` its percentile bootstrap CI at
    level ``1 - alpha``; ``pvalue`` two-sided for H0: equal Sharpe ratios, from the studentised
    HAC statistic ``z = difference / se`` (:func:`sharpe_difference_hac`, ``pvalue_method``
    ``"hac_delta"``); ``se`` is the annualised HAC standard error, ``hac_lags`` the Bartlett
    lags. ``pvalue_bootstrap`` is the recentred bootstrap p-value (floor ``1/(n_boot+1)``),
    kept for comparison. ``status`` is ``"degenerate"`` when both series are constant
    (difference 0, CI (0, 0), p-values 1): no bootstrap is run.
    """

    difference: float
    ci_low: float
    ci_high: float
    pvalue: float
    sharpe_a: float
    sharpe_b: float
    periods_per_year: float
    n_obs: int
    n_boot: int
    alpha: float
    block_length: int
    block_length_auto: bool
    seed: int
    degenerate_a: bool
    degenerate_b: bool
    status: str
    se: float = 0.0
    z: float = 0.0
    hac_lags: int = 0
    pvalue_bootstrap: float = 1.0
    pvalue_method: str = "hac_delta"
    pvalue_hac: float = 1.0
    pvalue_studentized_bootstrap: float | None = None
    confirm_n_boot: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _aligned(returns_a: object, returns_b: object) -> tuple[np.ndarray, np.ndarray]:
    """Both series as arrays on common dates; Series must share the same index exactly."""
    if isinstance(returns_a, pd.Series) and isinstance(returns_b, pd.Series):
        if not returns_a.index.equals(returns_b.index):
            missing = returns_a.index.symmetric_difference(returns_b.index)
            first = missing[0] if len(missing) else "order"
            raise DataError(
                f"returns_a/returns_b: dates differ (first mismatch {first!r}); "
                "align them on common dates first"
            )
    a = as_series_1d(returns_a, "returns_a")
    b = as_series_1d(returns_b, "returns_b")
    if a.size != b.size:
        raise DataError(f"returns_a/returns_b: lengths differ ({a.size} vs {b.size})")
    return a, b


def newey_west_lags(n_obs: int) -> int:
    """Bartlett-kernel lag count ``floor(4 (T / 100)^(2/9))`` (Newey & West 1994's rule)."""
    return int(math.floor(4.0 * (n_obs / 100.0) ** (2.0 / 9.0)))


def hac_covariance(y: np.ndarray, lags: int) -> np.ndarray:
    """Newey-West (Bartlett kernel) long-run covariance of the columns of ``y`` (T x k).

    ``Psi = G0 + sum_{j=1..L} (1 - j/(L+1)) (Gj + Gj')`` with ``Gj = sum_t y_t y_{t-j}' / T`` of
    the column-demeaned ``y`` (the same estimator as statsmodels' ``S_hac_simple``).
    """
    d = y - y.mean(axis=0)
    t = d.shape[0]
    psi = d.T @ d / t
    for j in range(1, lags + 1):
        g = d[j:].T @ d[:-j] / t
        psi += (1.0 - j / (lags + 1.0)) * (g + g.T)
    return psi


def sharpe_difference_hac(a: np.ndarray, b: np.ndarray,
                          lags: int | None = None) -> tuple[float, float, float, float, int]:
    """Ledoit & Wolf (2008) HAC test of ``SR_a - SR_b`` (per-period Sharpes).

    Delta method on the moments ``v = (mu_a, mu_b, g_a, g_b)`` (``g`` the uncentred second
    moment): ``SR = mu / sqrt(g - mu^2)``, gradient ``(g_a/s_a^3, -g_b/s_b^3, -mu_a/(2 s_a^3),
    mu_b/(2 s_b^3))`` with ``s^2 = g - mu^2``, and ``se = sqrt(grad' Psi grad / T)`` with Psi the
    Newey-West covariance (``lags=None``: :func:`newey_west_lags`). The Sharpe here uses the
    population std (ddof 0), as in the paper; the difference to ddof 1 is O(1/T) and only the
    standard error is taken from here. A constant series has Sharpe 0 by the package rule and
    contributes no sampling variance (its gradient is 0). Returns ``(difference, se, z, p, lags)``
    with a two-sided normal p-value; ``se == 0`` gives ``z = 0, p = 1`` when the difference is 0.
    """
    pair = np.column_stack([a, b]).astype(np.float64)
    t = pair.shape[0]
    L = newey_west_lags(t) if lags is None else int(lags)
    mu = pair.mean(axis=0)
    g = (pair * pair).mean(axis=0)
    s2 = np.maximum(g - mu * mu, 0.0)
    deg = np.ptp(pair, axis=0) == 0.0
    safe = np.where(deg | (s2 <= 0.0), 1.0, s2)
    s3 = safe ** 1.5
    live = ~(deg | (s2 <= 0.0))
    grad = np.array([g[0] / s3[0] * live[0], -g[1] / s3[1] * live[1],
                     -mu[0] / (2.0 * s3[0]) * live[0], mu[1] / (2.0 * s3[1]) * live[1]])
    y = np.column_stack([pair, pair * pair])
    psi = hac_covariance(y, L)
    var = float(grad @ psi @ grad) / t
    sr_a, sr_b = (float(sharpe_per_period(pair[:, i])[0]) for i in (0, 1))
    diff = sr_a - sr_b
    se = math.sqrt(var) if var > 0.0 else 0.0
    if se == 0.0:
        return diff, 0.0, 0.0, 1.0 if diff == 0.0 else 0.0, L
    z = diff / se
    return diff, se, z, float(2.0 * norm.sf(abs(z))), L


def _diff_and_grad(mu: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sharpe difference ``SR_a - SR_b`` (population std, as in the paper) and its gradient (R x 4)
    with respect to ``(mu_a, mu_b, g_a, g_b)`` from R x 2 means ``mu`` and uncentred second moments
    ``g``; a column without variance has Sharpe 0 and gradient 0 (package rule)."""
    s2 = g - mu * mu
    live = s2 > 0.0
    safe = np.where(live, s2, 1.0)
    s3 = safe ** 1.5
    sr = np.where(live, mu / np.sqrt(safe), 0.0)
    grad = np.stack([g[:, 0] / s3[:, 0] * live[:, 0], -g[:, 1] / s3[:, 1] * live[:, 1],
                     -mu[:, 0] / (2.0 * s3[:, 0]) * live[:, 0], mu[:, 1] / (2.0 * s3[:, 1]) * live[:, 1]],
                    axis=1)
    return sr[:, 0] - sr[:, 1], grad


def studentized_bootstrap_pvalue(a: np.ndarray, b: np.ndarray, n_boot: int, seed: int,
                                 block_length: int | None = None, chunk: int = 512) -> tuple[float, int]:
    """Ledoit & Wolf (2008, section 3.2) studentised circular block bootstrap p-value of
    H0: ``SR_a = SR_b``.

    ``l = T // b`` blocks of length ``b`` (``block_length``; None: the larger of the two columns'
    :func:`auto_block_length`, floor 2), start points uniform on the circle. The statistic
    ``|d| / se`` (``se`` the HAC standard error of :func:`sharpe_difference_hac`) is compared with
    ``|d* - d| / se*``, ``se*`` from the replicate's block sums, ``Psi* = (1/l) sum_j zeta_j zeta_j'``,
    ``zeta_j = b^(-1/2) sum_{t in block j} (y*_t - ybar*)`` (LW 2008, eq. 9), with
    ``y = (r_a, r_b, r_a^2, r_b^2)``. Every replicate is a set of whole blocks, so it is computed
    from the precomputed circular block sums of ``y`` (exact, not an approximation; the loop
    version in the tests is the oracle). ``p = (1 + #{t* >= t}) / (n_boot + 1)``: its smallest
    value is ``1 / (n_boot + 1)``, so callers choose ``n_boot`` from the number of tests
    (:func:`boot_size_for`). Returns ``(p, b)``.
    """
    from audit.statistics.bootmoments import block_bootstrap_parts  # numba: imported when first needed

    pair = np.column_stack([a, b]).astype(np.float64)
    t_obs = pair.shape[0]
    bl = max(2, auto_block_length(pair, how="max")) if block_length is None else int(block_length)
    bl = max(1, min(bl, t_obs // 2))
    n_blocks = t_obs // bl
    mu0 = pair.mean(axis=0)[None]
    g0 = (pair * pair).mean(axis=0)[None]
    diff, _ = _diff_and_grad(mu0, g0)
    _, se, _, _, _ = sharpe_difference_hac(a, b)
    if se == 0.0:
        return 1.0, bl
    stat = abs(float(diff[0])) / se
    y4 = np.column_stack([pair, pair * pair])
    ext = np.vstack([y4, y4[: bl - 1]])
    cs = np.vstack([np.zeros((1, 4)), np.cumsum(ext, axis=0)])
    sums = cs[bl: bl + t_obs] - cs[:t_obs]  # circular block sums starting at each date
    rng = np.random.default_rng(seed)
    exceed = 0
    done = 0
    while done < n_boot:
        r = min(chunk, n_boot - done)
        # ybar = sums[ii].sum(axis=1) / (l b), zeta = (sums[ii] - b ybar) / sqrt(b), r x l x 4 (compiled)
        ybar, zeta = block_bootstrap_parts(sums, rng.integers(0, t_obs, size=(r, n_blocks)), bl)
        d_star, g_star = _diff_and_grad(ybar[:, :2], ybar[:, 2:])
        # grad' Psi grad = (1/l) sum_j (grad . zeta_j)^2
        proj = np.matmul(zeta, g_star[:, :, None])[:, :, 0]  # r x l
        var = np.mean(proj * proj, axis=1) / (n_blocks * bl)
        se_star = np.sqrt(np.maximum(var, 0.0))
        ok = se_star > 0.0
        t_star = np.where(ok, np.abs(d_star - diff[0]) / np.where(ok, se_star, 1.0), np.inf)
        exceed += int(np.sum(t_star >= stat))
        done += r
    return (1.0 + exceed) / (n_boot + 1.0), bl


def boot_sharpes(xs: np.ndarray, block_length: int, n_boot: int, seed: int) -> np.ndarray:
    """Per row ``x`` of ``xs`` (k x n): ``sharpe_per_period(x[idx], axis=1)[0]`` with
    ``idx = stationary_indices(n, block_length, n_boot, seed)`` (every row resampled with the same
    indices), bit for bit, from each replicate's sums (``audit.statistics.bootmoments``; no R x n
    index or value matrix): ``mean = s1 / n``, ``std = sqrt(s2 / (n - 1))`` as numpy's ``mean`` and
    ``std(ddof=1)`` form them, Sharpe 0 for a constant replicate. Returns k x n_boot."""
    from audit.statistics.bootmoments import stationary_moments  # numba: imported when first needed

    sums, deg = stationary_moments(xs, block_length, n_boot, seed, higher=False)
    n = xs.shape[1]
    mean = sums[:, 0] / n
    std = np.sqrt(sums[:, 1] / (n - 1))
    return np.where(deg, 0.0, mean / np.where(deg, 1.0, std))


def boot_size_for(m: int, alpha: float, floor: int = 1000) -> int:
    """Bootstrap size whose smallest p-value ``1/(n+1)`` is half of Holm's first threshold
    ``alpha / m``: ``max(floor, ceil(2 m / alpha))`` (m = 36: 1,440; m = 252: 10,080)."""
    return max(int(floor), int(math.ceil(2.0 * m / alpha)))


def paired_sharpe_test(
    returns_a: object,
    returns_b: object,
    periods_per_year: float,
    seed: int,
    n_boot: int = 1000,
    alpha: float = 0.05,
    block_length: int | None = None,
    confirm_n_boot: int | None = None,
) -> PairedSharpeTest:
    """Test of ``Sharpe(a) - Sharpe(b)``: HAC p-value, paired stationary-bootstrap CI.

    The p-value is the studentised HAC test of :func:`sharpe_difference_hac` (Ledoit & Wolf
    2008, Newey-West lags). With ``confirm_n_boot``, a HAC p-value at or below ``alpha`` is
    confirmed by the studentised circular block bootstrap of the same paper
    (:func:`studentized_bootstrap_pvalue`, ``confirm_n_boot`` draws, seed ``seed + 1``) and the
    p-value is the larger of the two (``pvalue_method`` ``"max(hac, studentized_bootstrap)"``):
    the HAC test alone is liberal in the far tail that Holm's thresholds reach (family-wise rate
    0.08 at a nominal 0.05 over 36 GARCH pairs, ``benchmarks/calibration.py``); a rejection then
    needs both. Choose ``confirm_n_boot`` from the number of tests (:func:`boot_size_for`) so that
    its floor ``1 / (n + 1)`` stays below ``alpha / m``. The CI and ``pvalue_bootstrap`` come from
    the stationary bootstrap below.

    Both series hold simple returns per period on the same dates. Each replicate resamples the
    same row indices for both (``arch`` StationaryBootstrap, ``np.random.default_rng(seed)``),
    keeping their cross-correlation and serial dependence. ``block_length=None`` takes the
    larger of the two columns' ``optimal_block_length`` ('stationary', rounded up, floor 1):
    the longer block keeps the stronger dependence.

    ``pvalue_bootstrap``: the bootstrap distribution recentred at the estimate approximates the null
    distribution, ``p = (1 + #{|d* - d| >= |d|}) / (n_boot + 1)`` (Davison & Hinkley 1997,
    eq. 4.11, the ``+1`` keeps p > 0). CI: percentile interval of ``d*``.
    Constant series get Sharpe 0 (package rule), in the estimate and in every replicate.
    """
    a, b = _aligned(returns_a, returns_b)
    ppy = check_positive(periods_per_year, "periods_per_year")
    seed = check_seed(seed)
    n_boot = check_n_boot(n_boot)
    alpha = check_alpha(alpha)
    scale = math.sqrt(ppy)
    pair = np.column_stack([a, b])
    sr, deg = sharpe_per_period(pair, axis=0)
    sr_a, sr_b = float(sr[0]) * scale, float(sr[1]) * scale
    diff = sr_a - sr_b
    if bool(deg.all()):
        return PairedSharpeTest(0.0, 0.0, 0.0, 1.0, 0.0, 0.0, ppy, int(a.size), n_boot, alpha,
                                1, block_length is None, seed, True, True, "degenerate",
                                0.0, 0.0, newey_west_lags(a.size), 1.0, "hac_delta", 1.0, None,
                                confirm_n_boot or 0)
    bl = auto_block_length(pair, how="max") if block_length is None else check_block_length(
        block_length, a.size)
    boot_a, boot_b = boot_sharpes(np.vstack([a, b]), bl, n_boot, seed)
    d_star = (boot_a - boot_b) * scale
    lo, hi = percentile_ci(d_star, alpha)
    exceed = int(np.sum(np.abs(d_star - diff) >= abs(diff)))
    p_boot = (1.0 + exceed) / (n_boot + 1.0)
    _, se, z, p_hac, lags = sharpe_difference_hac(a, b)
    pvalue, method, p_stud = p_hac, "hac_delta", None
    if confirm_n_boot is not None and p_hac <= alpha:
        p_stud, _ = studentized_bootstrap_pvalue(a, b, check_n_boot(confirm_n_boot, "confirm_n_boot"),
                                                 seed + 1)
        pvalue, method = max(p_hac, p_stud), "max(hac, studentized_bootstrap)"
    return PairedSharpeTest(diff, lo, hi, pvalue, sr_a, sr_b, ppy, int(a.size), n_boot, alpha,
                            bl, block_length is None, seed, bool(deg[0]), bool(deg[1]), "ok",
                            se * scale, z, lags, p_boot, method, p_hac, p_stud,
                            confirm_n_boot or 0)


@dataclass(frozen=True)
class HolmResult:
    """Holm-adjusted p-values and rejections, indexed like the input (a range if unlabelled)."""

    adjusted: pd.Series
    reject: pd.Series
    alpha: float


def holm_correction(pvalues: object, alpha: float = 0.05) -> HolmResult:
    """Holm (1979) step-down adjustment controlling the family-wise error rate at ``alpha``.

    With the m p-values sorted ascending ``p_(1) <= ... <= p_(m)``, the adjusted value is
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``; hypotheses are rejected step-down while
    ``p_(j) <= alpha / (m - j + 1)`` (equivalently adjusted p-value ``<= alpha``; the
    comparison is done in the procedural form, as statsmodels' ``multipletests`` does, so both
    agree at float boundaries). Ties keep input order (stable sort), which changes no result.
    """
    alpha = check_alpha(alpha)
    index = pvalues.index if isinstance(pvalues, pd.Series) else None
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise DataError(f"pvalues: expected a non-empty 1-D array, got shape {p.shape}")
    bad = ~np.isfinite(p) | (p < 0.0) | (p > 1.0)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        where = index[pos] if index is not None else pos
        raise DataError(f"pvalues: value {p[pos]!r} at {where!r} is not in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adj_sorted = np.maximum.accumulate(stepped)
    adjusted = np.empty(m)
    adjusted[order] = adj_sorted
    # Rejections by the procedure itself (reject while p_(j) <= alpha / (m - j + 1)), the
    # same float comparison as statsmodels; equal to ``adjusted <= alpha`` in exact arithmetic.
    passes = p[order] <= alpha / (m - np.arange(m))
    n_rej = m if passes.all() else int(np.argmin(passes))
    reject = np.zeros(m, dtype=bool)
    reject[order[:n_rej]] = True
    idx = index if index is not None else pd.RangeIndex(m)
    adj = pd.Series(adjusted, index=idx, name="pvalue_holm")
    return HolmResult(adjusted=adj, reject=pd.Series(reject, index=idx, name="reject"),
                      alpha=alpha)
