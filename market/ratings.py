"""Scanner fields derived from the bars up to a date (DESIGN section 3, "Candidate").

When a snapshot lacks a field, it is derived from the bars up to the snapshot's date, following
TradingView's published technical-rating method, with the ``ta`` library's indicator definitions:

- ``Recommend.MA``: mean of votes (+1 buy, -1 sell, 0 neutral) of the close against SMA and EMA of 10,
  20, 30, 50, 100 and 200 bars, the Ichimoku base line (9, 26, 52), VWMA 20 and Hull MA 9 (buy when the
  MA is below the close, sell when above);
- ``Recommend.Other``: mean of the oscillator votes: RSI 14 (buy < 30 and rising, sell > 70 and
  falling), Stochastic 14/3/3 (buy %K < 20 and %K > %D, sell %K > 80 and %K < %D), CCI 20 (buy < -100
  and rising, sell > 100 and falling), ADX 14 with DI (buy ADX > 20 and +DI > -DI, sell ADX > 20 and
  +DI < -DI), Awesome Oscillator (buy: crosses above 0, or a saucer above 0; sell mirrored), Momentum
  10 (buy rising, sell falling), MACD 12/26/9 (buy MACD > signal, sell <), Stoch RSI 3/3/14/14 (buy K
  and D < 20 and K > D, sell K and D > 80 and K < D), Williams %R 14 (buy < -80 and rising, sell > -20
  and falling), Bull Bear Power 13 (buy: close above EMA 13, bear power < 0 and rising; sell: close
  below EMA 13, bull power > 0 and falling), Ultimate Oscillator 7/14/28 (buy > 70, sell < 30);
- ``Recommend.All``: the mean of ``Recommend.MA`` and ``Recommend.Other``;
- ``ROC``: rate of change over 9 bars, percent; ``Volatility.D``: the day's range ``(high - low) /
  low`` in percent (from the close-to-close move when high/low are unknown); ``ADX``: ADX 14;
  ``Value.Traded``: ``close x volume`` of the day (quote currency).

Votes on unavailable indicators (too little history) are left out of the mean; with none the
rating is NaN. Every indicator is causal (rolling or recursive over past bars), so the value at date
``t`` depends on bars up to ``t`` only; a test proves it by truncation.

**Conventions** (those of ``ta`` 0.11, which the values follow; not TA-Lib's): EMAs are
``ewm(span=n, adjust=False)`` seeded with the first close (TA-Lib seeds with the SMA of the first
``n``) and shown from the ``n``-th bar; RSI is Wilder's smoothing ``ewm(alpha=1/14, adjust=False)`` seeded
with the first change (TA-Lib seeds with the 14-bar mean); ADX is ``ta``'s: the true-range and
directional-movement sums seeded with the sum of their first 14 values (bars 1..14), then
``S_t = S_{t-1} - S_{t-1}/14 + x_t``, and ADX seeded with the mean DX of bars 14..27, shown from bar 27
(0-based). A symbol's missing bars (NaN closes: before listing, after delisting, gaps) are dropped
before the indicators run, i.e. an indicator's ``n`` bars are the symbol's last ``n`` traded bars.
Symbols with fewer than 28 bars get no ADX vote (``ta``'s ADX raises on them; here the other votes
still count).

**Implementation.** Every indicator runs once on 2-D arrays (bars x symbols) for all symbols
together: each symbol's traded bars are moved to the top of its column (``_Compact``), pandas'
rolling/ewm kernels (the very ones ``ta`` calls per symbol) run column-wise, the two recursions
(ADX's smoothed sums) run as one loop over bars on vectors of symbols, and the results are put back
at the symbols' dates. ``tests/market/ta_reference.py`` keeps the per-symbol ``ta`` implementation
as the oracle (equal to 1e-9 on every field of the synthetic market, short histories and gaps).
``DerivedCache`` stores derived panels on disk, keyed by the content digest of the bars.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

MA_LENGTHS = (10, 20, 30, 50, 100, 200)
DERIVED_FIELDS = ("Recommend.All", "Recommend.MA", "Recommend.Other", "ROC", "Volatility.D", "ADX",
                  "Value.Traded")
MA_VOTES = tuple(f"{k}{n}" for n in MA_LENGTHS for k in ("SMA", "EMA")) + ("Ichimoku", "VWMA20", "HullMA9")
OSC_VOTES = ("RSI", "Stoch", "CCI", "ADX", "AO", "Mom", "MACD", "StochRSI", "WR", "BBP", "UO")
# bump when a definition above changes: the cache key includes it, so old cached panels are not used
RATINGS_VERSION = "ta-0.11-conventions/1"
ADX_N = 14


# ---- small array helpers (bars on axis 0) ----------------------------------------------------------

def _shift(a: np.ndarray, k: int = 1) -> np.ndarray:
    out = np.full(a.shape, np.nan)
    if k < len(a):
        out[k:] = a[: len(a) - k]
    return out


def _vote(buy: np.ndarray, sell: np.ndarray, available: np.ndarray) -> np.ndarray:
    """+1 buy, -1 sell, 0 neutral, NaN where the indicator is unavailable."""
    return np.where(available, buy.astype(float) - sell.astype(float), np.nan)


def _ma_vote(close: np.ndarray, ma: np.ndarray) -> np.ndarray:
    return _vote(ma < close, ma > close, ~np.isnan(ma) & ~np.isnan(close))


def _changed_vote(x: np.ndarray, buy_level, sell_level, low_is_buy: bool = True) -> np.ndarray:
    """Vote of an oscillator: buy below ``buy_level`` and rising, sell above ``sell_level`` and falling."""
    prev = _shift(x)
    return _vote((x < buy_level) & (x > prev), (x > sell_level) & (x < prev), ~np.isnan(x) & ~np.isnan(prev))


def _vote_mean(votes: list[np.ndarray]) -> np.ndarray:
    """Mean of the available votes (NaN with none), as ``DataFrame.mean(axis=1, skipna=True)``.

    Votes are -1/0/+1, so the sum and the count are exact and the mean is the same float."""
    stack = np.stack(votes)
    count = (~np.isnan(stack)).sum(axis=0)
    total = np.nansum(stack, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def wma(x: pd.Series, n: int) -> pd.Series:
    """Linearly weighted moving average (weights 1..n, newest heaviest), NaN until n values.

    Equal to ``ta.trend.WMAIndicator(x, n).wma()`` (tested), by convolution instead of ta's
    Python ``rolling.apply``, which is ~100x slower.
    """
    return pd.Series(_wma_1d(x.to_numpy(dtype=np.float64), n), index=x.index)


def _wma_1d(v: np.ndarray, n: int) -> np.ndarray:
    w = np.arange(1, n + 1, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    if len(v) >= n:
        out[n - 1:] = np.convolve(v, w[::-1] / w.sum(), mode="valid")
    return out


def _hull_2d(close: np.ndarray, lengths: np.ndarray, n: int = 9) -> np.ndarray:
    """Hull MA of each column's first ``lengths[j]`` rows (np.convolve per column: a few us each)."""
    out = np.full(close.shape, np.nan)
    for j, m in enumerate(lengths):
        c = close[:m, j]
        out[:m, j] = _wma_1d(2 * _wma_1d(c, n // 2) - _wma_1d(c, n), int(np.sqrt(n)))
    return out


# ---- the indicators on compacted 2-D frames ---------------------------------------------------------

def _ema(df: pd.DataFrame, n: int) -> pd.DataFrame:
    return df.ewm(span=n, min_periods=n, adjust=False).mean()


def _rsi(C: pd.DataFrame, n: int = 14) -> np.ndarray:
    diff = C.diff(1)
    up = diff.where(diff > 0, 0.0)
    down = -diff.where(diff < 0, 0.0)
    emaup = up.ewm(alpha=1 / n, min_periods=n, adjust=False).mean()
    emadn = down.ewm(alpha=1 / n, min_periods=n, adjust=False).mean()
    rs = emaup / emadn
    return np.where(emadn == 0, 100, 100 - (100 / (1 + rs))).astype(float)


def _mad(x: np.ndarray, n: int) -> np.ndarray:
    """Rolling mean absolute deviation over ``n`` bars (NaN if a window has a NaN), as ta's
    ``rolling(n).apply(mean(|x - mean(x)|))`` with each window a contiguous run of memory."""
    out = np.full(x.shape, np.nan)
    if len(x) >= n:
        win = sliding_window_view(np.ascontiguousarray(x.T), n, axis=1)  # symbols x windows x n
        m = win.mean(axis=-1, keepdims=True)
        out[n - 1:] = np.abs(win - m).mean(axis=-1).T
    return out


def _adx(H: np.ndarray, L: np.ndarray, C: np.ndarray, n: int = ADX_N) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ADX, +DI and -DI of ``ta.trend.ADXIndicator`` (0 where ta shows 0: before it is defined).

    ``ta``'s definition, bar ``t`` 0-based: ``S_n = sum of the first n values of x`` (bars 1..n),
    ``S_t = S_{t-1} - S_{t-1}/n + x_t`` for the true range, +DM and -DM; ``+DI_t = 100 S+_t / STR_t``
    from bar n+1 on; ``DX_t = 100 |DI+ - DI-| / (DI+ + DI-)`` from bar n; ``ADX_{2n-1}`` = mean of
    ``DX_n..DX_{2n-1}``, then ``ADX_t = (ADX_{t-1} (n-1) + DX_t) / n``."""
    T, N = C.shape
    cs = _shift(C)
    dm = np.amax(np.stack([H, cs]), axis=0) - np.amin(np.stack([L, cs]), axis=0)
    up = H - _shift(H)
    down = _shift(L) - L
    pos = np.abs(((up > down) & (up > 0)) * up)
    neg = np.abs(((down > up) & (down > 0)) * down)
    adx, pdi, ndi = np.zeros((T, N)), np.zeros((T, N)), np.zeros((T, N))
    if T <= n:
        return adx, pdi, ndi
    sums = []
    for x in (dm, pos, neg):
        s = np.full((T, N), np.nan)
        # the seed: sum of the first n non-NaN values (pandas' dropna().iloc[:n].sum(), same order)
        first = np.argsort(np.isnan(x), axis=0, kind="stable")[:n]
        seed_vals = np.take_along_axis(x, first, axis=0)
        seed_vals = np.where(np.isnan(seed_vals), 0.0, seed_vals)
        s[n] = np.ascontiguousarray(seed_vals.T).sum(axis=1)
        for t in range(n + 1, T):
            prev = s[t - 1]
            s[t] = prev - (prev / float(n)) + x[t]
        sums.append(s)
    trs, sp, sn = sums
    with np.errstate(divide="ignore", invalid="ignore"):
        dip = np.where(trs != 0, 100 * (sp / trs), 0.0)
        din = np.where(trs != 0, 100 * (sn / trs), 0.0)
        dx = np.where(dip + din != 0, 100 * np.abs((dip - din) / (dip + din)), 0.0)
    dip[: n + 1], din[: n + 1] = 0.0, 0.0
    pdi[n + 1:], ndi[n + 1:] = dip[n + 1:], din[n + 1:]
    if T > 2 * n - 1:
        adx[2 * n - 1] = np.ascontiguousarray(dx[n: 2 * n].T).mean(axis=1)
        for t in range(2 * n, T):
            adx[t] = ((adx[t - 1] * (n - 1)) + dx[t]) / float(n)
    return adx, pdi, ndi


def _ma_votes_2d(C: pd.DataFrame, H: pd.DataFrame, L: pd.DataFrame, V: pd.DataFrame | None,
                 lengths: np.ndarray) -> dict[str, np.ndarray]:
    c = C.to_numpy()
    rows = np.arange(len(C))[:, None]
    v = {}
    for n in MA_LENGTHS:
        v[f"SMA{n}"] = _ma_vote(c, C.rolling(window=n, min_periods=n).mean().to_numpy())
        v[f"EMA{n}"] = np.where(rows >= n - 1, _ma_vote(c, _ema(C, n).to_numpy()), np.nan)
    base = 0.5 * (H.rolling(26, min_periods=26).max() + L.rolling(26, min_periods=26).min())
    v["Ichimoku"] = _ma_vote(c, base.to_numpy())
    if V is not None:
        pv = (C * V).rolling(20).sum() / V.rolling(20).sum()
        v["VWMA20"] = _ma_vote(c, pv.to_numpy())
    else:
        v["VWMA20"] = np.full(c.shape, np.nan)
    v["HullMA9"] = _ma_vote(c, _hull_2d(c, lengths, 9))
    return v


def _osc_votes_2d(C: pd.DataFrame, H: pd.DataFrame, L: pd.DataFrame,
                  adx_di: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    c, h, lo = C.to_numpy(), H.to_numpy(), L.to_numpy()
    rows = np.arange(len(C))[:, None]
    v = {}
    rsi = _rsi(C, 14)
    v["RSI"] = _changed_vote(rsi, 30, 70)
    smin = L.rolling(14, min_periods=14).min()
    smax = H.rolling(14, min_periods=14).max()
    K = 100 * (C - smin) / (smax - smin)
    k, d = K.to_numpy(), K.rolling(3, min_periods=3).mean().to_numpy()
    v["Stoch"] = _vote((k < 20) & (k > d), (k > 80) & (k < d), ~np.isnan(k) & ~np.isnan(d))
    tp = (H + L + C) / 3.0
    cci = ((tp - tp.rolling(20, min_periods=20).mean())
           / (0.015 * pd.DataFrame(_mad(tp.to_numpy(), 20), index=C.index, columns=C.columns))).to_numpy()
    v["CCI"] = _changed_vote(cci, -100, 100)
    adx, pdi, ndi = adx_di
    ok = rows >= 2 * ADX_N - 1  # ADX needs two 14-bar smoothings
    v["ADX"] = _vote((adx > 20) & (pdi > ndi), (adx > 20) & (pdi < ndi), ok & ~np.isnan(adx))
    mp = 0.5 * (H + L)
    ao = (mp.rolling(5, min_periods=5).mean() - mp.rolling(34, min_periods=34).mean()).to_numpy()
    a1, a2 = _shift(ao, 1), _shift(ao, 2)
    buy = ((ao > 0) & (a1 <= 0)) | ((ao > 0) & (a1 > 0) & (ao > a1) & (a1 < a2))
    sell = ((ao < 0) & (a1 >= 0)) | ((ao < 0) & (a1 < 0) & (ao < a1) & (a1 > a2))
    v["AO"] = _vote(buy, sell, ~np.isnan(ao) & ~np.isnan(a2))
    mom = c - _shift(c, 10)
    pm = _shift(mom)
    v["Mom"] = _vote(mom > pm, mom < pm, ~np.isnan(mom) & ~np.isnan(pm))
    macd = _ema(C, 12) - _ema(C, 26)
    m, s = macd.to_numpy(), _ema(macd, 9).to_numpy()
    v["MACD"] = _vote(m > s, m < s, ~np.isnan(m) & ~np.isnan(s) & (rows >= 33))
    R = pd.DataFrame(rsi, index=C.index, columns=C.columns)
    lowest = R.rolling(14).min()
    srsi = (R - lowest) / (R.rolling(14).max() - lowest)
    sk_ = srsi.rolling(3).mean()
    sk, sd = sk_.to_numpy() * 100, sk_.rolling(3).mean().to_numpy() * 100
    v["StochRSI"] = _vote((sk < 20) & (sd < 20) & (sk > sd), (sk > 80) & (sd > 80) & (sk < sd),
                          ~np.isnan(sk) & ~np.isnan(sd))
    hh = H.rolling(14, min_periods=14).max()
    ll = L.rolling(14, min_periods=14).min()
    wr = (-100 * (hh - C) / (hh - ll)).to_numpy()
    v["WR"] = _changed_vote(wr, -80, -20)
    ema13 = _ema(C, 13).to_numpy()
    bull, bear = h - ema13, lo - ema13
    v["BBP"] = _vote((c > ema13) & (bear < 0) & (bear > _shift(bear)),
                     (c < ema13) & (bull > 0) & (bull < _shift(bull)), (rows >= 13) & ~np.isnan(ema13))
    cs = _shift(c)
    tr = pd.DataFrame(np.fmax(np.fmax(h - lo, np.abs(h - cs)), np.abs(lo - cs)), index=C.index, columns=C.columns)
    bp = C - pd.DataFrame(np.minimum(lo, cs), index=C.index, columns=C.columns)
    avg = [bp.rolling(n, min_periods=n).sum() / tr.rolling(n, min_periods=n).sum() for n in (7, 14, 28)]
    uo = (100.0 * ((4.0 * avg[0]) + (2.0 * avg[1]) + (1.0 * avg[2])) / (4.0 + 2.0 + 1.0)).to_numpy()
    v["UO"] = _vote(uo > 70, uo < 30, ~np.isnan(uo) & (rows >= 28))
    return v


# ---- compaction: each symbol's traded bars at the top of its column ---------------------------------

@dataclass(frozen=True)
class _Compact:
    """Moves each column's non-NaN closes to the top (in order) and back."""

    order: np.ndarray    # (T, N): original row of compacted row r, traded rows first
    lengths: np.ndarray  # (N,): traded bars per symbol

    @classmethod
    def of(cls, valid: np.ndarray) -> "_Compact":
        return cls(np.argsort(~valid, axis=0, kind="stable"), valid.sum(axis=0))

    def pack(self, a: np.ndarray) -> np.ndarray:
        out = np.take_along_axis(a, self.order, axis=0)
        out[np.arange(len(a))[:, None] >= self.lengths[None, :]] = np.nan
        return out

    def unpack(self, a: np.ndarray) -> np.ndarray:
        a = np.where(np.arange(len(a))[:, None] >= self.lengths[None, :], np.nan, a)
        out = np.empty_like(a)
        np.put_along_axis(out, self.order, a, axis=0)
        return out


def _votes_compact(c: np.ndarray, hi: np.ndarray, lo: np.ndarray, vol: np.ndarray | None,
                   lengths: np.ndarray) -> tuple[dict, dict, tuple]:
    frame = lambda a: pd.DataFrame(a)  # noqa: E731
    C, H, L = frame(c), frame(hi), frame(lo)
    V = frame(vol) if vol is not None else None
    adx_di = _adx(hi, lo, c)
    return _ma_votes_2d(C, H, L, V, lengths), _osc_votes_2d(C, H, L, adx_di), adx_di


def _derive_arrays(close: np.ndarray, high: np.ndarray | None, low: np.ndarray | None,
                   volume: np.ndarray | None) -> dict[str, np.ndarray]:
    """Every derived field on (bars x symbols) arrays; NaN on bars without a close."""
    close = np.asarray(close, dtype=np.float64)
    cp = _Compact.of(~np.isnan(close))
    c = cp.pack(close)
    hi = cp.pack(np.asarray(high, dtype=np.float64)) if high is not None else c
    lo = cp.pack(np.asarray(low, dtype=np.float64)) if low is not None else c
    vol = cp.pack(np.asarray(volume, dtype=np.float64)) if volume is not None else None
    rows = np.arange(len(c))[:, None]
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # zero ranges on flat bars divide by zero; the votes treat the resulting NaN/inf as ta does
        warnings.simplefilter("ignore", RuntimeWarning)
        ma_v, osc_v, (adx, _, _) = _votes_compact(c, hi, lo, vol, cp.lengths)
        ma = _vote_mean(list(ma_v.values()))
        osc = _vote_mean(list(osc_v.values()))
        adx = np.where(rows >= 2 * ADX_N - 1, adx, np.nan)
        prev = _shift(c)
        if high is not None and low is not None:
            vold = 100.0 * (hi - lo) / lo
        else:
            vold = 100.0 * np.abs(c / prev - 1.0)
        res = {
            "Recommend.All": _vote_mean([ma, osc]),
            "Recommend.MA": ma, "Recommend.Other": osc,
            "ROC": 100.0 * (c / _shift(c, 9) - 1.0),
            "Volatility.D": np.where(np.isnan(prev), np.nan, vold),
            "ADX": np.where(adx > 0, adx, np.nan),
            "Value.Traded": c * vol if vol is not None else np.full(c.shape, np.nan),
        }
    short = cp.lengths < 2  # as before: a symbol with fewer than 2 bars gets no field at all
    out = {}
    for f, a in res.items():
        a = np.where(short[None, :], np.nan, a)
        out[f] = cp.unpack(a)
    return out


def derive_panel(closes: pd.DataFrame, fields: dict[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """Derived fields for every symbol: ``{field: DataFrame(dates x symbols)}``.

    Computed once per panel, all symbols together; the value at date ``t`` uses bars up to ``t`` only.
    ``fields``: optional ``high``, ``low`` and ``volume`` frames (dates x symbols, aligned to ``closes``).
    """
    fields = fields or {}
    get = lambda f: (fields[f].reindex(index=closes.index, columns=closes.columns).to_numpy(dtype=np.float64)  # noqa: E731
                     if f in fields else None)
    arrays = _derive_arrays(closes.to_numpy(dtype=np.float64), get("high"), get("low"), get("volume"))
    return {f: pd.DataFrame(arrays[f], index=closes.index, columns=closes.columns) for f in DERIVED_FIELDS}


def derive_symbol(close: pd.Series, high: pd.Series | None = None, low: pd.Series | None = None,
                  volume: pd.Series | None = None) -> pd.DataFrame:
    """Every derived field of one symbol at every bar (index = the close's index)."""
    name = close.name if close.name is not None else "x"
    one = lambda s: None if s is None else s.reindex(close.index).to_frame(name)  # noqa: E731
    fields = {k: one(s) for k, s in (("high", high), ("low", low), ("volume", volume)) if s is not None}
    panel = derive_panel(close.to_frame(name), fields)
    return pd.DataFrame({f: panel[f][name] for f in DERIVED_FIELDS})


def _votes_one(close: pd.Series, high: pd.Series, low: pd.Series, volume: pd.Series | None):
    c = close.dropna()
    col = lambda s: s.reindex(c.index).to_numpy(dtype=np.float64)[:, None]  # noqa: E731
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        ma, osc, _ = _votes_compact(col(c), col(high), col(low), col(volume) if volume is not None else None,
                                    np.array([len(c)]))
    return c.index, ma, osc


def ma_votes(close: pd.Series, high: pd.Series, low: pd.Series, volume: pd.Series | None) -> pd.DataFrame:
    """Per-bar moving-average votes of one symbol (columns = MAs, values -1/0/+1/NaN)."""
    idx, ma, _ = _votes_one(close, high, low, volume)
    return pd.DataFrame({k: v[:, 0] for k, v in ma.items()}, index=idx).reindex(close.index)


def oscillator_votes(close: pd.Series, high: pd.Series, low: pd.Series) -> pd.DataFrame:
    """Per-bar oscillator votes of one symbol (columns = oscillators, values -1/0/+1/NaN)."""
    idx, _, osc = _votes_one(close, high, low, None)
    return pd.DataFrame({k: v[:, 0] for k, v in osc.items()}, index=idx).reindex(close.index)


# ---- cache of derived panels ---------------------------------------------------------------------

def bars_digest(closes: pd.DataFrame, fields: dict[str, pd.DataFrame] | None = None) -> str:
    """SHA-256 of everything a derived panel depends on: the closes, the high/low/volume frames
    (values, dates, symbols) and ``RATINGS_VERSION``."""
    h = hashlib.sha256(RATINGS_VERSION.encode())
    for name, frame in [("close", closes)] + sorted((k, v) for k, v in (fields or {}).items()
                                                     if k in ("high", "low", "volume")):
        frame = frame.reindex(index=closes.index, columns=closes.columns) if name != "close" else frame
        h.update(f"|{name}|".encode())
        h.update("\x1f".join(map(str, frame.columns)).encode())
        h.update(frame.index.as_unit("ns").asi8.tobytes())
        h.update(np.ascontiguousarray(frame.to_numpy(dtype=np.float64)).tobytes())
    return h.hexdigest()


@dataclass
class DerivedCache:
    """Derived panels on disk under ``folder``, one sub-folder per ``bars_digest`` (a Parquet file
    per field). A changed bar, symbol, date or ``RATINGS_VERSION`` is a different key, so a stale
    panel is never read; the files are written to a temporary folder and renamed, so a reader never
    sees half a panel. ``hits`` and ``misses`` count the look-ups."""

    folder: Path
    hits: int = 0
    misses: int = 0
    last_key: str | None = field(default=None, repr=False)

    def __post_init__(self):
        self.folder = Path(self.folder)

    def derive(self, closes: pd.DataFrame, fields: dict[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
        """``derive_panel(closes, fields)``, read from the cache when the same bars were derived before."""
        key = bars_digest(closes, fields)
        self.last_key = key
        path = self.folder / key
        if all((path / f"{f}.parquet").exists() for f in DERIVED_FIELDS):
            try:
                out = {f: pd.read_parquet(path / f"{f}.parquet") for f in DERIVED_FIELDS}
            except (OSError, ValueError):  # a damaged entry: derive again and overwrite it
                out = None
            if out is not None and all(o.index.equals(closes.index) and list(o.columns) == list(closes.columns)
                                       for o in out.values()):
                self.hits += 1
                return out
        self.misses += 1
        out = derive_panel(closes, fields)
        self._store(path, out)
        return out

    def _store(self, path: Path, panel: dict[str, pd.DataFrame]) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.folder))
            for f, df in panel.items():
                df.to_parquet(tmp / f"{f}.parquet")
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
            os.replace(tmp, path)
        except OSError:  # a read-only or full disk only costs the next run a derivation
            shutil.rmtree(tmp, ignore_errors=True) if "tmp" in locals() else None


def fill_missing_fields(pool: pd.DataFrame, derived: dict[str, pd.DataFrame], asof: pd.Timestamp) -> pd.DataFrame:
    """Fill a pool's missing scanner fields with the derived values as of ``asof`` (a copy).

    Only NaN cells are filled; values the snapshot carries are kept.
    """
    out = pool.copy()
    symbols = out["symbol"]
    where: tuple | None = None  # (columns, each pool row's column in them) of the last table read
    dt = symbols.dtype
    # symbol dtypes whose ``map`` gives float64 (the NA-variant pyarrow string gives an Arrow double)
    numpy_map = dt == object or (isinstance(dt, pd.StringDtype)
                                 and not (dt.storage == "pyarrow" and dt.na_value is pd.NA))
    for f in ("Recommend.All", "Recommend.MA", "ROC", "Volatility.D", "ADX", "Value.Traded"):
        frame = derived[f]
        last = _last_row(frame, asof)
        if last is None:
            continue
        if numpy_map and all(t == np.float64 for t in frame.dtypes):
            # ``symbols.map(last)``'s values: each symbol's position in the row's index (the
            # derived fields share their columns: looked up once), NaN where it has none
            if where is None or not where[0].equals(last.index):
                where = (last.index, last.index.get_indexer(symbols))
            pos = where[1]
            vals = last.to_numpy(dtype=np.float64)
            fill = pd.Series(np.where(pos >= 0, vals[pos], np.nan), index=out.index, name=symbols.name)
        else:
            fill = symbols.map(last)
        out[f] = out[f].astype(float).where(out[f].notna(), fill)
    return out


def _last_row(frame: pd.DataFrame, asof: pd.Timestamp) -> pd.Series | None:
    """``frame.loc[:asof].iloc[-1]`` (None when no row is at or before ``asof``); on a sorted
    DatetimeIndex the row position by ``searchsorted`` (``loc``'s right bound), without slicing."""
    idx = frame.index
    if (isinstance(idx, pd.DatetimeIndex) and isinstance(asof, pd.Timestamp) and idx.is_monotonic_increasing
            and (idx.tz is None) == (asof.tz is None)):
        n = int(idx.searchsorted(asof, side="right"))
        return frame.iloc[n - 1] if n else None
    table = frame.loc[:asof]
    return None if table.empty else table.iloc[-1]
