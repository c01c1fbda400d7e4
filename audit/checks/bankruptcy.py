"""Zero bankruptcy: every cell survives every window.

Reads ``returns.parquet`` rows (validated with ``contracts.schemas.check_frame``). Per cell, in date
order, the equity ``V_t = prod(1 + r)`` is recomputed from the returns alone, with its drawdown
``V_t / H_t - 1`` from the high-water mark ``H_t = max(1.0, V_1..V_t)`` (initial capital included, the
floor's convention in DESIGN section 4). A cell fails when it reached the liquidation floor
(``drawdown <= liquidation_floor + FLOOR_TOL``; for the default floor -1.0 that is equity at 0) or is
flagged ``liquidated``: the result names the first such date and window. It is inconsistent (also
listed, also a failure) when the flag and the recomputed equity disagree: the floor reached without
the flag (or before it), the flag set on a bar whose equity is above the floor, the flag cleared
after liquidation, or a nonzero return after it. The flag is never trusted on its own.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from audit.checks.result import CheckResult, CheckStatus, make_result
from contracts.errors import ConfigError, DataError
from contracts.schemas import check_frame

NAME = "zero_bankruptcy"
#: the simulator cuts the liquidation bar's return so that equity lands on the floor; recomputing
#: that level from the stitched returns rounds by a few ulps, so a drawdown within 1e-9 of the floor
#: counts as having reached it (a real path above the floor is never that close by accident).
FLOOR_TOL = 1e-9


def check_bankruptcy(returns: pd.DataFrame, liquidation_floor: float = -1.0) -> list[CheckResult]:
    """One result per cell (sorted by cell id): ``pass`` if it survives every window, else
    ``fail`` with ``liquidated_date``, ``liquidated_window``, ``min_drawdown`` and ``inconsistencies``.
    ``liquidation_floor``: the run's floor, a drawdown in ``[-1, 0)`` (negative fraction)."""
    if not (-1.0 <= liquidation_floor < 0.0):
        raise ConfigError(f"liquidation_floor must be in [-1, 0), got {liquidation_floor!r}")
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
        hwm = np.maximum.accumulate(np.maximum(equity, 1.0))
        dd = equity / hwm - 1.0
        reached = dd <= liquidation_floor + FLOOR_TOL
        issues = []
        flag = int(np.argmax(liq)) if liq.any() else None
        breach = int(np.argmax(reached)) if reached.any() else None
        if breach is not None and (flag is None or breach < flag):
            issues.append(f"equity reaches the floor ({liquidation_floor:g}) on {dates[breach].isoformat()} "
                          f"(drawdown {dd[breach]:.6g}) without the flag")
        if flag is not None and (breach is None or flag < breach):
            issues.append(f"liquidated flag set on {dates[flag].isoformat()} with drawdown {dd[flag]:.6g} "
                          f"above the floor {liquidation_floor:g}")
        first = min(x for x in (flag, breach) if x is not None) if (flag, breach) != (None, None) else None
        if flag is not None:
            if not liq[flag:].all():
                issues.append("liquidated flag cleared after liquidation")
            if np.any(r[flag + 1:] != 0.0):
                issues.append("nonzero return after liquidation")
        details = {"n_bars": int(r.size), "n_windows": int(np.unique(wins).size),
                   "final_equity": float(equity[-1]) if r.size else 1.0,
                   "min_drawdown": float(dd.min()) if r.size else 0.0,
                   "liquidation_floor": float(liquidation_floor),
                   "liquidated_date": None if first is None else dates[first].isoformat(),
                   "liquidated_window": None if first is None else int(wins[first]),
                   "inconsistencies": issues}
        status = CheckStatus.FAIL if (first is not None or issues) else CheckStatus.PASS
        results.append(make_result(NAME, status, details, cell_id=str(cell_id)))
    return results
