"""Independent performance metrics (numpy only) on daily simple returns.

Conventions (all inputs are daily simple returns as fractions, ``r_t >= -1``; ``periods_per_year`` =
P, 365 for crypto and 252 for exchange-traded calendars, always passed explicitly):

- ``sharpe``: ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(P)``, ``rf`` per period (default 0).
- ``sortino``: ``mean(r - rf) * P / (DD * sqrt(P))`` with empyrical's downside deviation
  ``DD = sqrt(mean(min(r - rf, 0)^2))``: the mean runs over *all* observations (days above the
  target count as 0), ddof 0, target = ``rf``.
- ``annual_volatility``: ``std(r, ddof=1) * sqrt(P)`` (fraction).
- ``max_drawdown``: most negative ``V_t / max_{s<=t} V_s - 1`` of the equity ``V`` with
  ``V_0 = 1.0`` included in the high-water mark (so a loss on day 1 is a drawdown); a number in
  ``[-1, 0]``. ``include_initial_capital=False`` gives the other convention (running max from the
  first end-of-day value), which some simulators use.
- ``cagr``: ``prod(1 + r)^(P / n) - 1`` (geometric, computed as ``expm1(P/n * sum(log1p r))``);
  ``-1`` once equity reaches 0.
- ``calmar``: ``cagr / |max_drawdown|``.
- ``hit_rate``: positive days / nonzero days (days with ``r == 0`` exactly, e.g. flat or liquidated
  days, are excluded).
- ``total_return``: ``prod(1 + r) - 1``.
- ``turnover``: target-weight turnover, ``sum_a |w_k,a - w_{k-1},a| / 2`` per rebalance ``k >= 1``
  (atoms absent from a window weigh 0), averaged over rebalances; the initial build from cash is
  not a rebalance. Drift between rebalances is ignored.

Degenerate but legal cases never return NaN or inf: the metric is ``0.0`` and
``compute_metrics`` lists a flag: ``insufficient_data`` (fewer than 2 returns for a dispersion
metric), ``zero_variance`` (all returns identical: Sharpe), ``no_downside`` (no return below the
target: Sortino), ``no_drawdown`` (Calmar), ``no_nonzero_days`` (hit rate), ``single_window``
(turnover). Empty or non-finite input, or a return below -1, raises ``DataError``.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from contracts.errors import ConfigError, DataError


def _as_returns(returns: Any) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64).ravel()
    if r.size == 0:
        raise DataError("metrics: the return series is empty")
    bad = np.flatnonzero(~np.isfinite(r))
    if bad.size:
        raise DataError(f"metrics: non-finite return at position {int(bad[0])}")
    low = np.flatnonzero(r < -1.0)
    if low.size:
        raise DataError(f"metrics: return {r[low[0]]!r} < -1 at position {int(low[0])}")
    return r


def _check_p(periods_per_year: float) -> float:
    if not (isinstance(periods_per_year, (int, float, np.integer, np.floating))
            and math.isfinite(periods_per_year) and periods_per_year > 0):
        raise ConfigError(f"periods_per_year must be a positive number, got {periods_per_year!r}")
    return float(periods_per_year)


def _sharpe(r: np.ndarray, p: float, rf: float) -> tuple[float, str | None]:
    if r.size < 2:
        return 0.0, "insufficient_data"
    x = r - rf
    if np.all(x == x[0]):
        return 0.0, "zero_variance"
    return float(x.mean() / x.std(ddof=1) * math.sqrt(p)), None


def _sortino(r: np.ndarray, p: float, rf: float) -> tuple[float, str | None]:
    if r.size < 2:
        return 0.0, "insufficient_data"
    x = r - rf
    down = np.minimum(x, 0.0)
    if not np.any(down < 0):
        return 0.0, "no_downside"
    dd = math.sqrt(float(np.mean(down * down))) * math.sqrt(p)
    return float(x.mean() * p / dd), None


def _vol(r: np.ndarray, p: float) -> tuple[float, str | None]:
    if r.size < 2:
        return 0.0, "insufficient_data"
    return float(r.std(ddof=1) * math.sqrt(p)), None


def _mdd(r: np.ndarray, include_initial_capital: bool = True) -> float:
    equity = np.cumprod(1.0 + r)
    if include_initial_capital:
        equity = np.concatenate(([1.0], equity))
    hwm = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(hwm > 0, equity / hwm - 1.0, -1.0)
    return float(max(min(dd.min(), 0.0), -1.0))


def _cagr(r: np.ndarray, p: float) -> float:
    if np.any(r == -1.0):
        return -1.0
    return float(max(math.expm1(p / r.size * float(np.sum(np.log1p(r)))), -1.0))


def _calmar(r: np.ndarray, p: float) -> tuple[float, str | None]:
    mdd = _mdd(r)
    if mdd == 0.0:
        return 0.0, "no_drawdown"
    return _cagr(r, p) / abs(mdd), None


def _hit(r: np.ndarray) -> tuple[float, str | None]:
    nz = r[r != 0.0]
    if nz.size == 0:
        return 0.0, "no_nonzero_days"
    return float(np.count_nonzero(nz > 0) / nz.size), None


def sharpe(returns: Any, periods_per_year: float, rf_per_period: float = 0.0) -> float:
    """Annualised Sharpe ratio (ddof 1); 0.0 for fewer than 2 returns or zero variance."""
    return _sharpe(_as_returns(returns), _check_p(periods_per_year), float(rf_per_period))[0]


def sortino(returns: Any, periods_per_year: float, rf_per_period: float = 0.0) -> float:
    """Annualised Sortino ratio (empyrical downside deviation); 0.0 when no return is below ``rf``."""
    return _sortino(_as_returns(returns), _check_p(periods_per_year), float(rf_per_period))[0]


def annual_volatility(returns: Any, periods_per_year: float) -> float:
    """Annualised volatility, fraction (ddof 1); 0.0 for fewer than 2 returns."""
    return _vol(_as_returns(returns), _check_p(periods_per_year))[0]


def max_drawdown(returns: Any, include_initial_capital: bool = True) -> float:
    """Maximum drawdown, a fraction in [-1, 0] (negative); high-water mark includes V_0 = 1.0."""
    return _mdd(_as_returns(returns), include_initial_capital)


def cagr(returns: Any, periods_per_year: float) -> float:
    """Geometric annual growth rate, fraction: ``prod(1+r)^(P/n) - 1``; -1 once equity hits 0."""
    return _cagr(_as_returns(returns), _check_p(periods_per_year))


def calmar(returns: Any, periods_per_year: float) -> float:
    """CAGR / |max drawdown|; 0.0 when there is no drawdown."""
    return _calmar(_as_returns(returns), _check_p(periods_per_year))[0]


def hit_rate(returns: Any) -> float:
    """Share of nonzero-return days that are positive (fraction); 0.0 with no nonzero day."""
    return _hit(_as_returns(returns))[0]


def total_return(returns: Any) -> float:
    """Compounded total return, fraction: ``prod(1 + r) - 1`` (>= -1)."""
    r = _as_returns(returns)
    return float(max(np.prod(1.0 + r) - 1.0, -1.0))


def _weight_table(weights: Sequence[Mapping[str, float]] | pd.DataFrame) -> np.ndarray:
    if isinstance(weights, pd.DataFrame):
        table = weights.fillna(0.0).to_numpy(dtype=np.float64)
    else:
        atoms = sorted({a for w in weights for a in w})
        table = np.array([[float(w.get(a, 0.0)) for a in atoms] for w in weights],
                         dtype=np.float64).reshape(len(weights), len(atoms))
    if not np.all(np.isfinite(table)):
        raise DataError("turnover: non-finite weight")
    return table


def turnover_detail(weights: Sequence[Mapping[str, float]] | pd.DataFrame) -> tuple[float, str | None]:
    """``(average one-way turnover per rebalance, flag)``; flag ``single_window`` when K < 2."""
    table = _weight_table(weights)
    if table.shape[0] < 2:
        return 0.0, "single_window"
    per = np.abs(np.diff(table, axis=0)).sum(axis=1) / 2.0
    return float(per.mean()), None


def turnover(weights: Sequence[Mapping[str, float]] | pd.DataFrame) -> float:
    """Average target-weight turnover per rebalance (fraction of portfolio value, one-way).

    ``weights``: target weights per window in window order, either a sequence of
    ``{atom_id: weight}`` or a DataFrame (rows windows, columns atoms, NaN = 0).
    """
    return turnover_detail(weights)[0]


def compute_metrics(returns: Any, periods_per_year: float, rf_per_period: float = 0.0
                    ) -> dict[str, Any]:
    """All return metrics of one series, with ``n_periods``, ``periods_per_year`` and ``flags``.

    Keys: ``total_return``, ``cagr``, ``annual_volatility``, ``sharpe``, ``sortino``,
    ``max_drawdown``, ``calmar``, ``hit_rate`` (fractions, annualised with P where stated above),
    ``flags`` (sorted ``"<metric>:<flag>"`` strings for the degenerate rules applied).
    """
    r = _as_returns(returns)
    p = _check_p(periods_per_year)
    rf = float(rf_per_period)
    flags: list[str] = []
    out: dict[str, Any] = {"n_periods": int(r.size), "periods_per_year": p,
                           "total_return": total_return(r), "cagr": _cagr(r, p)}
    for name, (value, flag) in (("annual_volatility", _vol(r, p)), ("sharpe", _sharpe(r, p, rf)),
                                ("sortino", _sortino(r, p, rf))):
        out[name] = value
        if flag:
            flags.append(f"{name}:{flag}")
    out["max_drawdown"] = _mdd(r)
    for name, (value, flag) in (("calmar", _calmar(r, p)), ("hit_rate", _hit(r))):
        out[name] = value
        if flag:
            flags.append(f"{name}:{flag}")
    out["flags"] = sorted(flags)
    return out
