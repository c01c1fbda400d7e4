"""Vectorised feature kernels (SELECTION_SPEC section 2): pure functions over a matrix.

Every kernel takes ``x`` of shape (bars, candidates) holding direction-adjusted daily simple returns
(NaN before listing / after delisting) and returns one value per candidate, computed by whole-matrix
numpy operations: no Python loop over candidates. Rules for degenerate cases are stated per kernel;
none returns a silent NaN where the spec gives a value. The per-column loop twins live in the tests
and in ``benchmarks/selection.py``.
"""
from __future__ import annotations

import numpy as np

EFFICIENCY_MIN_VALUES = 10
EFFICIENCY_PATH_EPS = 1e-12  # a path (sum |x|) below this is "~0": efficiency 0
HURST_MIN_VALUES = 32
HURST_FIRST_LAG = 8
CVAR_MIN_VALUES = 20  # cvar = -0.1 and tail_gain = 0 with <= 20 values
CVAR_DEFAULT = -0.1
STABILITY_EPS = 1e-9


def counts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of valid values, number of valid values per column)."""
    m = ~np.isnan(x)
    return m, m.sum(axis=0)


def constant(x: np.ndarray) -> np.ndarray:
    """Columns whose valid values are all equal (or that have none): their spread is exactly 0,
    whatever the rounding of a computed mean."""
    hi = np.where(np.isnan(x), -np.inf, x).max(axis=0, initial=-np.inf)
    lo = np.where(np.isnan(x), np.inf, x).min(axis=0, initial=np.inf)
    return ~(hi > lo)


def mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN-skipping mean (NaN when no value) and std ddof=1 (NaN with fewer than 2 values; exactly
    0 for a constant column)."""
    m, n = counts(x)
    x0 = np.where(m, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, x0.sum(axis=0) / n, np.nan)
        dev = np.where(m, x - np.where(n > 0, mean, 0.0), 0.0)
        var = np.where(n > 1, (dev * dev).sum(axis=0) / (n - 1), np.nan)
    var = np.where(constant(x) & (n > 1), 0.0, var)
    return mean, np.sqrt(var)


def momentum(x: np.ndarray, periods_per_year: int) -> np.ndarray:
    """Annualised arithmetic mean ``mean(x) * P`` (NaN when no value)."""
    return mean_std(x)[0] * periods_per_year


def volatility(x: np.ndarray, periods_per_year: int) -> np.ndarray:
    """Annualised volatility ``std(x, ddof=1) * sqrt(P)`` (NaN with fewer than 2 values)."""
    return mean_std(x)[1] * np.sqrt(periods_per_year)


def stability(x: np.ndarray, periods_per_year: int) -> np.ndarray:
    """``1 / (annualised volatility + 1e-9)``; NaN with fewer than 2 values."""
    return 1.0 / (volatility(x, periods_per_year) + STABILITY_EPS)


def efficiency(x: np.ndarray) -> np.ndarray:
    """Kaufman efficiency ``|sum x| / sum |x|``; NaN with fewer than 10 values; 0 when the path
    ``sum |x|`` is below 1e-12."""
    m, n = counts(x)
    x0 = np.where(m, x, 0.0)
    path = np.abs(x0).sum(axis=0)
    net = np.abs(x0.sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = np.where(path < EFFICIENCY_PATH_EPS, 0.0, net / path)
    return np.where(n < EFFICIENCY_MIN_VALUES, np.nan, eff)


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Biased sample skewness and Fisher excess kurtosis (scipy's defaults).

    Both are 0 with <= 2 values, and 0 when the values are constant (zero variance; scipy would give
    NaN there).
    """
    m, n = counts(x)
    mean = mean_std(x)[0]
    dev = np.where(m, x - np.where(n > 0, mean, 0.0), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        d2 = dev * dev
        m2 = d2.sum(axis=0) / n
        m3 = (d2 * dev).sum(axis=0) / n
        m4 = (d2 * d2).sum(axis=0) / n
        ok = (n > 2) & (m2 > 0) & ~constant(x)
        skew = np.where(ok, m3 / m2 ** 1.5, 0.0)
        kurt = np.where(ok, m4 / (m2 * m2) - 3.0, 0.0)
    return skew, kurt


def _sorted_quantile(s: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` of each column of ``s`` (sorted ascending, NaN last) over its first ``n`` rows.

    Numpy's default 'linear' method, including its lerp form, so values equal ``np.quantile``.
    """
    h = (np.maximum(n, 1) - 1) * q
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n, 1) - 1)
    cols = np.arange(s.shape[1])
    a, b = s[lo, cols], s[hi, cols]
    t = h - lo
    diff = b - a
    out = a + diff * t
    return np.where(t >= 0.5, b - diff * (1.0 - t), out)


