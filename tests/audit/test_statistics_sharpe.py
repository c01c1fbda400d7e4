"""sharpe_ci: point estimate, stationary-bootstrap CI, zero-variance rule, seeds, bad input."""
from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from arch.bootstrap import StationaryBootstrap, optimal_block_length

from audit.statistics import sharpe_ci
from contracts.errors import ConfigError, DataError

PPY = 365.0


def _ar1(seed: int, n: int = 600, phi: float = 0.3) -> np.ndarray:
    """Serially dependent daily returns (AR(1)), so the automatic block length is > 1."""
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0004, 0.01, n)
    x = np.empty(n)
    x[0] = e[0]
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


def test_point_estimate_matches_empyrical() -> None:
    # Reference: empyrical-reloaded's sharpe_ratio (rf 0, ddof 1, sqrt(annualization)).
    x = _ar1(1)
    res = sharpe_ci(x, PPY, seed=7, n_boot=50)  # n_boot irrelevant to the point estimate
    ref = empyrical.sharpe_ratio(x, risk_free=0.0, annualization=PPY)
    assert res.sharpe == pytest.approx(ref, rel=1e-12)  # same formula, float summation order
    assert res.sharpe_per_period * math.sqrt(PPY) == pytest.approx(res.sharpe, rel=1e-14)
    assert not res.degenerate and res.status == "ok"


def test_ci_matches_arch_percentile_interval_with_same_seed() -> None:
    # Independent reference: arch's own StationaryBootstrap.conf_int(method="percentile") on the
    # same data, block length and seeded generator draws the same indices; the two intervals
    # must agree up to float rounding of the Sharpe of each replicate.
    x = _ar1(2)
    res = sharpe_ci(x, PPY, seed=11, n_boot=300, alpha=0.1, method="percentile")
    b = max(1, math.ceil(float(optimal_block_length(x)["stationary"].iloc[0])))
    assert res.block_length == b and res.block_length_auto
    assert b > 1  # AR(1) with phi 0.3 must give blocks longer than one day

    def ann_sharpe(y: np.ndarray) -> float:
        return float(y.mean() / y.std(ddof=1) * math.sqrt(PPY))

    bs = StationaryBootstrap(b, x, seed=np.random.default_rng(11))
    ci = bs.conf_int(ann_sharpe, reps=300, method="percentile", size=0.9)
    assert res.ci_low == pytest.approx(ci[0, 0], rel=1e-10)
    assert res.ci_high == pytest.approx(ci[1, 0], rel=1e-10)
    assert res.ci_low < res.sharpe < res.ci_high


def test_studentized_ci_matches_textbook_bootstrap_t_on_arch_draws() -> None:
    # Reference: the bootstrap-t interval of Efron & Tibshirani (1993, eq. 12.22),
    # [SR - q(1-a/2) se, SR - q(a/2) se] with t* = (SR* - SR) / se*, computed here from arch's
    # own StationaryBootstrap replicates (same seed and block length) and the Mertens standard
    # error written out from scipy's moments. (arch's conf_int(method="studentized") scales
    # the quantiles by the bootstrap replicates' std rather than the sample's se, so it is a
    # different interval.) Agreement up to float rounding.
    x = _ar1(2)
    res = sharpe_ci(x, PPY, seed=11, n_boot=300, alpha=0.1)
    assert res.method == "studentized"

    def sr_se(y: np.ndarray) -> np.ndarray:
        sr = y.mean() / y.std(ddof=1)
        g3 = float(stats.skew(y))
        g4 = float(stats.kurtosis(y, fisher=False))
        return np.array([sr, math.sqrt((1 - g3 * sr + (g4 - 1) / 4 * sr**2) / (y.size - 1))])

    bs = StationaryBootstrap(res.block_length, x, seed=np.random.default_rng(11))
    draws = bs.apply(sr_se, reps=300)
    sr, se = sr_se(x)
    t_star = (draws[:, 0] - sr) / draws[:, 1]
    q_lo, q_hi = np.quantile(t_star, [0.05, 0.95])
    assert res.ci_low == pytest.approx((sr - q_hi * se) * math.sqrt(PPY), rel=1e-9)
    assert res.ci_high == pytest.approx((sr - q_lo * se) * math.sqrt(PPY), rel=1e-9)


