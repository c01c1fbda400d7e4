"""Metrics against empyrical-reloaded (same conventions) and hand-computed small series."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import empyrical

from audit.metrics import (
    annual_volatility, cagr, calmar, compute_metrics, hit_rate, max_drawdown, sharpe, sortino,
    total_return, turnover,
)
from contracts.errors import ConfigError, DataError

# Relative tolerance vs empyrical: same formulas, different summation order (numpy pairwise sums vs
# cumprod / nanmean), and our CAGR goes through log1p/expm1: ~1e-14 relative on these lengths.
RTOL = 1e-10


def _series(seed: int, n: int = 500, scale: float = 0.03) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0005, scale, n)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("p", [252, 365])
def test_against_empyrical(seed, p):
    r = _series(seed)
    assert sharpe(r, p) == pytest.approx(empyrical.sharpe_ratio(r, annualization=p), rel=RTOL)
    rf = 0.0001
    assert sharpe(r, p, rf) == pytest.approx(
        empyrical.sharpe_ratio(r, risk_free=rf, annualization=p), rel=RTOL)
    assert sortino(r, p) == pytest.approx(empyrical.sortino_ratio(r, annualization=p), rel=RTOL)
    assert sortino(r, p, rf) == pytest.approx(
        empyrical.sortino_ratio(r, required_return=rf, annualization=p), rel=RTOL)
    assert annual_volatility(r, p) == pytest.approx(
        empyrical.annual_volatility(r, annualization=p), rel=RTOL)
    assert cagr(r, p) == pytest.approx(empyrical.cagr(r, annualization=p), rel=RTOL)
    assert max_drawdown(r) == pytest.approx(empyrical.max_drawdown(r), rel=RTOL)
    assert calmar(r, p) == pytest.approx(empyrical.calmar_ratio(r, annualization=p), rel=RTOL)
    assert total_return(r) == pytest.approx(empyrical.cum_returns_final(r), rel=RTOL)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-0.5, 0.5, allow_nan=False), min_size=3, max_size=60))
def test_drawdown_and_cagr_property_vs_empyrical(xs):
    r = np.array(xs)
    assert max_drawdown(r) == pytest.approx(empyrical.max_drawdown(r), rel=1e-9, abs=1e-12)
    assert cagr(r, 365) == pytest.approx(empyrical.cagr(r, annualization=365), rel=1e-9, abs=1e-12)


def test_drawdown_convention_first_return_negative():
    """High-water mark includes the initial capital 1.0: a first-day loss is a drawdown.

    empyrical-reloaded 0.7.1 anchors its running max at the starting value too (drawdown_series
    prepends start=100), so it agrees; older empyrical (<= 0.5) and the 'running max from the first
    end-of-day value' convention do not. Hand: equity 0.9, 0.945 -> -10% with V0, -0% without.
    """
    r = np.array([-0.10, 0.05])
    assert max_drawdown(r) == pytest.approx(-0.10, abs=1e-15)
    assert empyrical.max_drawdown(r) == pytest.approx(-0.10, abs=1e-15)
    assert max_drawdown(r, include_initial_capital=False) == 0.0
    r2 = np.array([-0.20, 0.10, -0.10])  # equity 0.8, 0.88, 0.792
    assert max_drawdown(r2) == pytest.approx(0.792 - 1.0, abs=1e-15)
    assert max_drawdown(r2, include_initial_capital=False) == pytest.approx(0.792 / 0.88 - 1.0,
                                                                             abs=1e-15)


def test_hand_computed_small_series():
    r = np.array([0.10, -0.05, 0.0, 0.02])
    # mean 0.0175, sample std sqrt(sum((r-mean)^2)/3) = sqrt(0.00848/3... ) computed below by hand
    dev = r - 0.0175
    sd = math.sqrt(float(dev @ dev) / 3)
    assert sharpe(r, 252) == pytest.approx(0.0175 / sd * math.sqrt(252), rel=1e-12)
    # equity 1.1, 1.045, 1.045, 1.0659 -> total 6.59%, max drawdown 1.045/1.1 - 1 = -5%
    assert total_return(r) == pytest.approx(0.0659, abs=1e-12)
    assert max_drawdown(r) == pytest.approx(-0.05, abs=1e-12)
    assert cagr(r, 4) == pytest.approx(0.0659, abs=1e-12)       # n == P: one year
    assert cagr(r, 2) == pytest.approx(math.sqrt(1.0659) - 1, abs=1e-12)  # two years
    assert calmar(r, 4) == pytest.approx(0.0659 / 0.05, rel=1e-12)
    assert hit_rate(r) == pytest.approx(2 / 3)  # the 0.0 day is excluded
    # downside deviation over all 4 days: sqrt(0.05^2 / 4) = 0.025
    assert sortino(r, 1) == pytest.approx(0.0175 / 0.025, rel=1e-12)


def test_equity_to_zero():
    r = np.array([0.1, -1.0, 0.0, 0.0])
    assert cagr(r, 365) == -1.0 and max_drawdown(r) == -1.0 and total_return(r) == -1.0
    assert calmar(r, 365) == -1.0


def test_degenerate_rules_flags_not_nan():
    flat = np.zeros(10)
    m = compute_metrics(flat, 365)
    assert m["sharpe"] == 0.0 and m["sortino"] == 0.0 and m["calmar"] == 0.0
    assert m["hit_rate"] == 0.0 and m["max_drawdown"] == 0.0
    assert m["flags"] == ["calmar:no_drawdown", "hit_rate:no_nonzero_days",
                          "sharpe:zero_variance", "sortino:no_downside"]
    const = np.full(5, 0.01)  # std would be ~1e-18 from rounding; the rule is exact equality
    assert sharpe(const, 365) == 0.0
    one = compute_metrics([0.02], 252)
    assert "sharpe:insufficient_data" in one["flags"] and one["annual_volatility"] == 0.0
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in m.values())


def test_bad_input_raises():
    with pytest.raises(DataError, match="empty"):
        sharpe([], 365)
    with pytest.raises(DataError, match="position 1"):
        sharpe([0.1, float("nan")], 365)
    with pytest.raises(DataError, match="< -1"):
        cagr([0.1, -1.5], 365)
    with pytest.raises(ConfigError):
        sharpe([0.1, 0.2], 0)


def test_compute_metrics_keys_and_values():
    r = _series(5, 300)
    m = compute_metrics(pd.Series(r), 365)
    assert set(m) == {"n_periods", "periods_per_year", "total_return", "cagr", "annual_volatility",
                      "sharpe", "sortino", "max_drawdown", "calmar", "hit_rate", "flags"}
    assert m["sharpe"] == sharpe(r, 365) and m["n_periods"] == 300 and m["flags"] == []


def test_turnover_hand_computed():
    w = [{"A": 0.5, "B": 0.5}, {"A": 0.5, "C": 0.5}, {"C": 1.0}]
    # k=1: |0|+|-0.5|+|0.5| = 1.0 /2 = 0.5 ; k=2: |-0.5|+|0|+|0.5| = 1.0/2 = 0.5 -> mean 0.5
    assert turnover(w) == pytest.approx(0.5)
    w2 = [{"A": 1.0}, {"A": 1.0}, {"B": 1.0}]  # 0 then 1 -> 0.5
    assert turnover(w2) == pytest.approx(0.5)
    frame = pd.DataFrame([{"A": 1.0}, {"A": 0.25, "B": 0.75}])  # NaN = 0 -> 0.75
    assert turnover(frame) == pytest.approx(0.75)
    assert turnover([{"A": 1.0}]) == 0.0
