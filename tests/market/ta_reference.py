"""The per-symbol ``ta`` implementation of ``market.ratings`` (the code the ratings ran on before the
2-D version): the independent reference the fast derivation is tested against (STYLE: fast and slow
twins). One symbol at a time, through ``ta``'s indicator classes and pandas Series.

Kept as it was, except that a symbol with fewer than 28 bars gets no ADX (``ta``'s ADXIndicator
raises IndexError/ValueError on them; the ADX vote needs 28 bars anyway).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from ta.momentum import (AwesomeOscillatorIndicator, RSIIndicator, StochasticOscillator,
                         StochRSIIndicator, UltimateOscillator, WilliamsRIndicator)
from ta.trend import ADXIndicator, CCIIndicator, EMAIndicator, IchimokuIndicator, MACD, SMAIndicator

MA_LENGTHS = (10, 20, 30, 50, 100, 200)
DERIVED_FIELDS = ("Recommend.All", "Recommend.MA", "Recommend.Other", "ROC", "Volatility.D", "ADX",
                  "Value.Traded")


def _vote(buy: pd.Series, sell: pd.Series, available: pd.Series) -> pd.Series:
    v = buy.astype(float) - sell.astype(float)
    return v.where(available)


def _ma_vote(close: pd.Series, ma: pd.Series) -> pd.Series:
    return _vote(ma < close, ma > close, ma.notna() & close.notna())


def wma(x: pd.Series, n: int) -> pd.Series:
    """Linearly weighted moving average (weights 1..n, newest heaviest), NaN until n values.

    Equal to ``ta.trend.WMAIndicator(x, n).wma()`` (tested), by convolution instead of ta's
    Python ``rolling.apply``, which is ~100x slower.
    """
    v = x.to_numpy(dtype=np.float64)
    w = np.arange(1, n + 1, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    if len(v) >= n:
        out[n - 1:] = np.convolve(v, w[::-1] / w.sum(), mode="valid")
    return pd.Series(out, index=x.index)


def _hull(close: pd.Series, n: int = 9) -> pd.Series:
    return wma(2 * wma(close, n // 2) - wma(close, n), int(np.sqrt(n)))


def ma_votes(close: pd.Series, high: pd.Series, low: pd.Series, volume: pd.Series | None) -> pd.DataFrame:
    """Per-bar moving-average votes of one symbol (columns = MAs, values -1/0/+1/NaN)."""
    votes = {}
    for n in MA_LENGTHS:
        votes[f"SMA{n}"] = _ma_vote(close, SMAIndicator(close, window=n, fillna=False).sma_indicator())
        votes[f"EMA{n}"] = _ma_vote(close, EMAIndicator(close, window=n, fillna=False).ema_indicator())
        votes[f"EMA{n}"] = votes[f"EMA{n}"].where(close.notna().cumsum() >= n)  # EMA needs n bars too
    ichi = IchimokuIndicator(high, low, window1=9, window2=26, window3=52, fillna=False)
    votes["Ichimoku"] = _ma_vote(close, ichi.ichimoku_base_line())
    if volume is not None and volume.notna().any():
        pv = (close * volume).rolling(20).sum() / volume.rolling(20).sum()
        votes["VWMA20"] = _ma_vote(close, pv)
    votes["HullMA9"] = _ma_vote(close, _hull(close, 9))
    return pd.DataFrame(votes)


def oscillator_votes(close: pd.Series, high: pd.Series, low: pd.Series,
                     adx_ind: ADXIndicator | None = None) -> pd.DataFrame:
    """Per-bar oscillator votes of one symbol (columns = oscillators, values -1/0/+1/NaN).

    ``adx_ind``: a computed ``ta`` ADX 14 indicator of the same bars, to reuse (ta's ADX is a Python
    loop over bars)."""
    v = {}
    rsi = RSIIndicator(close, 14, fillna=False).rsi()
    v["RSI"] = _vote((rsi < 30) & (rsi > rsi.shift()), (rsi > 70) & (rsi < rsi.shift()),
                     rsi.notna() & rsi.shift().notna())
    st = StochasticOscillator(high, low, close, window=14, smooth_window=3, fillna=False)
    k, d = st.stoch(), st.stoch_signal()
    v["Stoch"] = _vote((k < 20) & (k > d), (k > 80) & (k < d), k.notna() & d.notna())
    cci = CCIIndicator(high, low, close, window=20, fillna=False).cci()
    v["CCI"] = _vote((cci < -100) & (cci > cci.shift()), (cci > 100) & (cci < cci.shift()),
                     cci.notna() & cci.shift().notna())
    adx_ind = adx_ind if adx_ind is not None else ADXIndicator(high, low, close, window=14, fillna=False)
    adx, pdi, ndi = adx_ind.adx(), adx_ind.adx_pos(), adx_ind.adx_neg()
    ok = close.notna().cumsum() >= 28  # ADX needs two 14-bar smoothings
    v["ADX"] = _vote((adx > 20) & (pdi > ndi), (adx > 20) & (pdi < ndi), ok & adx.notna())
    ao = AwesomeOscillatorIndicator(high, low, window1=5, window2=34, fillna=False).awesome_oscillator()
    a1, a2 = ao.shift(1), ao.shift(2)
    buy = ((ao > 0) & (a1 <= 0)) | ((ao > 0) & (a1 > 0) & (ao > a1) & (a1 < a2))
    sell = ((ao < 0) & (a1 >= 0)) | ((ao < 0) & (a1 < 0) & (ao < a1) & (a1 > a2))
    v["AO"] = _vote(buy, sell, ao.notna() & a2.notna())
    mom = close - close.shift(10)
    v["Mom"] = _vote(mom > mom.shift(), mom < mom.shift(), mom.notna() & mom.shift().notna())
    macd = MACD(close, window_slow=26, window_fast=12, window_sign=9, fillna=False)
    m, s = macd.macd(), macd.macd_signal()
    v["MACD"] = _vote(m > s, m < s, m.notna() & s.notna() & (close.notna().cumsum() >= 34))
    srsi = StochRSIIndicator(close, window=14, smooth1=3, smooth2=3, fillna=False)
    sk, sd = srsi.stochrsi_k() * 100, srsi.stochrsi_d() * 100
    v["StochRSI"] = _vote((sk < 20) & (sd < 20) & (sk > sd), (sk > 80) & (sd > 80) & (sk < sd),
                          sk.notna() & sd.notna())
    wr = WilliamsRIndicator(high, low, close, lbp=14, fillna=False).williams_r()
    v["WR"] = _vote((wr < -80) & (wr > wr.shift()), (wr > -20) & (wr < wr.shift()),
                    wr.notna() & wr.shift().notna())
    ema13 = EMAIndicator(close, window=13, fillna=False).ema_indicator()
    bull, bear = high - ema13, low - ema13
    ok13 = close.notna().cumsum() >= 14
    v["BBP"] = _vote((close > ema13) & (bear < 0) & (bear > bear.shift()),
                     (close < ema13) & (bull > 0) & (bull < bull.shift()), ok13 & ema13.notna())
    uo = UltimateOscillator(high, low, close, window1=7, window2=14, window3=28, fillna=False).ultimate_oscillator()
    v["UO"] = _vote(uo > 70, uo < 30, uo.notna() & (close.notna().cumsum() >= 29))
    return pd.DataFrame(v)


class _NoADX:
    """ADX of a history shorter than 28 bars: unavailable (NaN)."""

    def __init__(self, index):
        self._nan = pd.Series(np.nan, index=index)

    def adx(self):
        return self._nan

    adx_pos = adx_neg = adx


def derive_symbol(close: pd.Series, high: pd.Series | None = None, low: pd.Series | None = None,
                  volume: pd.Series | None = None) -> pd.DataFrame:
    """Every derived field of one symbol at every bar (index = the close's index)."""
    c = close.dropna()
    hi = high.reindex(c.index) if high is not None else c
    lo = low.reindex(c.index) if low is not None else c
    vol = volume.reindex(c.index) if volume is not None else None
    out = pd.DataFrame(index=close.index, columns=list(DERIVED_FIELDS), dtype=float)
    if len(c) < 2:
        return out
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # ta divides by zero ranges on flat bars; the votes treat the resulting NaN as unavailable
        warnings.simplefilter("ignore", RuntimeWarning)
        adx_ind = ADXIndicator(hi, lo, c, window=14, fillna=False) if len(c) >= 28 else _NoADX(c.index)
        ma = ma_votes(c, hi, lo, vol).mean(axis=1, skipna=True)
        osc = oscillator_votes(c, hi, lo, adx_ind).mean(axis=1, skipna=True)
        adx = adx_ind.adx().where(c.notna().cumsum() >= 28)
        prev = c.shift()
        if high is not None and low is not None:
            vold = 100.0 * (hi - lo) / lo
        else:
            vold = 100.0 * (c / prev - 1.0).abs()
        res = pd.DataFrame({
            "Recommend.MA": ma, "Recommend.Other": osc,
            "Recommend.All": pd.concat([ma, osc], axis=1).mean(axis=1, skipna=True),
            "ROC": 100.0 * (c / c.shift(9) - 1.0),
            "Volatility.D": vold.where(prev.notna()),
            "ADX": adx.where(adx > 0),
            "Value.Traded": (c * vol) if vol is not None else pd.Series(np.nan, index=c.index),
        })
    return res.reindex(close.index)[list(DERIVED_FIELDS)]


def derive_panel(closes: pd.DataFrame, fields: dict[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """Derived fields for every symbol: ``{field: DataFrame(dates x symbols)}``.

    Computed once per panel; the value at date ``t`` uses bars up to ``t`` only.
    """
    fields = fields or {}
    per = {}
    for sym in closes.columns:
        get = lambda f: fields[f][sym] if f in fields else None  # noqa: E731
        per[sym] = derive_symbol(closes[sym], get("high"), get("low"), get("volume"))
    return {f: pd.DataFrame({s: per[s][f] for s in closes.columns}) for f in DERIVED_FIELDS}
