"""Turn a simulator's raw arrays into the run-directory frames (contracts.schemas) and events."""
from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np
import pandas as pd

from contracts.schemas import check_frame
from simulation.floor import floored_returns
from simulation.reference import RawRun
from simulation.schedule import Batch


@dataclass
class SimulationResult:
    """Output of ``simulate``.

    - ``returns``: RUN_SCHEMAS["returns.parquet"] (daily simple returns of each cell's test bars,
      stitched over windows: the cell's TWR series);
    - ``positions``: RUN_SCHEMAS["positions.parquet"] (rows where units != 0 or a trade happened);
    - ``exposure``: RUN_SCHEMAS["exposure.parquet"] (net position value / end-of-bar portfolio value per
      symbol, rows where an atom holds the symbol);
    - ``summary``: one row per cell: cell_id, sim_total_return, sim_sharpe, sim_max_drawdown (<= 0),
      liquidated, n_windows; conventions in ``simulate``'s docstring;
    - ``events``: JSON-ready dicts for the ledger, ``type`` in {"liquidation", "delisting_close",
      "bust_close"}, with ``cell_id``, ``date`` (ISO, UTC), ``bar`` (panel row); a liquidation has
      ``equity`` (the floor equity, initial capital 1.0); a close has ``atom_id``, ``symbol``, ``units``
      (held before the close) and ``price`` (the last price, or 0 for a bust).
    """

    kind: str
    returns: pd.DataFrame
    positions: pd.DataFrame
    exposure: pd.DataFrame
    summary: pd.DataFrame
    events: list[dict] = field(default_factory=list)


@dataclass
class BatchFrames:
    """Rows of one batch as numpy columns, keyed by the schema's column names in schema order: label
    columns (``cell_id``, ``atom_id``, ``symbol``) as codes into the run-wide ``Labels``, ``date`` as
    int64 nanoseconds since the epoch (UTC). ``long_frames`` joins the batches into the checked frames."""

    returns: dict[str, np.ndarray]
    positions: dict[str, np.ndarray]
    exposure: dict[str, np.ndarray]
    events: list[dict]
    liq_rows: dict[int, int]


@dataclass(frozen=True)
class Labels:
    """Run-wide categories of the label columns: cell ids, atom ids and symbols (each sorted, unique)."""

    cells: pd.Index
    atoms: pd.Index
    symbols: pd.Index


def _strings(codes: np.ndarray, cats: pd.Index) -> pd.api.extensions.ExtensionArray:
    """``cats[codes]`` as the schema's ``string`` column (pandas' pyarrow-backed ``StringDtype``, one
    ``large_string`` chunk without nulls: what ``astype("string")`` of the labels gives), by one Arrow
    take on the categories (a plain array, not a chunked one)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dictionary = pa.array([str(c) for c in cats], type=pa.large_string())
    taken = pc.take(dictionary, pa.array(np.ascontiguousarray(codes, dtype=np.int64)))
    return pd.arrays.ArrowStringArray(pa.chunked_array([taken], type=pa.large_string()))


def long_frames(parts: list[BatchFrames], labels: Labels) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Returns, positions and exposure frames of all batches, in batch order (schema column order and
    dtypes: labels as strings, dates as ``datetime64[ns, UTC]``); each column is joined once."""
    cats = {"cell_id": labels.cells, "atom_id": labels.atoms, "symbol": labels.symbols}
    out = []
    for name in ("returns", "positions", "exposure"):
        cols = {}
        for c in getattr(parts[0], name):
            v = np.concatenate([getattr(p, name)[c] for p in parts])
            if c in cats:
                v = _strings(v, cats[c])
            elif c == "date":
                v = pd.DatetimeIndex(v, dtype=pd.DatetimeTZDtype("ns", "UTC"))
            cols[c] = v
        out.append(pd.DataFrame(cols, copy=False))
    return out[0], out[1], out[2]