def test_explicit_block_length_is_used() -> None:
    x = _ar1(3)
    res = sharpe_ci(x, PPY, seed=1, n_boot=50, block_length=5)
    assert res.block_length == 5 and not res.block_length_auto


def test_same_seed_same_result_other_seed_differs() -> None:
    x = _ar1(4)
    a = sharpe_ci(x, PPY, seed=123, n_boot=200)
    b = sharpe_ci(x, PPY, seed=123, n_boot=200)
    c = sharpe_ci(x, PPY, seed=124, n_boot=200)
    assert a == b
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)


@pytest.mark.parametrize("value", [0.0, 0.001, -0.02])
def test_constant_series_is_degenerate_not_nan(value: float) -> None:
    # Zero-variance rule: constant returns (liquidated cell at 0, flat line) -> Sharpe 0,
    # CI (0, 0), degenerate. 0.001 checks the exact max == min test: np.std of that constant
    # is ~1e-19, not 0, and a tolerance-free mean/std would give ~1e16.
    res = sharpe_ci(np.full(250, value), PPY, seed=1, n_boot=100)
    assert (res.sharpe, res.ci_low, res.ci_high) == (0.0, 0.0, 0.0)
    assert res.degenerate and res.status == "degenerate"


def test_mostly_flat_series_counts_constant_draws() -> None:
    # A cell liquidated after 5 bars: the series is not constant, but many bootstrap
    # replicates only see the flat tail; each gets Sharpe 0 (counted), the CI stays finite.
    x = np.zeros(60)
    x[:5] = [0.01, -0.02, 0.015, -0.01, 0.02]
    res = sharpe_ci(x, PPY, seed=5, n_boot=200, block_length=20)
    assert not res.degenerate
    assert res.degenerate_draws > 0
    assert math.isfinite(res.ci_low) and math.isfinite(res.ci_high)


def test_series_with_index_and_nan_names_the_date() -> None:
    idx = pd.date_range("2024-01-01", periods=10, freq="D", tz="UTC")
    s = pd.Series(np.linspace(-0.01, 0.01, 10), index=idx)
    s.iloc[4] = np.nan
    with pytest.raises(DataError, match="2024-01-05"):
        sharpe_ci(s, PPY, seed=1)


@pytest.mark.parametrize(
    "kwargs",
    [{"periods_per_year": 0.0}, {"periods_per_year": "daily"}, {"seed": -1}, {"seed": 1.0},
     {"n_boot": 5}, {"n_boot": 100.0}, {"alpha": 1.5}, {"alpha": "x"}, {"block_length": 0},
     {"block_length": 2.5}, {"block_length": 51}],
)
def test_bad_config_raises_config_error(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"periods_per_year": PPY, "seed": 1, "n_boot": 20}
    args.update(kwargs)
    with pytest.raises(ConfigError):
        sharpe_ci(_ar1(5, n=50), **args)  # type: ignore[arg-type]


def test_short_series_gets_block_length_one() -> None:
    # arch's estimator scans ceil(sqrt(n)) + 5 lags and fails below ~12 observations; the rule
    # gives block length 1 there instead of an exception.
    x = np.array([0.01, -0.02, 0.015, 0.0, 0.03, -0.01, 0.02, -0.005])
    res = sharpe_ci(x, PPY, seed=2, n_boot=50)
    assert res.block_length == 1 and math.isfinite(res.ci_low)


def test_too_short_raises_data_error() -> None:
    with pytest.raises(DataError, match="returns"):
        sharpe_ci([0.01, 0.02], PPY, seed=1)


def test_ci_coverage_on_iid_normal() -> None:
    # ~1.3 s. 200 seeded iid N(mu, sigma) samples of 500 days with known true Sharpe; the 90%
    # percentile CI must cover it 90% +/- 3 binomial sd (sd = sqrt(.9*.1/200) = 0.021).
    mu, sigma = 0.001, 0.01
    true_sr = mu / sigma * math.sqrt(PPY)
    hits = 0
    for k in range(200):
        x = np.random.default_rng(1000 + k).normal(mu, sigma, 500)
        r = sharpe_ci(x, PPY, seed=k, n_boot=300, alpha=0.1, block_length=1)
        hits += r.ci_low <= true_sr <= r.ci_high
    assert abs(hits / 200 - 0.9) <= 3 * math.sqrt(0.9 * 0.1 / 200)