def tails(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cvar, tail_gain): mean of x at or below its 5% quantile, mean of x above its 95% quantile.

    Quantiles by linear interpolation. With <= 20 values: cvar = -0.1 and tail_gain = 0. No value
    strictly above the 95% quantile (ties at the top): tail_gain = 0.
    """
    m, n = counts(x)
    if x.shape[0] == 0:
        return np.full(x.shape[1], CVAR_DEFAULT), np.zeros(x.shape[1])
    s = np.sort(x, axis=0)  # NaN last
    q05 = _sorted_quantile(s, n, 0.05)
    q95 = _sorted_quantile(s, n, 0.95)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = m & (x <= q05)
        high = m & (x > q95)
        x0 = np.where(m, x, 0.0)
        n_low, n_high = low.sum(axis=0), high.sum(axis=0)
        cvar = np.where(n_low > 0, np.where(low, x0, 0.0).sum(axis=0) / n_low, CVAR_DEFAULT)
        gain = np.where(n_high > 0, np.where(high, x0, 0.0).sum(axis=0) / n_high, 0.0)
    few = n <= CVAR_MIN_VALUES
    return np.where(few, CVAR_DEFAULT, cvar), np.where(few, 0.0, gain)


def pack_valid(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move each column's valid values to the top, in their order; NaN below. Returns (packed, n)."""
    nan = np.isnan(x)
    order = np.argsort(nan, axis=0, kind="stable")
    return np.take_along_axis(x, order, axis=0), (~nan).sum(axis=0)


def hurst(x: np.ndarray) -> np.ndarray:
    """Rescaled-range Hurst exponent per column, clipped to [0, 1].

    On the column's valid values in order (``y``, ``n`` of them): for lags 8, 16, 32, ... with
    ``lag <= n / 2``, cut ``y`` into ``n // lag`` non-overlapping blocks from its start (the remainder
    at the end is unused); per block ``R`` = max - min of the cumulative sums of the demeaned block,
    ``S`` = its std (ddof 0); a constant block (``S = 0``) is skipped; the lag's value is the mean ``R/S``.
    ``H`` = OLS slope of ``ln(mean R/S)`` on ``ln(lag)`` over the lags with a value. 0.5 when
    ``n < 32`` or fewer than two lags have a value. Vectorised by reshaping into blocks per lag.
    """
    packed, n = pack_valid(x)
    rows, k = packed.shape
    sw = np.zeros(k)
    sx = np.zeros(k)
    sy = np.zeros(k)
    sxx = np.zeros(k)
    sxy = np.zeros(k)
    lag = HURST_FIRST_LAG
    while lag <= rows // 2:
        nb = rows // lag
        blocks = packed[: nb * lag].reshape(nb, lag, k)
        valid = (np.arange(nb)[:, None] + 1) * lag <= n[None, :]  # (nb, k): block fully inside y
        b = np.where(valid[:, None, :], blocks, 0.0)
        dev = b - b.mean(axis=1, keepdims=True)
        cum = np.cumsum(dev, axis=1)
        r = cum.max(axis=1) - cum.min(axis=1)
        s = np.sqrt((dev * dev).mean(axis=1))
        flat = b.max(axis=1) == b.min(axis=1)  # constant block: S is exactly 0
        ok = valid & (s > 0) & ~flat
        with np.errstate(invalid="ignore", divide="ignore"):
            rs = np.where(ok, r / np.where(ok, s, 1.0), 0.0)
            n_ok = ok.sum(axis=0)
            mean_rs = rs.sum(axis=0) / np.maximum(n_ok, 1)
        use = (lag <= n / 2) & (n_ok > 0) & (mean_rs > 0)
        lx = np.log(lag)
        ly = np.log(np.where(use, mean_rs, 1.0))
        w = use.astype(np.float64)
        sw += w
        sx += w * lx
        sy += w * ly
        sxx += w * lx * lx
        sxy += w * lx * ly
        lag *= 2
    den = sw * sxx - sx * sx
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where((sw >= 2) & (den > 0), (sw * sxy - sx * sy) / np.where(den > 0, den, 1.0), 0.5)
    slope = np.where(n < HURST_MIN_VALUES, 0.5, slope)
    return np.clip(slope, 0.0, 1.0)


def hurst_clean(h: np.ndarray) -> np.ndarray:
    """``clip(1 - 2 |H - 0.5|, 0, 1)``: 1 for a random walk, 0 at H = 0 or 1."""
    return np.clip(1.0 - 2.0 * np.abs(h - 0.5), 0.0, 1.0)


def minmax(v: np.ndarray) -> np.ndarray:
    """Min-max scaling across the pool, NaN skipped (NaN stays NaN); 0 when the range is 0."""
    fin = np.isfinite(v)
    if not fin.any():
        return np.full(v.shape, np.nan)
    lo, hi = v[fin].min(), v[fin].max()
    if hi - lo <= 0:
        return np.where(fin, 0.0, np.nan)
    return (v - lo) / (hi - lo)


def antifragility(skew: np.ndarray, tail_gain: np.ndarray, n_valid: np.ndarray,
                  periods_per_year: int) -> np.ndarray:
    """``(minmax(skew) + minmax(tail_gain)) * min(1, n_valid / P)``, min-max across the pool."""
    return (minmax(skew) + minmax(tail_gain)) * np.minimum(1.0, n_valid / periods_per_year)


def fragility(af: np.ndarray, cvar: np.ndarray) -> np.ndarray:
    """``(1 - AF / max AF) + |cvar| / max |cvar|`` across the pool (NaN skipped).

    When ``max AF <= 0`` the first term is 1; when ``max |cvar| = 0`` the second term is 0.
    """
    fin = np.isfinite(af)
    amax = af[fin].max() if fin.any() else np.nan
    first = 1.0 - af / amax if np.isfinite(amax) and amax > 0 else np.where(fin, 1.0, np.nan)
    c = np.abs(cvar)
    cfin = np.isfinite(c)
    cmax = c[cfin].max() if cfin.any() else 0.0
    second = c / cmax if cmax > 0 else np.where(cfin, 0.0, np.nan)
    return first + second
