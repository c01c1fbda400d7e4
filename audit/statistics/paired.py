"""Paired block-bootstrap test of a Sharpe difference, and Holm's step-down correction."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from audit.statistics._common import (
    as_series_1d, auto_block_length, check_alpha, check_block_length, check_n_boot,
    check_positive, check_seed, percentile_ci, sharpe_per_period, stationary_indices,
)
from contracts.errors import DataError


@dataclass(frozen=True)
class PairedSharpeTest:
    """Result of :func:`paired_sharpe_test`; Sharpe figures **annualised**.

    ``difference = sharpe_a - sharpe_b``; ``ci_low``/``ci_high`` its percentile bootstrap CI at
    level ``1 - alpha``; ``pvalue`` two-sided for H0: equal Sharpe ratios.
    ``status`` is ``"degenerate"`` when both series are constant (difference 0, CI (0, 0),
    p-value 1): no bootstrap is run.
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


def paired_sharpe_test(
    returns_a: object,
    returns_b: object,
    periods_per_year: float,
    seed: int,
    n_boot: int = 1000,
    alpha: float = 0.05,
    block_length: int | None = None,
) -> PairedSharpeTest:
    """Test of ``Sharpe(a) - Sharpe(b)`` by a paired stationary bootstrap of the date rows.

    Both series hold simple returns per period on the same dates. Each replicate resamples the
    same row indices for both (``arch`` StationaryBootstrap, ``np.random.default_rng(seed)``),
    keeping their cross-correlation and serial dependence. ``block_length=None`` takes the
    larger of the two columns' ``optimal_block_length`` ('stationary', rounded up, floor 1):
    the longer block keeps the stronger dependence.

    p-value: the bootstrap distribution recentred at the estimate approximates the null
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
                                1, block_length is None, seed, True, True, "degenerate")
    bl = auto_block_length(pair, how="max") if block_length is None else check_block_length(
        block_length, a.size)
    idx = stationary_indices(a.size, bl, n_boot, seed)
    boot_a, _ = sharpe_per_period(a[idx], axis=1)
    boot_b, _ = sharpe_per_period(b[idx], axis=1)
    d_star = (boot_a - boot_b) * scale
    lo, hi = percentile_ci(d_star, alpha)
    exceed = int(np.sum(np.abs(d_star - diff) >= abs(diff)))
    pvalue = (1.0 + exceed) / (n_boot + 1.0)
    return PairedSharpeTest(diff, lo, hi, pvalue, sr_a, sr_b, ppy, int(a.size), n_boot, alpha,
                            bl, block_length is None, seed, bool(deg[0]), bool(deg[1]), "ok")


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
