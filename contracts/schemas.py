"""Run-directory file schemas (DESIGN section 3). Frozen: a change bumps ``SCHEMA_VERSION``.

Each Parquet file is long format. Units: returns are daily simple returns as fractions; weights are
fractions of portfolio value; units are asset units (negative = short); costs in portfolio currency
with initial capital 1.0; net exposure is a fraction of portfolio value (negative = net short).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from contracts.errors import DataError

SCHEMA_VERSION = "1.4"  # 1.1: performance_matrix.csv gains the DSR readings; 1.2: verification.parquet; 1.3: regime_labels.parquet and regimes.parquet; 1.4: meta/weights.parquet (META_SCHEMAS) and the matrix's meta column


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    dtype: str  # "string", "int64", "float64", "bool", "datetime64[ns, UTC]"
    description: str


_DIMS = [
    ColumnSpec("engine", "string", "selection engine (v4, v4:<scorer>, v3.4, raw, random, ...)"),
    ColumnSpec("profile", "string", "risk profile"),
    ColumnSpec("backend", "string", "optimiser backend (riskfolio or native)"),
    ColumnSpec("simulator", "string", "simulator (vectorbt or reference)"),
    ColumnSpec("step_size", "int64", "bars between cut-offs"),
    ColumnSpec("train_window", "int64", "bars in the train slice"),
    ColumnSpec("feature_lookback", "int64", "bars used for features"),
]

RUN_SCHEMAS: dict[str, list[ColumnSpec]] = {
    "cells.parquet": [
        ColumnSpec("cell_id", "string", "short stable id of the cell (CellKey.id)"),
        *_DIMS,
        ColumnSpec("sim_total_return", "float64", "simulator's own total return, fraction"),
        ColumnSpec("sim_sharpe", "float64", "simulator's own annualised Sharpe (rf 0, ddof 1)"),
        ColumnSpec("sim_max_drawdown", "float64", "simulator's own max drawdown, fraction, <= 0"),
        ColumnSpec("liquidated", "bool", "the cell hit the liquidation floor"),
        ColumnSpec("n_windows", "int64", "number of test windows"),
    ],
    "windows.parquet": [
        ColumnSpec("setting_id", "string", "sweep setting id (SettingKey.id)"),
        ColumnSpec("window", "int64", "window number k"),
        ColumnSpec("cutoff", "datetime64[ns, UTC]", "date of the cut-off bar"),
        ColumnSpec("fill", "datetime64[ns, UTC]", "date of the fill bar"),
        ColumnSpec("test_start", "datetime64[ns, UTC]", "first test bar"),
        ColumnSpec("test_end", "datetime64[ns, UTC]", "last test bar"),
        ColumnSpec("train_start", "datetime64[ns, UTC]", "first train bar"),
    ],
    "weights.parquet": [
        ColumnSpec("cell_id", "string", "cell id"),
        ColumnSpec("window", "int64", "window number"),
        ColumnSpec("atom_id", "string", "atom id {identity}_{logic}_{direction}"),
        ColumnSpec("symbol", "string", "physical symbol of the atom"),
        ColumnSpec("direction", "string", "LONG or SHORT"),
        ColumnSpec("weight", "float64", "target weight, fraction, >= 0, sums to 1 per cell-window"),
    ],
    "returns.parquet": [
        ColumnSpec("cell_id", "string", "cell id"),
        ColumnSpec("date", "datetime64[ns, UTC]", "bar date"),
        ColumnSpec("window", "int64", "window whose test slice holds the bar"),
        ColumnSpec("return", "float64", "daily simple return of the portfolio, fraction, >= -1"),
        ColumnSpec("liquidated", "bool", "the cell is liquidated at or before this bar"),
    ],
    "positions.parquet": [
        ColumnSpec("cell_id", "string", "cell id"),
        ColumnSpec("date", "datetime64[ns, UTC]", "bar date (rows only where units != 0 or a trade)"),
        ColumnSpec("atom_id", "string", "atom id"),
        ColumnSpec("symbol", "string", "physical symbol"),
        ColumnSpec("units", "float64", "units held after the bar's trade; SHORT atoms never > 0"),
        ColumnSpec("trade", "float64", "units traded at the bar's close (signed)"),
        ColumnSpec("cost", "float64", "fees + slippage paid at the bar, currency, initial capital 1"),
    ],
    "verification.parquet": [
        ColumnSpec("cell_id", "string", "the trial-backend cell (trial simulator) being verified"),
        ColumnSpec("window", "int64", "window number (base setting)"),
        ColumnSpec("backend", "string", "verification backend (riskfolio)"),
        ColumnSpec("reason", "string", "sample, trial_relaxed, trial_fallback or trial_inaccurate"),
        ColumnSpec("status", "string", "the verification backend's allocation status"),
        ColumnSpec("atom_id", "string", "atom id in either allocation (\"\" for an all-cash pair)"),
        ColumnSpec("weight_native", "float64", "trial backend's weight, fraction (0 if absent)"),
        ColumnSpec("weight_verify", "float64", "verification backend's weight, fraction (0 if absent)"),
        ColumnSpec("objective_native", "float64", "trial backend's objective: daily variance, or daily "
                   "Sharpe for max_sharpe (Allocation.diagnostics['objective'])"),
        ColumnSpec("objective_verify", "float64", "verification backend's objective, same definition"),
    ],
    "exposure.parquet": [
        ColumnSpec("cell_id", "string", "cell id"),
        ColumnSpec("date", "datetime64[ns, UTC]", "bar date"),
        ColumnSpec("symbol", "string", "physical symbol"),
        ColumnSpec("net_exposure", "float64", "net position value / portfolio value, signed"),
    ],
    # volatility regimes (issue 20): the label per date, then each cell's figures on each regime's days
    "regime_labels.parquet": [
        ColumnSpec("date", "datetime64[ns, UTC]", "bar date"),
        ColumnSpec("vol", "float64", "annualised realised volatility of the reference over the window "
                                     "returns before the bar, fraction"),
        ColumnSpec("cut_low", "float64", "calm/turbulent cut point: quantile of the earlier volatilities"),
        ColumnSpec("cut_high", "float64", "turbulent/crisis cut point: quantile of the earlier volatilities"),
        ColumnSpec("regime", "string", "calm, turbulent or crisis; missing when unlabelled (warm-up)"),
    ],
    "regimes.parquet": [
        ColumnSpec("cell_id", "string", "cell id"),
        ColumnSpec("regime", "string", "calm, turbulent or crisis"),
        ColumnSpec("n_days", "int64", "the cell's days labelled with the regime"),
        ColumnSpec("sharpe", "float64", "annualised Sharpe on those days (rf 0, ddof 1); NaN if too few"),
        ColumnSpec("sharpe_ci_low", "float64", "stationary-bootstrap CI low (1 - alpha)"),
        ColumnSpec("sharpe_ci_high", "float64", "stationary-bootstrap CI high (1 - alpha)"),
        ColumnSpec("annual_volatility", "float64", "std(ddof 1) * sqrt(P) on those days, fraction"),
        ColumnSpec("max_drawdown", "float64", "of the equity compounded over those days only, fraction, <= 0"),
        ColumnSpec("status", "string", "ok, degenerate (constant returns) or too_few_days"),
    ],
}

#: files of a run with a ``meta:`` block only (issue 17)
META_SCHEMAS: dict[str, list[ColumnSpec]] = {
    # the meta allocator's decisions (tournament.meta), one row per allocator, window and sleeve
    "meta/weights.parquet": [
        ColumnSpec("allocator", "string", "meta allocator: equal_weight, inverse_vol, hrp or min_variance"),
        ColumnSpec("window", "int64", "meta window k"),
        ColumnSpec("cutoff", "datetime64[ns, UTC]", "meta cut-off day: the decision reads returns up to its close"),
        ColumnSpec("fill", "datetime64[ns, UTC]", "day whose close the weights fill at (cut-off + gap)"),
        ColumnSpec("test_start", "datetime64[ns, UTC]", "first test day of the window"),
        ColumnSpec("test_end", "datetime64[ns, UTC]", "last test day of the window"),
        ColumnSpec("sleeve", "string", "sleeve name"),
        ColumnSpec("weight", "float64", "target weight, fraction of the meta portfolio's value, >= 0"),
        ColumnSpec("eligible", "bool", "the sleeve had min_history OOS returns at the cut-off"),
        ColumnSpec("n_history", "int64", "the sleeve's OOS returns dated at or before the cut-off"),
        ColumnSpec("n_obs", "int64", "common-grid observations the estimator read (0: none needed)"),
    ],
}


def _as_string(s: pd.Series) -> pd.Series:
    """``s.astype("string")``; a categorical is cast through its categories (then a take by code), which
    is the same result without converting every row's label separately."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = pd.array(s.cat.categories.astype(object), dtype="string")
        return pd.Series(cats.take(s.cat.codes.to_numpy(), allow_fill=True), index=s.index, name=s.name)
    return s.astype("string")


