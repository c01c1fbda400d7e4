"""Sleeves on different calendars, aligned without zero-filling (issue 17). Pure functions.

Two uses, two rules:

- **Estimation** (what the meta allocator reads): ``carry_align`` puts every sleeve on the grid of the
  days on which *all* of them trade; a sleeve's returns between two grid days are compounded into the
  later one (``prod(1 + r) - 1``). A 7-day sleeve's Saturday, Sunday and Monday returns become one
  Monday return, matching a weekday sleeve's Monday return (Friday close to Monday close). Zero-filling
  instead (``zero_fill_align``: a 0 on every day a sleeve does not trade) deflates the weekday sleeve's
  daily volatility and its correlation with the 7-day sleeve (the weekend moves of one sleeve are set
  against fake zeros of the other); tests/tournament/test_meta_align.py measures both.
- **Accounting** (what the meta portfolio earns): ``nav_panel`` marks each sleeve's value on the union
  calendar (every day on which at least one sleeve trades); on a day a sleeve does not trade its value
  is unchanged (a stale mark: its market is closed, nothing is earned or lost) and its next trading
  day's return holds the move since its last close. Compounded over any span, a sleeve's marked returns
  equal its own returns exactly; no return is invented.

Dates are tz-aware UTC ``DatetimeIndex`` values; returns are daily simple returns (fractions).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def union_calendar(series: dict[str, pd.Series]) -> pd.DatetimeIndex:
    """Every date on which at least one sleeve has a return (sorted, unique)."""
    idx = None
    for s in series.values():
        i = pd.DatetimeIndex(s.index)
        idx = i if idx is None else idx.union(i)
    return idx.unique().sort_values()


def carry_align(series: dict[str, pd.Series], start: pd.Timestamp | None = None,
                end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Sleeves on their common trading days, each return compounded since the previous common day.

    Only returns dated in ``(start, end]`` are used (``start`` exclusive: a history window; None: no
    bound). The grid is the dates on which every sleeve has a return; the first grid day is dropped
    (its return would compound an interval of unknown start). Returns a dates x sleeves frame
    (columns sorted); empty when the sleeves share fewer than two days.
    """
    names = sorted(series)
    cut = {}
    for n in names:
        s = series[n].astype("float64")
        if start is not None:
            s = s[s.index > start]
        if end is not None:
            s = s[s.index <= end]
        cut[n] = s
    grid = None
    for n in names:
        grid = cut[n].index if grid is None else grid.intersection(cut[n].index)
    if grid is None or len(grid) < 2:
        return pd.DataFrame(columns=names, dtype="float64")
    grid = grid.sort_values()
    out = {}
    for n in names:
        s = cut[n]
        # the grid day each return belongs to: the first grid day at or after it
        pos = grid.searchsorted(s.index, side="left")
        keep = (pos >= 1) & (pos < len(grid))  # returns after the first grid day, up to the last
        logs = np.log1p(s.to_numpy()[keep])
        acc = np.bincount(pos[keep] - 1, weights=logs, minlength=len(grid) - 1)
        out[n] = np.expm1(acc)
    return pd.DataFrame(out, index=grid[1:], columns=names)


def zero_fill_align(series: dict[str, pd.Series]) -> pd.DataFrame:
    """The rule ``carry_align`` replaces (for comparison only): every sleeve on the union calendar with
    a 0 on the days it does not trade, over the span where all of them have returns."""
    names = sorted(series)
    lo = max(series[n].index.min() for n in names)
    hi = min(series[n].index.max() for n in names)
    cal = union_calendar(series)
    cal = cal[(cal >= lo) & (cal <= hi)]
    return pd.DataFrame({n: series[n].reindex(cal).fillna(0.0).to_numpy() for n in names}, index=cal)


def nav_panel(series: dict[str, pd.Series], calendar: pd.DatetimeIndex) -> pd.DataFrame:
    """Each sleeve's value (1.0 before its first return) on ``calendar``: its own returns compounded,
    unchanged on the days it does not trade (stale mark). A sleeve return on a date outside
    ``calendar`` is an error (the calendar must be the union of the sleeves' dates)."""
    out = {}
    for n in sorted(series):
        s = series[n].astype("float64")
        missing = s.index.difference(calendar)
        if len(missing):
            raise ValueError(f"sleeve {n}: return on {missing[0].date()} outside the meta calendar")
        r = s.reindex(calendar).fillna(0.0).to_numpy()
        out[n] = np.cumprod(1.0 + r)
    return pd.DataFrame(out, index=calendar)


def marked_returns(series: pd.Series, calendar: pd.DatetimeIndex) -> pd.Series:
    """A sleeve's returns on the union calendar with 0 on the days it does not trade (its stale mark,
    the accounting rule: what the sleeve's position earns on a closed day)."""
    return series.astype("float64").reindex(calendar).fillna(0.0)
