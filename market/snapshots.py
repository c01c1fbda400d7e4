"""Point-in-time candidate pools from dated scanner snapshots.

A snapshot is the pool as of its date. ``SnapshotStore.pool_as_of(t)`` returns the latest snapshot
dated at or before ``t`` (never a later one). A store built from one undated export is flagged
``point_in_time = False``: it is used for every window, and the ledger and the report say that it
carries look-ahead and survivorship risk.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from contracts.candidate import CANDIDATE_COLUMNS
from contracts.errors import DataError


@dataclass(frozen=True)
class SnapshotStore:
    """Dated pools. ``frames`` maps a UTC date to a pool DataFrame with ``CANDIDATE_COLUMNS``."""

    frames: dict[pd.Timestamp, pd.DataFrame]
    point_in_time: bool = True
    source: str = "snapshots"
    digests: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.frames:
            raise DataError(f"{self.source}: no candidate snapshot")
        for d, f in self.frames.items():
            missing = [c for c in CANDIDATE_COLUMNS if c not in f.columns]
            if missing:
                raise DataError(f"{self.source}: snapshot {d.date()} lacks columns {missing}")

    @property
    def dates(self) -> list[pd.Timestamp]:
        return sorted(self.frames)

    def pool_as_of(self, t: pd.Timestamp) -> pd.DataFrame:
        """The pool from the latest snapshot dated at or before ``t`` (a copy).

        An undated store (``point_in_time=False``) returns its only export for every ``t``.
        Raises ``DataError`` when no snapshot is dated at or before ``t``.
        """
        if not self.point_in_time:
            return next(iter(self.frames.values())).copy()
        dates = self.dates
        pos = int(np.searchsorted(np.array([d.value for d in dates]), pd.Timestamp(t).value, side="right")) - 1
        if pos < 0:
            raise DataError(f"{self.source}: no candidate snapshot dated at or before {pd.Timestamp(t).date()}"
                            f" (first is {dates[0].date()})")
        return self.frames[dates[pos]].copy()

    def symbols(self) -> set[str]:
        out: set[str] = set()
        for f in self.frames.values():
            out.update(f["symbol"].astype(str))
        return out
