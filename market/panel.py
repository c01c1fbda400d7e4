"""Price panel validation and returns.

A panel is a DataFrame of daily closes: tz-aware UTC ``DatetimeIndex`` (strictly increasing, unique),
one column per symbol, prices > 0, except that 0 may be a symbol's final price (it went bust); NaN only
before a symbol's first price or after its last. Returns are simple returns.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from contracts.errors import DataError


def validate_panel(closes: pd.DataFrame, source: str = "panel") -> pd.DataFrame:
    """Validate a close panel and return it (float64, index in UTC).

    Raises ``DataError`` naming ``source``, the symbol and the date at fault.
    """
    if not isinstance(closes, pd.DataFrame):
        raise DataError(f"{source}: expected a DataFrame of closes, got {type(closes).__name__}")
    idx = closes.index
    if not isinstance(idx, pd.DatetimeIndex):
        raise DataError(f"{source}: index is not a DatetimeIndex")
    if idx.tz is None:
        raise DataError(f"{source}: dates are not timezone-aware (expected UTC)")
    if closes.shape[1] == 0 or len(idx) == 0:
        raise DataError(f"{source}: the panel is empty")
    dup = idx[idx.duplicated()]
    if len(dup):
        raise DataError(f"{source}: duplicate date {dup[0].date()}")
    if not idx.is_monotonic_increasing:
        bad = int(np.argmax(np.diff(idx.asi8) < 0)) + 1
        raise DataError(f"{source}: dates not increasing at {idx[bad].date()} (after {idx[bad - 1].date()})")
    cols = closes.columns
    if cols.duplicated().any():
        raise DataError(f"{source}: duplicate symbol {cols[cols.duplicated()][0]!r}")
    try:
        values = closes.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{source}: non-numeric prices ({exc})") from exc
    # the columns that break a rule, found for every column at once (``_faulty``); each of those, in
    # column order, is checked as before, so the first one raises the error it always raised
    for j in np.flatnonzero(_faulty(values)):
        _check_column(values[:, j], idx, f"{source}: symbol {cols[j]!r}")
    out = pd.DataFrame(values, index=idx.tz_convert("UTC").as_unit("ns"), columns=[str(c) for c in cols])
    out.index.name = "date"
    return out


def _faulty(values: np.ndarray) -> np.ndarray:
    """Per column of ``values`` (bars x columns): whether ``_check_column`` raises for it, i.e. it
    holds an infinite or a negative price, no price at all, a missing price between its first and
    last prices, or a 0 before its last price (tests/market/test_panel.py compares column by
    column with ``_check_column`` on random panels)."""
    n = values.shape[0]
    finite = ~np.isnan(values)  # as in _check_column: an infinite value counts here, and raises anyway
    any_finite = finite.any(axis=0)
    first = np.argmax(finite, axis=0)
    last = n - 1 - np.argmax(finite[::-1], axis=0)
    with np.errstate(invalid="ignore"):
        bad = (np.isinf(values) | (finite & (values < 0))).any(axis=0)
        gap = finite.sum(axis=0) != (last - first + 1)
        zero_early = (finite & (values == 0) & (np.arange(n)[:, None] < last[None, :])).any(axis=0)
    return ~any_finite | bad | gap | zero_early


def _check_column(v: np.ndarray, idx: pd.DatetimeIndex, where: str) -> None:
    if np.isinf(v).any():
        raise DataError(f"{where}: infinite price on {idx[int(np.argmax(np.isinf(v)))].date()}")
    finite = ~np.isnan(v)
    if not finite.any():
        raise DataError(f"{where}: no price at all")
    neg = finite & (v < 0)
    if neg.any():
        raise DataError(f"{where}: negative price on {idx[int(np.argmax(neg))].date()}")
    first = int(np.argmax(finite))
    last = len(v) - 1 - int(np.argmax(finite[::-1]))
    gaps = ~finite[first:last + 1]
    if gaps.any():
        raise DataError(f"{where}: missing price on {idx[first + int(np.argmax(gaps))].date()} "
                        "between its first and last prices")
    zero = finite & (v == 0)
    if zero.any():
        z = int(np.argmax(zero))
        if z != last:
            raise DataError(f"{where}: price 0 on {idx[z].date()} followed by more prices "
                            "(0 may only be a final price)")


def simple_returns(closes: pd.DataFrame) -> pd.DataFrame:
    """Daily simple returns ``close_t / close_{t-1} - 1``; NaN where either close is missing.

    A move to a final price of 0 gives -1. The first bar is NaN.
    """
    v = closes.to_numpy(dtype=np.float64)
    r = np.full_like(v, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        r[1:] = v[1:] / v[:-1] - 1.0
    r[1:][v[:-1] == 0] = np.nan  # nothing trades after a bust
    return pd.DataFrame(r, index=closes.index, columns=closes.columns)
