"""Zero bankruptcy: every cell survives every window.

Reads ``returns.parquet`` rows (validated with ``contracts.schemas.check_frame``). Per cell, in date
order, a cell fails when it is Liquidated (``liquidated`` true on some bar: named with the first such
date and window) or when its equity ``prod(1 + r)`` reaches 0 without the flag (an inconsistency,
also a failure). After liquidation, returns must be exactly 0 and the flag must stay set; a breach is
listed under ``inconsistencies``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from audit.checks.result import CheckResult, CheckStatus, make_result
from contracts.errors import DataError
from contracts.schemas import check_frame

NAME = "zero_bankruptcy"


def check_bankruptcy(returns: pd.DataFrame) -> list[CheckResult]:
    """One result per cell (sorted by cell id): ``pass`` if it survives every window, else
    ``fail`` with ``liquidated_date``, ``liquidated_window`` and ``inconsistencies``."""
    df = check_frame(returns, "returns.parquet")
    results = []
    for cell_id, g in df.groupby("cell_id", sort=True):
        g = g.sort_values("date", kind="stable")
        if g["date"].duplicated().any():
            raise DataError(f"returns.parquet: duplicate dates for cell {cell_id}")
        r = g["return"].to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(r)):
            raise DataError(f"returns.parquet: non-finite return for cell {cell_id}")
        liq = g["liquidated"].to_numpy(dtype=bool)
        dates = g["date"].to_list()
        wins = g["window"].to_numpy()
        equity = np.cumprod(1.0 + r)
        issues = []
        first = int(np.argmax(liq)) if liq.any() else None
        zero = np.flatnonzero(equity <= 0.0)
        if zero.size and (first is None or zero[0] < first):
            issues.append(f"equity reaches 0 on {dates[zero[0]].isoformat()} without the flag")
            first = int(zero[0]) if first is None else first
        if liq.any():
            i0 = int(np.argmax(liq))
            if not liq[i0:].all():
                issues.append("liquidated flag cleared after liquidation")
            if np.any(r[i0 + 1:] != 0.0):
                issues.append("nonzero return after liquidation")
        details = {"n_bars": int(r.size), "n_windows": int(np.unique(wins).size),
                   "final_equity": float(equity[-1]) if r.size else 1.0,
                   "liquidated_date": None if first is None else dates[first].isoformat(),
                   "liquidated_window": None if first is None else int(wins[first]),
                   "inconsistencies": issues}
        status = CheckStatus.FAIL if (first is not None or issues) else CheckStatus.PASS
        results.append(make_result(NAME, status, details, cell_id=str(cell_id)))
    return results