def check_frame(df: pd.DataFrame, file: str) -> pd.DataFrame:
    """Check ``df`` against the schema of ``file``: same columns in order, compatible dtypes.

    Returns ``df`` with the documented dtypes (cast where lossless) and a fresh ``RangeIndex`` (rows
    kept by position, whatever ``df``'s labels). Raises ``DataError`` naming the file and column.
    """
    spec = RUN_SCHEMAS[file] if file in RUN_SCHEMAS else META_SCHEMAS[file]
    names = [c.name for c in spec]
    if list(df.columns) != names:
        raise DataError(f"{file}: columns {list(df.columns)} != schema {names}")
    out = {}
    for c in spec:
        s = df[c.name]
        try:
            if c.dtype == "string":
                out[c.name] = _as_string(s)
            elif c.dtype.startswith("datetime64"):
                if not isinstance(s.dtype, pd.DatetimeTZDtype):
                    raise TypeError("not tz-aware")
                out[c.name] = s.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
            else:
                out[c.name] = s.astype(c.dtype)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{file}: column {c.name!r} is not {c.dtype}: {exc}") from exc
    # by position: a frame sliced from a larger one keeps its row labels, which must not align
    return pd.DataFrame({k: v.reset_index(drop=True) for k, v in out.items()}, index=pd.RangeIndex(len(df)))
