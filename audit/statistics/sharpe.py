"""Annualised Sharpe ratio with a stationary-bootstrap percentile confidence interval."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass


from audit.statistics._common import (
    as_series_1d, auto_block_length, check_alpha, check_block_length, check_n_boot,
    check_positive, check_seed, percentile_ci, sharpe_per_period, stationary_indices,
)

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

    Returns
    -------
    SharpeCI
        Annualised Sharpe ``mean / std(ddof=1) * sqrt(periods_per_year)`` and its CI.

    Zero-variance rule: a constant series (all returns equal, e.g. liquidated early with
    constant 0 returns) gets Sharpe 0.0, CI (0.0, 0.0), ``degenerate=True``, no bootstrap.
    Bootstrap replicates that are constant get Sharpe 0 by the same rule (counted).
    """
    x = as_series_1d(returns, "returns")
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
            degenerate_draws=0, status=STATUS_DEGENERATE,
        )
    b = auto_block_length(x) if block_length is None else block_length
    idx = stationary_indices(x.size, b, n_boot, seed)
    boot_sr, boot_deg = sharpe_per_period(x[idx], axis=1)
    lo, hi = percentile_ci(boot_sr * scale, alpha)
    return SharpeCI(
        sharpe=float(sr) * scale, ci_low=lo, ci_high=hi, sharpe_per_period=float(sr),
        periods_per_year=ppy, n_obs=int(x.size), n_boot=n_boot, alpha=alpha, block_length=b,
        block_length_auto=block_length is None, seed=seed, degenerate=False,
        degenerate_draws=int(boot_deg.sum()), status=STATUS_OK,
    )