def cell_returns(batch: Batch, run: RawRun, floor: float) -> tuple[list[np.ndarray], dict[int, int]]:
    """Floored daily returns per cell (rows start_row+1 .. end_row) and liquidation rows."""
    out, liq_rows = [], {}
    for g in range(len(batch.cell_ids)):
        s, e = int(batch.start_row[g]), int(batch.end_row[g])
        r, liq = floored_returns(run.values[s:e + 1, g], floor)
        out.append(r)
        if liq >= 0:
            liq_rows[g] = s + 1 + liq
    return out, liq_rows


def _close_events(batch: Batch, run: RawRun, g: int, lo: int, hi: int, s: int, e: int) -> list[dict]:
    """Delisting and bust closes of cell ``g`` (columns ``lo:hi``, rows ``s..e``) where units were held."""
    events = []
    for kind, rowarr in (("delisting_close", batch.delist_row), ("bust_close", batch.bust_row)):
        b = rowarr[lo:hi]
        for k in np.flatnonzero((b >= s) & (b <= e)):
            j, bk = lo + k, int(b[k])
            held = run.unit_at(bk - 1, j) if bk > 0 else 0.0
            if held != 0:
                events.append({"type": kind, "cell_id": batch.cell_ids[g], "atom_id": batch.col_atom[j],
                               "symbol": batch.col_symbol[j], "date": batch.dates[bk].isoformat(),
                               "bar": batch.b0 + bk, "units": float(held),
                               "price": float(batch.sym_price[bk, batch.col_sym[j]])})
    return events


@numba.njit(cache=True)
def _sum_like_numpy(buf, n):  # pragma: no cover - compiled
    """``buf[0] + pairwise_sum(buf[1:n])``: the float order of ``np.add.reduceat`` over a contiguous run
    (numpy's pairwise sum: from -0.0 one by one below 8 terms, 8 partial sums up to 128; the exposure of
    a symbol has at most one column per atom id on it, 8 for the generated ids, far below 128)."""
    m = n - 1
    if m < 8:
        res = -0.0
        for i in range(1, n):
            res += buf[i]
    else:
        r = np.empty(8)
        for q in range(8):
            r[q] = buf[1 + q]
        i = 8
        while i < m - (m % 8):
            for q in range(8):
                r[q] += buf[1 + i + q]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < m:
            res += buf[1 + i]
            i += 1
    return buf[0] + res if n > 1 else buf[0]


