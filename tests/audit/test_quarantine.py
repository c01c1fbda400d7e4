"""Flash-crash / volatility-regime quarantine and metrics with and without quarantined windows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.checks import CheckStatus, QuarantineConfig, metrics_with_and_without, quarantine_windows
from audit.metrics import compute_metrics

N_WIN, STEP = 6, 10
DATES = pd.date_range("2024-01-01", periods=N_WIN * STEP, freq="D", tz="UTC")
WINDOW_OF_DATE = pd.Series(np.repeat(np.arange(N_WIN), STEP), index=DATES)


def _market(seed=0, n_sym=4, scale=0.01):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(0, scale, (len(DATES), n_sym)), index=DATES,
                        columns=[f"S{i}" for i in range(n_sym)])


def test_calm_market_quarantines_nothing():
    q, results = quarantine_windows(_market(), WINDOW_OF_DATE)
    assert q == [] and all(r.status is CheckStatus.PASS for r in results) and len(results) == N_WIN


def test_flash_crash_over_two_days_quarantines_its_window():
    m = _market()
    m.iloc[23] = -0.15  # window 2: -15% then -15% -> compounded -27.75% over 2 bars
    m.iloc[24] = -0.15
    q, results = quarantine_windows(m, WINDOW_OF_DATE)
    assert q == [2]
    res = {r.window: r for r in results}
    assert res[2].status is CheckStatus.WARN
    assert res[2].details["worst_span_return"] == pytest.approx(0.85 ** 2 - 1, abs=1e-2)
    assert any("crash" in s for s in res[2].details["reasons"])
    # a single -20% day alone is not a crash at the -25% threshold (vol rule off for this part;
    # such a day does lift the window's realised vol ~6x, which the vol rule flags by default)
    m2 = _market()
    m2.iloc[23] = -0.20
    crash_only = QuarantineConfig(vol_multiple=1e6)
    assert quarantine_windows(m2, WINDOW_OF_DATE, crash_only)[0] == []
    q2, res2 = quarantine_windows(m2, WINDOW_OF_DATE)
    assert q2 == [2] and "median vol" in res2[2].details["reasons"][0]


def test_crash_straddling_two_windows_quarantines_both():
    m = _market()
    m.iloc[29] = -0.2   # last bar of window 2
    m.iloc[30] = -0.1   # first bar of window 3: compounded -28%
    assert quarantine_windows(m, WINDOW_OF_DATE)[0] == [2, 3]


def test_nan_symbols_are_skipped_in_the_equal_weight_return():
    m = _market()
    m.iloc[12, :3] = np.nan     # only S3 trades
    m.iloc[12, 3] = -0.30       # EW return on that day -30% (mean over available)
    q, _ = quarantine_windows(m, WINDOW_OF_DATE)
    assert q == [1]


def test_volatility_regime_quarantined():
    m = _market()
    m.iloc[40:50] = np.random.default_rng(1).normal(0, 0.05, (10, 4))  # window 4: ~5x the vol
    q, results = quarantine_windows(m, WINDOW_OF_DATE, QuarantineConfig(crash_threshold=-0.9))
    assert q == [4]
    assert {r.window: r for r in results}[4].details["vol_ratio"] > 3


def test_metrics_with_and_without():
    rng = np.random.default_rng(2)
    rets = rng.normal(0.001, 0.01, len(DATES))
    rets[23] = -0.3
    df = pd.DataFrame({"cell_id": "c1", "date": DATES, "window": WINDOW_OF_DATE.to_numpy(),
                       "return": rets, "liquidated": False})
    out = metrics_with_and_without(df, [2], 365)["c1"]
    assert out["all"] == compute_metrics(rets, 365)
    keep = WINDOW_OF_DATE.to_numpy() != 2
    assert out["ex_quarantine"] == compute_metrics(rets[keep], 365)
    assert out["n_bars_excluded"] == STEP and out["windows_excluded"] == [2]
    assert out["ex_quarantine"]["max_drawdown"] > out["all"]["max_drawdown"]
    assert metrics_with_and_without(df, range(N_WIN), 365)["c1"]["ex_quarantine"] is None


def test_bad_inputs():
    from contracts.errors import DataError
    m = _market()
    with pytest.raises(DataError):
        quarantine_windows(m.iloc[::-1], WINDOW_OF_DATE)
    with pytest.raises(DataError):
        quarantine_windows(m.iloc[:10], WINDOW_OF_DATE)
