"""PSR, DSR, expected maximum Sharpe and the effective number of trials."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from audit.statistics import (
    deflated_sharpe, effective_trials, expected_max_sharpe, probabilistic_sharpe,
    psr_from_moments,
)
from contracts.errors import ConfigError, DataError


def test_psr_kernel_hand_calculation() -> None:
    # Hand calculation (formula of Bailey & Lopez de Prado 2012, eq. for PSR):
    # SR = 0.2, SR* = 0.05, n = 60, g3 = -1, g4 = 6:
    # 1 - g3 SR + (g4 - 1)/4 SR^2 = 1 + 0.2 + 1.25 * 0.04 = 1.25 ; sqrt = 1.1180340
    # z = 0.15 * sqrt(59) / 1.1180340 = 0.15 * 7.6811457 / 1.1180340 = 1.0305338
    # Phi(1.0305338) = 0.84862 (normal table: Phi(1.03) = 0.84849, Phi(1.04) = 0.85083).
    psr, z, status = psr_from_moments(0.2, 60, -1.0, 6.0, 0.05)
    assert z == pytest.approx(1.0305338, abs=1e-6)  # 7 hand-computed digits
    assert psr == pytest.approx(0.84862, abs=1e-5)  # 5-digit table value
    assert status == "ok"


def test_psr_normal_case_matches_classic_sharpe_test() -> None:
    # With g3 = 0, g4 = 3 and SR* = 0 the PSR is Phi(SR sqrt(n-1) / sqrt(1 + SR^2 / 2)),
    # the Lo (2002) iid-normal standard error of the Sharpe ratio.
    sr, n = 0.1, 100
    expected = stats.norm.cdf(sr * math.sqrt(n - 1) / math.sqrt(1 + sr * sr / 2))
    assert psr_from_moments(sr, n, 0.0, 3.0)[0] == pytest.approx(expected, rel=1e-14)


def test_probabilistic_sharpe_from_returns_uses_scipy_moments() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_t(df=5, size=800) * 0.01 + 0.0008
    res = probabilistic_sharpe(x, sr_benchmark=0.01)
    g3 = stats.skew(x)  # reference moments (biased estimators, non-excess kurtosis)
    g4 = stats.kurtosis(x, fisher=False)
    assert res.skewness == pytest.approx(g3, rel=1e-10)
    assert res.kurtosis == pytest.approx(g4, rel=1e-10)
    sr = x.mean() / x.std(ddof=1)
    z = (sr - 0.01) * math.sqrt(x.size - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    assert res.psr == pytest.approx(stats.norm.cdf(z), rel=1e-10)
    assert res.sharpe_per_period == pytest.approx(sr, rel=1e-12)


def test_psr_constant_series_rule() -> None:
    res = probabilistic_sharpe(np.zeros(100))
    assert res.psr == 0.0 and res.degenerate and res.status == "degenerate"
    assert res.z is None


def test_psr_zero_sampling_variance_rule() -> None:
    # g4 = 1 + g3^2 (any two-point law) and SR = 2 / g3 make the variance term exactly 0:
    # 1 - 2*1 + (2 - 1)/4 * 4 = 0 with g3 = 1, g4 = 2, SR = 2.
    assert psr_from_moments(2.0, 50, 1.0, 2.0, 0.0) == (1.0, None, "zero_sr_variance")
    assert psr_from_moments(2.0, 50, 1.0, 2.0, 3.0)[0] == 0.0


def test_deflated_sharpe_paper_example() -> None:
    # Bailey & Lopez de Prado (2014), "The Deflated Sharpe Ratio", JPM 40(5), numerical
    # example: annualised SR 2.5 over T = 1250 daily obs (5 years of 250 days), N = 100 trials,
    # V[SR_n] = 1/2 (annualised), skewness -3, kurtosis 10. The paper reports the expected max
    # (non-annualised) SR0 ~ 0.1132 and DSR ~ 0.9004 (4 decimals given -> abs tolerance 5e-5).
    sr0 = expected_max_sharpe(100, 0.5 / 250)  # per-period variance = annual / 250
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr, _, _ = psr_from_moments(2.5 / math.sqrt(250), 1250, -3.0, 10.0, sr0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


@pytest.mark.parametrize(("n", "exact"), [(10, 1.538753), (100, 2.507594), (1000, 3.241436)])
def test_expected_max_close_to_exact_normal_order_statistic(n: int, exact: float) -> None:
    # Exact E[max of n iid N(0,1)] from tables of normal order statistics (Harter 1961,
    # Biometrika 48). The DSR formula is an extreme-value approximation: measured within 2.5%
    # (+2.3% at n=10, +0.9% at 100, +0.4% at 1000), so 3% is the bound.
    approx = expected_max_sharpe(n, 1.0)
    assert approx == pytest.approx(exact, rel=0.03)
    assert expected_max_sharpe(n, 4.0) == pytest.approx(2.0 * approx, rel=1e-14)  # sqrt(V)


def test_expected_max_edge_rules() -> None:
    assert expected_max_sharpe(1, 0.5) == 0.0  # no selection
    assert expected_max_sharpe(1.1, 0.5) == 0.0  # approximation negative -> floored at 0
    assert expected_max_sharpe(50, 0.0) == 0.0
    with pytest.raises(ConfigError):
        expected_max_sharpe(0.5, 1.0)
    with pytest.raises(ConfigError):
        expected_max_sharpe(10, -1.0)


def _orthogonal_clusters(k: int, m: int, t: int = 400, seed: int = 0) -> np.ndarray:
    """k clusters of m trials: within a cluster positive multiples of one series (corr 1);
    across clusters exactly uncorrelated in sample (centred orthogonal columns by QR)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((t, k))
    z -= z.mean(axis=0)
    q, _ = np.linalg.qr(z)
    base = q * 0.01 + 0.0005
    scales = 1.0 + np.arange(m) * 0.1
    return np.concatenate([base[:, [j]] * scales for j in range(k)], axis=1)