@numba.njit(cache=True)
def _long_rows_nb(units, dense, slot_col, slo, shi, o_row, o_col, o_trade, o_cost, cgrp, price, col_sym, values,
                  lo, hi, start, end, perm, run_lo, sym):  # pragma: no cover - compiled
    """Positions and exposure rows of a batch, each ordered by cell, row, then column or symbol.

    Cell ``g`` spans columns ``lo[g]:hi[g]`` and rows ``start[g]..end[g]`` (``cgrp``: cell of each
    column). Units: with ``dense``, ``units[i, j]`` per logical column; otherwise per slot, cell ``g``'s
    slots ``slo[g]:shi[g]`` carrying logical column ``slot_col[i, s]`` (-1: idle; a column in no slot
    holds 0): each row of a cell is first written into a buffer of its columns. Positions: (cell, row,
    column, units, trade, cost) where units != 0 or a trade happened; trades and costs are the order
    records ``o_*`` (sorted by cell, row, column, unique (row, column); 0 where there is none), merged
    into the scan in that order. Exposure: (cell, row, symbol code, net exposure) where some column of
    the cell on the symbol holds units; ``perm`` lists each cell's columns by symbol code (stable), cut
    into runs of one symbol at ``run_lo`` (run ``r`` is ``perm[run_lo[r]:run_lo[r+1]]``; a cell's runs
    are contiguous and cover ``lo[g]:hi[g]``), ``sym``: symbol code per column. Net exposure: the run's
    ``units * price`` summed in run order with the float order of ``np.add.reduceat``
    (``_sum_like_numpy``), / the cell's end-of-bar value ``values[row, g]``; the price of column ``j``
    at row ``i`` is ``price[i, col_sym[j]]`` (``Batch.sym_price``).
    """
    n_held = 0
    width = 1
    for g in range(len(lo)):
        width = max(width, hi[g] - lo[g])
        for i in range(start[g], end[g] + 1):
            if dense:
                for j in range(lo[g], hi[g]):
                    n_held += units[i, j] != 0.0
            else:
                for s in range(slo[g], shi[g]):
                    n_held += (slot_col[i, s] >= 0) & (units[i, s] != 0.0)
    n_pos = n_held + len(o_row)           # an upper bound: every record may add a row
    p_cell = np.empty(n_pos, np.int64)
    p_row = np.empty(n_pos, np.int64)
    p_col = np.empty(n_pos, np.int64)
    p_u = np.empty(n_pos)
    p_t = np.empty(n_pos)
    p_c = np.empty(n_pos)
    x_cell = np.empty(n_held, np.int64)   # at most one exposure row per held (row, column)
    x_row = np.empty(n_held, np.int64)
    x_sym = np.empty(n_held, np.int64)
    x_net = np.empty(n_held)
    buf = np.empty(max(len(perm), 1))
    ru = np.zeros(width)                  # the units of one row of one cell, by column - lo[g]
    k = 0
    m = 0
    r0 = 0
    o = 0                                 # next order record
    n_ord = len(o_row)
    for g in range(len(lo)):
        r1 = r0
        while r1 < len(run_lo) - 1 and run_lo[r1] < hi[g]:
            r1 += 1                       # runs r0..r1-1 belong to cell g
        while o < n_ord and (cgrp[o_col[o]] < g or (cgrp[o_col[o]] == g and o_row[o] < start[g])):
            o += 1                        # records of earlier cells or before this cell's range
        c0 = lo[g]
        for i in range(start[g], end[g] + 1):
            if dense:
                for j in range(lo[g], hi[g]):
                    ru[j - c0] = units[i, j]
            else:
                for j in range(lo[g], hi[g]):
                    ru[j - c0] = 0.0
                for s in range(slo[g], shi[g]):
                    j = slot_col[i, s]
                    if j >= 0:
                        ru[j - c0] = units[i, s]
            for j in range(lo[g], hi[g]):
                u = ru[j - c0]
                t = 0.0
                c = 0.0
                if o < n_ord and o_row[o] == i and o_col[o] == j:
                    t = o_trade[o]
                    c = o_cost[o]
                    o += 1
                if u != 0.0 or t != 0.0:
                    p_cell[k] = g
                    p_row[k] = i
                    p_col[k] = j
                    p_u[k] = u
                    p_t[k] = t
                    p_c[k] = c
                    k += 1
            if r1 - r0 == hi[g] - lo[g]:      # one column per symbol: no run to sum
                for q in range(lo[g], hi[g]):
                    j = perm[q]
                    u = ru[j - c0]
                    if u != 0.0:
                        x_cell[m] = g
                        x_row[m] = i
                        x_sym[m] = sym[j]
                        x_net[m] = u * price[i, col_sym[j]] / values[i, g]
                        m += 1
                continue
            for r in range(r0, r1):
                q0, q1 = run_lo[r], run_lo[r + 1]
                if q1 - q0 == 1:
                    j = perm[q0]
                    if ru[j - c0] != 0.0:
                        x_cell[m] = g
                        x_row[m] = i
                        x_sym[m] = sym[j]
                        x_net[m] = ru[j - c0] * price[i, col_sym[j]] / values[i, g]
                        m += 1
                    continue
                held = False
                for q in range(q0, q1):
                    j = perm[q]
                    held = held or ru[j - c0] != 0.0
                    buf[q - q0] = ru[j - c0] * price[i, col_sym[j]]
                if held:
                    x_cell[m] = g
                    x_row[m] = i
                    x_sym[m] = sym[perm[q0]]
                    x_net[m] = _sum_like_numpy(buf, q1 - q0) / values[i, g]
                    m += 1
        r0 = r1
    return (p_cell[:k], p_row[:k], p_col[:k], p_u[:k], p_t[:k], p_c[:k]), (x_cell[:m], x_row[:m], x_sym[:m],
                                                                           x_net[:m])


