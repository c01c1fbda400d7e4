"""The past-only view a selection or allocation decision receives (STYLE: past-only is a type).

``PastView.at`` cuts the panel at the window's cut-off bar (inclusive) and takes the candidate pool as
of the cut-off date, so nothing after the cut-off is reachable from the view.
"""
from __future__ import annotations

from dataclasses import dataclass

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
