"""Mixed calendars without zero-filling (issue 17): a weekday sleeve against a 7-day sleeve."""
import numpy as np
import pandas as pd
import pytest

from tournament.meta_align import carry_align, marked_returns, nav_panel, union_calendar, zero_fill_align


def _pair(seed: int = 3, n_days: int = 7 * 400, rho: float = 0.8, vol: float = 0.01):
    """Two sleeves driven by one daily factor on every calendar day: ``crypto`` trades 7 days a week,
    ``equity`` on weekdays only (its Monday return is Friday close -> Monday close, i.e. the weekend's
    factor moves compounded, as an exchange's)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2022-01-03", periods=n_days, freq="D", tz="UTC")
    f = rng.normal(0, vol, n_days)
    a = rho * f + np.sqrt(1 - rho ** 2) * rng.normal(0, vol, n_days)
    b = rho * f + np.sqrt(1 - rho ** 2) * rng.normal(0, vol, n_days)
    crypto = pd.Series(a, index=days)
    eq_value = pd.Series(np.cumprod(1 + b), index=days)
    wd = days[days.day_of_week < 5]
    ev = eq_value.reindex(wd)
    equity = ev.pct_change().dropna()
    return crypto, equity, pd.Series(b, index=days)


def test_carry_compounds_the_weekend_into_monday():
    crypto, equity, _ = _pair()
    x = carry_align({"crypto": crypto, "equity": equity})
    assert (x.index.day_of_week < 5).all()
    mon = x.index[x.index.day_of_week == 0][3]
    sat, sun = mon - pd.Timedelta(days=2), mon - pd.Timedelta(days=1)
    want = (1 + crypto[sat]) * (1 + crypto[sun]) * (1 + crypto[mon]) - 1
    assert x.at[mon, "crypto"] == pytest.approx(want, rel=1e-12)
    assert x.at[mon, "equity"] == equity[mon]  # a weekday sleeve's own return, untouched
    # compounding over the grid equals the sleeve's own compounding over the same span
    span = crypto[(crypto.index > equity.index[0]) & (crypto.index <= x.index[-1])]  # grid[0] = equity's first day
    assert np.prod(1 + x["crypto"]) == pytest.approx(np.prod(1 + span), rel=1e-10)


def test_zero_fill_deflates_correlation_and_portfolio_volatility_carry_does_not():
    """One factor on every calendar day, per-day correlation rho^2 = 0.64 between the sleeves. Carry
    keeps it (the weekend's moves meet on Monday in both sleeves); zero-filling sets the 7-day sleeve's
    weekend moves against fake zeros and the weekday sleeve's Monday (three days of moves) against the
    7-day sleeve's one-day Monday: the correlation drops to about 0.46, and so does the volatility of a
    50/50 mix estimated from that covariance (about 6% too low). Carry's estimate, annualised with its
    grid's own intervals per year (weekdays: ~260.9), matches the mix's true volatility.
    Seeds 3-5 give correlations 0.63-0.66 (carry) vs 0.45-0.47 (zero) and volatility ratios
    carry/true 0.99-1.02, zero/true 0.93-0.95 (400 weeks; a volatility's sampling error ~1.6%)."""
    crypto, equity, b = _pair()
    carry = carry_align({"crypto": crypto, "equity": equity})
    zero = zero_fill_align({"crypto": crypto, "equity": equity})
    c_carry = carry.corr().iloc[0, 1]
    c_zero = zero.corr().iloc[0, 1]
    assert c_carry == pytest.approx(0.64, abs=0.05)  # sampling error of a correlation here ~0.02
    assert c_zero < c_carry - 0.15
    w = np.array([0.5, 0.5])
    years = (carry.index[-1] - carry.index[0]).days / 365
    vol_carry = np.sqrt(w @ carry.cov().to_numpy() @ w * len(carry) / years)
    vol_zero = np.sqrt(w @ zero.cov().to_numpy() @ w * 365)
    true = (0.5 * crypto + 0.5 * b).std(ddof=1) * np.sqrt(365)  # the mix rebalanced every calendar day
    assert vol_carry == pytest.approx(true, rel=0.04)
    assert vol_zero < 0.965 * true


def test_nav_panel_stale_marks_and_union_calendar():
    crypto, equity, _ = _pair(n_days=28)
    cal = union_calendar({"c": crypto, "e": equity})
    assert cal.equals(crypto.index)  # the 7-day sleeve's calendar holds every day
    nav = nav_panel({"c": crypto, "e": equity}, cal)
    sat = cal[cal.day_of_week == 5][1]
    assert nav.at[sat, "e"] == nav.at[sat - pd.Timedelta(days=1), "e"]  # closed: unchanged mark
    m = marked_returns(equity, cal)
    assert (m[cal.day_of_week >= 5] == 0).all()
    assert np.prod(1 + m) == pytest.approx(np.prod(1 + equity), rel=1e-13)
    with pytest.raises(ValueError, match="outside the meta calendar"):
        nav_panel({"e": equity}, cal[cal.day_of_week < 3])