def batch_frames(batch: Batch, run: RawRun, rets: list[np.ndarray], liq_rows: dict[int, int],
                 labels: Labels) -> BatchFrames:
    """Long rows of one batch (schema column order; see ``BatchFrames``).

    Rows: returns per cell and test bar; positions per cell, bar (from the cell's first cut-off) and
    atom column where units != 0 or a trade happened; exposure per cell, bar and symbol (sorted) where
    some atom holds the symbol (net exposure: the symbol's ``units * close`` summed over its atom columns
    in column order, / the end-of-bar value). A cell's columns are contiguous in the batch. Positions and
    exposure rows come from one numba kernel over the batch's arrays (``_long_rows_nb``), ordered by
    cell, bar, then column or symbol.
    """
    events: list[dict] = []
    n_groups = len(batch.cell_ids)
    if len(batch.col_group) and np.any(np.diff(batch.col_group) < 0):
        raise ValueError("batch_frames: a cell's columns must be contiguous")
    bounds = np.searchsorted(batch.col_group, np.arange(n_groups + 1), side="left")
    lo, hi = bounds[:-1].astype(np.int64), bounds[1:].astype(np.int64)
    start = np.asarray(batch.start_row, dtype=np.int64)
    end = np.asarray(batch.end_row, dtype=np.int64)
    cell_code = labels.cells.get_indexer(pd.Index(batch.cell_ids, dtype=object))
    sym_code = labels.symbols.get_indexer(pd.Index(batch.col_symbol, dtype=object)).astype(np.int64)  # per column
    r_cell, r_row, r_win, r_ret, r_liq = [], [], [], [], []
    for g in range(n_groups):
        s, e = int(start[g]), int(end[g])
        n = e - s
        liq_flag = np.zeros(n, dtype=bool)
        if g in liq_rows:
            L = liq_rows[g]
            liq_flag[L - s - 1:] = True
            events.append({"type": "liquidation", "cell_id": batch.cell_ids[g], "date": batch.dates[L].isoformat(),
                           "bar": batch.b0 + L, "equity": float(np.prod(1.0 + rets[g][:L - s]))})
        r_cell.append(np.full(n, cell_code[g]))
        r_row.append(np.arange(s + 1, e + 1))
        r_win.append(batch.window_of_row[g])
        r_ret.append(rets[g])
        r_liq.append(liq_flag)
        if lo[g] < hi[g]:
            events.extend(_close_events(batch, run, g, int(lo[g]), int(hi[g]), s, e))
    # each cell's columns by symbol code (stable): sort by (cell, symbol, column), cut into runs
    col_group = np.asarray(batch.col_group, dtype=np.int64)
    perm = np.lexsort((np.arange(len(sym_code)), sym_code, col_group)).astype(np.int64)
    ps, pg = sym_code[perm], col_group[perm]
    run_lo = np.flatnonzero(np.r_[True, (ps[1:] != ps[:-1]) | (pg[1:] != pg[:-1])]) if len(perm) else np.zeros(0, np.int64)
    run_lo = np.r_[run_lo, len(perm)].astype(np.int64)
    f64 = np.float64
    i64 = np.int64
    dense = run.slot_col is None
    if dense:
        slot_col, slo, shi = np.zeros((0, 0), dtype=i64), lo, hi
    else:
        slot_col = np.ascontiguousarray(run.slot_col, dtype=i64)
        sb = np.searchsorted(run.slot_cell, np.arange(n_groups + 1), side="left").astype(i64)
        slo, shi = sb[:-1], sb[1:]
    (p_cell, p_row, pcol, p_units, p_trade, p_cost), (x_cell, x_row, x_sym, x_net) = _long_rows_nb(
        np.ascontiguousarray(run.units, dtype=f64), dense, slot_col, slo, shi,
        np.ascontiguousarray(run.order_row, dtype=i64),
        np.ascontiguousarray(run.order_col, dtype=i64), np.ascontiguousarray(run.trade, dtype=f64),
        np.ascontiguousarray(run.cost, dtype=f64), col_group, np.ascontiguousarray(batch.sym_price, dtype=f64),
        np.ascontiguousarray(batch.col_sym, dtype=i64),
        np.ascontiguousarray(run.values, dtype=f64), lo, hi, start, end, perm, run_lo, sym_code)

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)

    atom_code = labels.atoms.get_indexer(pd.Index(batch.col_atom, dtype=object))   # per column
    ns = batch.dates.as_unit("ns").asi8
    returns = {"cell_id": cat(r_cell, np.int64), "date": ns[cat(r_row, np.int64)],
               "window": cat(r_win, np.int64), "return": cat(r_ret, np.float64), "liquidated": cat(r_liq, bool)}
    positions = {"cell_id": cell_code[p_cell], "date": ns[p_row], "atom_id": atom_code[pcol],
                 "symbol": sym_code[pcol], "units": p_units, "trade": p_trade, "cost": p_cost}
    exposure = {"cell_id": cell_code[x_cell], "date": ns[x_row], "symbol": x_sym, "net_exposure": x_net}
    return BatchFrames(returns, positions, exposure, events, liq_rows)