def test_effective_trials_participation_on_clusters_is_k() -> None:
    # 10 clusters of 10 perfectly correlated trials, exactly uncorrelated across: without the
    # debias N_eff = 100^2 / (100 + 10 * 10 * 9) = 10 exactly.
    m = _orthogonal_clusters(10, 10)
    res = effective_trials(m, debias=False)
    assert res.n_effective == pytest.approx(10.0, rel=1e-9)  # corrcoef rounding only
    assert res.n_trials == 100 and res.method == "participation"
    # The debias keeps within-cluster r^2 = 1 and turns each of the 9000 across-cluster
    # r^2 = 0 into -1/(T-1) = -1/399 (a sample r of exactly 0 is what this artificial
    # construction gives, noise would not): 100^2 / (100 + 900 - 9000/399) = 10.2308.
    deb = effective_trials(m)
    assert deb.n_effective == pytest.approx(1e4 / (1000 - 9000 / 399), rel=1e-9)


def test_effective_trials_average_correlation_formula() -> None:
    # Same matrix: rho_bar = 10 * 10 * 9 / (100 * 99) = 0.0909091;
    # N_eff = rho_bar + (1 - rho_bar) * 100 = 91.0 (hand calculation).
    res = effective_trials(_orthogonal_clusters(10, 10), method="average_correlation")
    assert res.average_correlation == pytest.approx(900 / 9900, rel=1e-9)
    assert res.n_effective == pytest.approx(91.0, rel=1e-9)


def test_effective_trials_independent_noise() -> None:
    # 50 iid trials on 1000 dates. Debiased: ~50 (over 30 seeds mean 49.97, sd 0.04; bound 0.5).
    # Raw participation ratio: ~ N / (1 + (N-1)/(T-1)) = 47.66 (sd 0.08 over seeds; bound 0.5).
    m = np.random.default_rng(9).normal(0.0, 0.01, (1000, 50))
    assert effective_trials(m).n_effective == pytest.approx(50.0, abs=0.5)
    assert effective_trials(m, debias=False).n_effective == pytest.approx(
        50 / (1 + 49 / 999), abs=0.5)


def test_effective_trials_constant_columns_count_once() -> None:
    m = _orthogonal_clusters(3, 1)
    m = np.column_stack([m, np.zeros(m.shape[0]), np.full(m.shape[0], 0.001)])
    res = effective_trials(m)
    assert res.n_degenerate == 2
    assert res.n_effective == pytest.approx(4.0, rel=1e-9)  # 3 orthogonal + 1 flat group


def test_effective_trials_bad_method() -> None:
    with pytest.raises(ConfigError, match="effective_method"):
        effective_trials(np.random.default_rng(0).normal(size=(50, 3)), method="eigen")


def test_deflated_sharpe_from_trial_matrix() -> None:
    rng = np.random.default_rng(21)
    trials = rng.normal(0.0, 0.01, (750, 40))
    trials[:, 7] += 0.002  # one trial with a real edge (per-period SR ~ 0.2)
    res = deflated_sharpe(trials[:, 7], trials)
    srs = trials.mean(axis=0) / trials.std(axis=0, ddof=1)
    assert res.sr_variance == pytest.approx(np.var(srs, ddof=1), rel=1e-10)
    # headline: the raw count with the all-trials variance (Bailey & Lopez de Prado as written)
    assert res.method == "raw" and res.n_trials == 40 and res.n_trials_raw == 40
    assert res.sr0 == pytest.approx(expected_max_sharpe(40, res.sr_variance))
    expected = probabilistic_sharpe(trials[:, 7], res.sr0).psr
    assert res.dsr == pytest.approx(expected, rel=1e-12)
    assert res.dsr_raw == res.dsr == res.dsr_all_trials
    # the participation reading (old headline) has a lower hurdle for the same variance
    part = deflated_sharpe(trials[:, 7], trials, method="participation")
    eff = effective_trials(trials).n_effective
    assert part.n_trials == pytest.approx(eff) and part.sr0 <= res.sr0 + 1e-15
    assert res.dsr > 0.9  # SR ~0.2 per day against SR0 ~0.09 over 750 days
    # an explicit count overrides the effective one
    given = deflated_sharpe(trials[:, 7], trials, n_trials=1000)
    assert given.trials_method == "given" and given.sr0 > res.sr0 and given.dsr < res.dsr


def test_deflated_sharpe_needs_trials_information() -> None:
    x = np.random.default_rng(0).normal(0.001, 0.01, 100)
    with pytest.raises(ConfigError):
        deflated_sharpe(x, n_trials=10)
    res = deflated_sharpe(x, n_trials=10, sr_variance=0.001)
    assert res.trials_method == "given" and res.n_trials_raw == 10


def test_deflated_sharpe_degenerate_returns() -> None:
    res = deflated_sharpe(np.zeros(200), n_trials=10, sr_variance=0.001)
    assert res.dsr == 0.0 and res.degenerate and res.status == "degenerate"


def test_trial_matrix_with_nan_names_column() -> None:
    m = pd.DataFrame(np.random.default_rng(0).normal(size=(20, 3)), columns=["a", "b", "c"])
    m.iloc[3, 1] = np.nan
    with pytest.raises(DataError, match="'b'"):
        effective_trials(m)
