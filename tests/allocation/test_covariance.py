"""Covariance estimation, betas and ex-ante volatility against independent references."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.covariance import ledoit_wolf

from allocation import estimate_covariance, ex_ante_volatility
from allocation.covariance import (VARIANCE_FLOOR, atom_betas, clean_returns, factor,
                                   ledoit_wolf_covariance)
from contracts.errors import DataError


def _ridge(cov: np.ndarray, s: float) -> np.ndarray:
    """Reference ridge written out: corr -> (1-s) corr + s I -> cov with the same variances."""
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    return ((1 - s) * corr + s * np.eye(len(sd))) * np.outer(sd, sd)


def test_ledoit_wolf_then_ridge_matches_sklearn_function() -> None:
    x = np.random.default_rng(1).normal(0, 0.02, size=(200, 6))
    ref = _ridge(ledoit_wolf(x)[0], 0.1)  # sklearn's function form, independent of the estimator class
    # tolerance: same float operations up to summation order
    np.testing.assert_allclose(estimate_covariance(x, 0.1), ref, rtol=1e-12, atol=1e-18)


def test_sample_option_is_numpy_cov_and_zero_shrinkage_is_identity_map() -> None:
    x = np.random.default_rng(2).normal(0, 0.01, size=(50, 4))
    np.testing.assert_allclose(estimate_covariance(x, 0.0, "sample"), np.cov(x, rowvar=False),
                               rtol=1e-12)


def test_t_smaller_than_n_gives_positive_definite_covariance() -> None:
    x = np.random.default_rng(3).normal(0, 0.02, size=(30, 80))
    cov = estimate_covariance(x, 0.0)
    assert np.linalg.eigvalsh(cov).min() > 0
    # the sample covariance is singular there; the ridge makes it positive definite
    assert np.linalg.eigvalsh(estimate_covariance(x, 0.0, "sample")).min() < 1e-15
    assert np.linalg.eigvalsh(estimate_covariance(x, 0.05, "sample")).min() > 0


def test_nan_is_zero_for_estimation_and_constant_column_is_floored() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(0, 0.02, size=(100, 3))
    x[::3, 1] = np.nan
    filled = np.nan_to_num(x)
    np.testing.assert_allclose(estimate_covariance(x, 0.0, "sample"), np.cov(filled, rowvar=False))
    x[:, 2] = np.nan  # an all-NaN column is a constant 0 stream
    cov = estimate_covariance(x, 0.0, "sample")
    assert cov[2, 2] == VARIANCE_FLOOR and np.all(cov[2, :2] == 0)


def test_inf_raises_data_error_naming_column_and_date() -> None:
    idx = pd.date_range("2024-01-01", periods=5, tz="UTC")
    df = pd.DataFrame({"a": [0.0, 0.1, np.inf, 0.0, 0.1], "b": [0.0] * 5}, index=idx)
    with pytest.raises(DataError, match="'a'.*2024-01-03"):
        estimate_covariance(df, 0.0)


def test_ex_ante_volatility_literal() -> None:
    # w = (0.5, 0.5), S = diag(1e-4, 4e-4): w'Sw = 1.25e-4; * 365 = 0.045625; sqrt = 0.213600...
    vol = ex_ante_volatility(np.array([0.5, 0.5]), np.diag([1e-4, 4e-4]), 365)
    assert vol == pytest.approx(np.sqrt(0.045625), rel=1e-12)


def test_betas_match_scipy_linregress() -> None:
    rng = np.random.default_rng(5)
    b = rng.normal(0, 0.01, 120)
    a = np.column_stack([0.7 * b + rng.normal(0, 0.01, 120), -1.2 * b + rng.normal(0, 0.005, 120)])
    idx = pd.date_range("2024-01-01", periods=120, tz="UTC")
    betas = atom_betas(pd.DataFrame(a, index=idx), pd.Series(b, index=idx))
    for j in range(2):
        assert betas[j] == pytest.approx(stats.linregress(b, a[:, j]).slope, rel=1e-10)


def test_factor_reproduces_singular_covariance() -> None:
    x = np.random.default_rng(6).normal(size=(5, 8))
    s = np.cov(x, rowvar=False)
    g = factor(s)
    np.testing.assert_allclose(g.T @ g, s, atol=1e-12)


@pytest.mark.parametrize("t, n", [(252, 20), (30, 80), (5, 3), (2, 2), (200, 1), (100, 300)])
def test_ledoit_wolf_kernel_matches_sklearn(t: int, n: int) -> None:
    # ledoit_wolf_covariance calls the kernels LedoitWolf.fit calls, on the same centred data, so the
    # two are equal up to float noise (1e-12 relative has room to spare); a constant column when n > 1
    rng = np.random.default_rng(t * 1000 + n)
    x = rng.normal(0, 0.02, size=(t, n))
    if n > 1:
        x[:, 1] = 0.003
    ref = ledoit_wolf(x)[0]
    np.testing.assert_allclose(ledoit_wolf_covariance(x), ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("value", [0.0, 0.5, 0.01])
def test_ledoit_wolf_kernel_constant_panel_matches_sklearn(value: float) -> None:
    # exactly 0 when the column means are exact (0, 0.5); ~1e-36 for 0.01 (its mean is not exact);
    # sklearn's own kernels on the same centred data, so equal
    x = np.full((10, 4), value)
    np.testing.assert_array_equal(ledoit_wolf_covariance(x), ledoit_wolf(x)[0])


def test_clean_returns_one_pass_view_and_nan_copy() -> None:
    idx = pd.date_range("2024-01-01", periods=4, tz="UTC")
    df = pd.DataFrame({"a": [0.01, -0.02, 0.0, 0.03], "b": [0.0, 0.01, 0.02, -0.01]}, index=idx)
    x = clean_returns(df)
    np.testing.assert_array_equal(x, df.to_numpy())
    assert not x.flags.writeable  # a view of the caller's data is never writable
    df.iloc[1, 0] = np.nan
    y = clean_returns(df)
    assert y[1, 0] == 0.0 and np.isnan(df.iloc[1, 0])  # NaN -> 0 on a copy; the frame is unchanged
    with pytest.raises(DataError, match="2-D"):
        clean_returns(np.zeros(3))
