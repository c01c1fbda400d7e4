"""The past-only view a selection or allocation decision receives (STYLE: past-only is a type).

``PastView.at`` cuts the panel at the window's cut-off bar (inclusive) and takes the candidate pool as
of the cut-off date, so nothing after the cut-off is reachable from the view.

The view is also the one ingestion boundary every selection engine shares (v4, its challengers, the
baselines and the frozen v3.4): a non-finite scanner field (``inf``/``-inf`` in ``Value.Traded``,
``Recommend.All``, ``Recommend.MA``, ``ROC``, ``Volatility.D``, ``ADX``) becomes missing (NaN) here,
so that both engines fire ``missing:<feature>`` on it instead of scoring it (one ``inf`` ADX used to
make every v4 alpha 0). ``non_finite`` lists what was replaced, as ``symbol:field``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from contracts.window import Window
from market.calendar import Calendar
from market.snapshots import SnapshotStore


@dataclass(frozen=True)
class PastView:
    """Data as of a window's cut-off.

    - ``closes``: every bar from the panel's start up to and including the cut-off (gates and
      features may read any past bar); ``train_closes`` is the train slice only;
    - ``pool``: the candidate pool as of the cut-off (point in time);
    - ``benchmark``: the benchmark symbol's column name in ``closes`` (or None).
    """

    window: Window
    closes: pd.DataFrame
    pool: pd.DataFrame
    calendar: Calendar
    benchmark: str | None = None
    point_in_time: bool = True
    non_finite: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        pool, found = finite_fields(self.pool)
        if found:
            object.__setattr__(self, "pool", pool)
            object.__setattr__(self, "non_finite", tuple(sorted(set(self.non_finite) | set(found))))

    @classmethod
    def at(cls, closes: pd.DataFrame, snapshots: SnapshotStore, window: Window, calendar: Calendar,
           benchmark: str | None = None) -> "PastView":
        past = closes.iloc[: window.cutoff + 1]
        return cls(window=window, closes=past, pool=snapshots.pool_as_of(past.index[-1]),
                   calendar=calendar, benchmark=benchmark, point_in_time=snapshots.point_in_time)

    @property
    def cutoff_date(self) -> pd.Timestamp:
        return self.closes.index[-1]

    @property
    def train_closes(self) -> pd.DataFrame:
        """Closes of the train slice (``train_start .. cutoff``)."""
        return self.closes.iloc[self.window.train_start:]


#: numeric scanner fields of a candidate record (``contracts.candidate``)
SCANNER_FIELDS = ("Value.Traded", "Recommend.All", "Recommend.MA", "ROC", "Volatility.D", "ADX")


def finite_fields(pool: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``pool`` with every infinite scanner field replaced by NaN (a copy when one is found), and
    the replaced entries as ``symbol:field``. Non-numeric values are left to the engines."""
    found: list[str] = []
    out = pool
    for col in SCANNER_FIELDS:
        if col not in pool.columns:
            continue
        c = pool[col]
        # a float64 column is its own ``to_numeric``: read in place
        v = c.to_numpy() if c.dtype == np.float64 else pd.to_numeric(c, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isinf(v)
        if bad.any():
            if out is pool:
                out = pool.copy()
            out[col] = np.where(bad, np.nan, v)
            syms = pool["symbol"].astype(str).to_numpy() if "symbol" in pool.columns else np.arange(len(pool))
            found += [f"{s}:{col}" for s in syms[bad]]
    return out, found
