"""Causal volatility-regime labels: calm / turbulent / crisis per bar, from a reference price series.

Kernel (pure pandas/numpy, no I/O, no global state). For a price series ``p`` (the benchmark's closes):

- ``r_t = p_t / p_{t-1} - 1`` (simple returns);
- ``vol_t = std(r_{t-window} .. r_{t-1}, ddof=1) * sqrt(P)``: annualised realised volatility over the
  ``window`` returns *before* bar ``t`` (it reads prices up to bar ``t-1`` only: what is known at the
  open of bar ``t``, before bar ``t``'s return is earned);
- cut points ``c1_t, c2_t``: the ``quantiles`` (q1 < q2, linear interpolation as ``numpy.quantile``)
  of the *earlier* volatilities ``{vol_s : s < t}`` (an expanding window; at least ``min_history`` of
  them, else no label);
- label ``calm`` if ``vol_t < c1_t``, ``turbulent`` if ``c1_t <= vol_t < c2_t``, ``crisis`` if
  ``vol_t >= c2_t``; missing (``<NA>``, unlabelled) during the warm-up or where a price is missing.

So the label of bar ``t`` is a function of ``p_0 .. p_{t-1}`` alone: changing any price at or after bar
``t`` never changes it (``tests/market/test_regimes.py`` perturbs the future and checks byte equality).
The cut points adapt to the series' own history (no full-sample quantile, which would read the future);
the price of that is a warm-up and, early on, labels relative to a short history (a first turbulent
spell after a long calm one reads as crisis until the history holds turbulent days).

The reference loop ``labels_loop`` in the tests is the slow twin of ``regime_labels``.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

CALM, TURBULENT, CRISIS = "calm", "turbulent", "crisis"
REGIMES: tuple[str, str, str] = (CALM, TURBULENT, CRISIS)

#: documented defaults (also those of ``tournament.config.Regimes``)
DEFAULT_WINDOW = 20
DEFAULT_QUANTILES = (0.6, 0.9)
DEFAULT_MIN_HISTORY = 60


def trailing_vol(prices: pd.Series, window: int, periods_per_year: float) -> pd.Series:
    """Annualised realised volatility of the ``window`` simple returns before each bar (NaN until
    ``window`` returns exist or when one of them is missing). Fraction, ``sqrt(P)`` annualised."""
    r = prices.astype("float64").pct_change(fill_method=None)
    return r.rolling(window, min_periods=window).std(ddof=1).shift(1) * math.sqrt(periods_per_year)


def regime_frame(prices: pd.Series, *, window: int = DEFAULT_WINDOW,
                 quantiles: tuple[float, float] = DEFAULT_QUANTILES, min_history: int = DEFAULT_MIN_HISTORY,
                 periods_per_year: float = 365.0) -> pd.DataFrame:
    """Per bar of ``prices``: ``vol`` (annualised trailing volatility), ``cut_low``, ``cut_high`` (the
    expanding quantiles of the earlier volatilities) and ``regime`` (``calm``/``turbulent``/``crisis``,
    ``<NA>`` when unlabelled; pandas ``string`` dtype). Index: the index of ``prices``. See the module docstring."""
    q1, q2 = (float(q) for q in quantiles)
    if not (0.0 < q1 < q2 < 1.0):
        raise ValueError(f"regime quantiles must satisfy 0 < q1 < q2 < 1, got {quantiles!r}")
    if window < 2 or min_history < 1:
        raise ValueError(f"need window >= 2 and min_history >= 1, got {window}, {min_history}")
    vol = trailing_vol(prices, window, periods_per_year)
    past = vol.dropna()  # the expanding window runs over the volatilities that exist
    lo = past.expanding(min_periods=min_history).quantile(q1).shift(1).reindex(vol.index)
    hi = past.expanding(min_periods=min_history).quantile(q2).shift(1).reindex(vol.index)
    v, a, b = vol.to_numpy(), lo.to_numpy(), hi.to_numpy()
    ok = np.isfinite(v) & np.isfinite(a) & np.isfinite(b)
    lab = np.where(v < a, CALM, np.where(v < b, TURBULENT, CRISIS)).astype(object)
    lab[~ok] = None
    return pd.DataFrame({"vol": v, "cut_low": a, "cut_high": b,
                         "regime": pd.array(lab, dtype="string")}, index=prices.index)


def regime_labels(prices: pd.Series, **kwargs) -> pd.Series:
    """The ``regime`` column of ``regime_frame`` (``string`` dtype, ``<NA>`` where unlabelled)."""
    return regime_frame(prices, **kwargs)["regime"].rename("regime")


def reference_prices(closes: pd.DataFrame, benchmark: str | None) -> tuple[pd.Series, str]:
    """The series the regimes are read from: the benchmark's closes, or, without a benchmark, an
    equal-weight index of every listed symbol (daily cross-sectional mean of the simple returns,
    compounded from 1). Returns the series and its description."""
    if benchmark is not None:
        return closes[benchmark].astype("float64"), f"benchmark {benchmark}"
    r = closes.astype("float64").pct_change(fill_method=None).mean(axis=1, skipna=True).fillna(0.0)
    return (1.0 + r).cumprod(), "equal-weight index of every listed symbol (no benchmark)"
