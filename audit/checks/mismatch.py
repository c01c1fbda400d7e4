"""Metric mismatch: a simulator's own Sharpe / max drawdown / total return vs the audit's recomputation.

The recomputation follows the simulator's *stated* conventions (``SimConventions``: periods per
year, Sharpe ddof and per-period risk-free rate, whether the drawdown's high-water mark includes the
initial capital), so a convention difference is not reported as an error, while a real error is.

Tolerance (``MismatchTolerance``): ``|sim - audit| <= atol + rtol * |audit|`` with ``rtol = 1e-6``,
``atol = 1e-9`` by default. Both sides compute from the same float64 daily returns; what may differ
is summation order and, for a simulator that derives returns from portfolio values, a round trip
``v_t / v_{t-1} - 1`` of a few ulps per day, i.e. ~1e-12 relative over 10^4 days. 1e-6 leaves a wide
margin yet catches every convention slip that matters: ddof 0 vs 1 moves Sharpe by
``sqrt(n/(n-1)) - 1`` = 5e-4 at n = 1000; P 365 vs 252 by 20%.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from audit.checks.result import CheckResult, CheckStatus, make_result
from audit.metrics import _as_returns, _mdd, _sharpe, total_return

NAME = "metric_mismatch"


class SimConventions(BaseModel):
    """How the simulator computes its own metrics (defaults: contracts/schemas.py cells.parquet)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    periods_per_year: float = Field(gt=0)
    sharpe_ddof: int = Field(default=1, ge=0, le=1)
    rf_per_period: float = 0.0
    drawdown_includes_initial_capital: bool = True


class MismatchTolerance(BaseModel):
    """``|sim - audit| <= atol + rtol * |audit|`` (see the module docstring for the reasons)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rtol: float = Field(default=1e-6, ge=0)
    atol: float = Field(default=1e-9, ge=0)


def _audit_sharpe(r: np.ndarray, conv: SimConventions) -> tuple[float, str | None]:
    if conv.sharpe_ddof == 1:
        return _sharpe(r, conv.periods_per_year, conv.rf_per_period)
    x = r - conv.rf_per_period
    if r.size < 1 or np.all(x == x[0]):
        return 0.0, "zero_variance"
    return float(x.mean() / x.std(ddof=0) * math.sqrt(conv.periods_per_year)), None


def check_metric_mismatch(cell_id: str, returns: Any, *, sim_sharpe: float,
                          sim_max_drawdown: float, sim_total_return: float,
                          conventions: SimConventions,
                          tolerance: MismatchTolerance = MismatchTolerance()) -> CheckResult:
    """Compare the simulator's own metrics of one cell with the recomputation from its daily returns.

    ``returns``: the cell's stitched daily simple returns (TWR series). Status ``fail`` if any metric
    is off tolerance; ``warn`` if the simulator reports a non-finite Sharpe (NaN, or vectorbt's ``inf``
    for a constant nonzero series) where the audit's degenerate rule gives 0 (zero variance or a
    single return); ``pass`` otherwise. ``details`` lists every metric with
    ``sim``, ``audit``, ``abs_diff`` and ``ok``.
    """
    r = _as_returns(returns)
    sh, sh_flag = _audit_sharpe(r, conventions)
    audit_vals = {"sharpe": sh,
                  "max_drawdown": _mdd(r, conventions.drawdown_includes_initial_capital),
                  "total_return": total_return(r)}
    sim_vals = {"sharpe": sim_sharpe, "max_drawdown": sim_max_drawdown,
                "total_return": sim_total_return}
    status = CheckStatus.PASS
    rows: dict[str, dict[str, Any]] = {}
    for key, a in audit_vals.items():
        s = float(sim_vals[key])
        if not math.isfinite(s) and key == "sharpe" and sh_flag is not None:
            rows[key] = {"sim": s, "audit": a, "abs_diff": None, "ok": True,
                         "note": f"simulator {s!r}, audit rule {sh_flag} -> 0.0"}
            if status is CheckStatus.PASS:
                status = CheckStatus.WARN
            continue
        ok = math.isfinite(s) and abs(s - a) <= tolerance.atol + tolerance.rtol * abs(a)
        rows[key] = {"sim": s, "audit": a, "abs_diff": abs(s - a) if math.isfinite(s) else None,
                     "ok": bool(ok)}
        if not ok:
            status = CheckStatus.FAIL
    details = {"metrics": rows, "n_periods": int(r.size),
               "conventions": conventions.model_dump(), "tolerance": tolerance.model_dump()}
    return make_result(NAME, status, details, cell_id=cell_id)