def reference_summary(returns: pd.DataFrame, periods_per_year: int) -> pd.DataFrame:
    """numpy metrics of each cell's stitched daily returns.

    Conventions: total return ``prod(1 + r) - 1``; Sharpe ``mean / std(ddof=1) * sqrt(P)`` (rf 0), 0.0
    when there are fewer than 2 returns or the std is 0 (a degenerate, e.g. all-cash, cell; status
    documented, never NaN); max drawdown ``min(W / H - 1)`` with wealth ``W`` and a high-water mark ``H``
    that includes the initial capital 1.0 (<= 0).
    """
    rows = []
    for cell, df in returns.groupby("cell_id", sort=False):
        r = df["return"].to_numpy(dtype=np.float64)
        w = np.cumprod(1.0 + r)
        h = np.maximum.accumulate(np.maximum(w, 1.0))
        sd = float(np.std(r, ddof=1)) if len(r) > 1 else 0.0
        sharpe = float(np.mean(r) / sd * np.sqrt(periods_per_year)) if sd > 0 else 0.0
        rows.append({"cell_id": cell, "sim_total_return": float(w[-1] - 1.0) if len(r) else 0.0,
                     "sim_sharpe": sharpe,
                     "sim_max_drawdown": float(min(0.0, np.min(w / h - 1.0))) if len(r) else 0.0})
    return pd.DataFrame(rows).set_index("cell_id")


def compare_simulators(res_a: SimulationResult, res_b: SimulationResult) -> dict:
    """Simulator disagreement: max |return_a - return_b| over every (cell, date), and per cell.

    Rows present in one result only count as an infinite difference (the schedules differ). Also lists
    the cells liquidated by one simulator and not the other.
    """
    a = res_a.returns.set_index(["cell_id", "date"])["return"]
    b = res_b.returns.set_index(["cell_id", "date"])["return"]
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1)
    diff = (joined["a"] - joined["b"]).abs().fillna(np.inf)
    per_cell = {str(k): float(v) for k, v in diff.groupby(level="cell_id", sort=False).max().items()}
    liq_a = res_a.summary.set_index("cell_id")["liquidated"]
    liq_b = res_b.summary.set_index("cell_id")["liquidated"]
    return {"kind_a": res_a.kind, "kind_b": res_b.kind,
            "max_abs_return_diff": float(diff.max()) if len(diff) else 0.0,
            "per_cell": per_cell, "n_cells": len(per_cell), "n_returns": int(len(diff)),
            "liquidation_mismatch": sorted(str(c) for c in liq_a.index if liq_a.get(c) != liq_b.get(c))}
