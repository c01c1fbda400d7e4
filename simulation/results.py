"""Turn a simulator's raw arrays into the run-directory frames (contracts.schemas) and events."""
from __future__ import annotations

from dataclasses import dataclass, field

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
    """Frames of one batch, columns in schema order; label columns are categoricals over the run-wide
    ``Labels`` (so that batches concatenate without re-labelling); ``simulate`` checks the concatenated
    frames against the schemas once."""

    returns: pd.DataFrame
    positions: pd.DataFrame
    exposure: pd.DataFrame
    events: list[dict]
    liq_rows: dict[int, int]


@dataclass(frozen=True)
class Labels:
    """Run-wide categories of the label columns: cell ids, atom ids and symbols (each sorted, unique)."""

    cells: pd.Index
    atoms: pd.Index
    symbols: pd.Index


def _labels(codes: np.ndarray, cats: pd.Index) -> pd.Categorical:
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64), categories=cats)


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
            held = run.units[bk - 1, j] if bk > 0 else 0.0
            if held != 0:
                events.append({"type": kind, "cell_id": batch.cell_ids[g], "atom_id": batch.col_atom[j],
                               "symbol": batch.col_symbol[j], "date": batch.dates[bk].isoformat(),
                               "bar": batch.b0 + bk, "units": float(held), "price": float(batch.price[bk, j])})
    return events


def batch_frames(batch: Batch, run: RawRun, rets: list[np.ndarray], liq_rows: dict[int, int],
                 labels: Labels) -> BatchFrames:
    """Long frames of one batch (schema column order; see ``BatchFrames``).

    Rows: returns per cell and test bar; positions per cell, bar (from the cell's first cut-off) and
    atom column where units != 0 or a trade happened; exposure per cell, bar and symbol (sorted) where
    some atom holds the symbol. A cell's columns are contiguous in the batch.
    """
    R = {k: [] for k in ("cell", "row", "window", "ret", "liq")}
    P = {k: [] for k in ("cell", "row", "col", "units", "trade", "cost")}
    E = {k: [] for k in ("cell", "row", "sym", "net")}
    events: list[dict] = []
    n_groups = len(batch.cell_ids)
    if len(batch.col_group) and np.any(np.diff(batch.col_group) < 0):
        raise ValueError("batch_frames: a cell's columns must be contiguous")
    bounds = np.searchsorted(batch.col_group, np.arange(n_groups + 1), side="left")
    cell_code = labels.cells.get_indexer(pd.Index(batch.cell_ids, dtype=object))
    sym_code = labels.symbols.get_indexer(pd.Index(batch.col_symbol, dtype=object))   # per column
    for g in range(n_groups):
        s, e = int(batch.start_row[g]), int(batch.end_row[g])
        n = e - s
        liq_flag = np.zeros(n, dtype=bool)
        if g in liq_rows:
            L = liq_rows[g]
            liq_flag[L - s - 1:] = True
            events.append({"type": "liquidation", "cell_id": batch.cell_ids[g], "date": batch.dates[L].isoformat(),
                           "bar": batch.b0 + L, "equity": float(np.prod(1.0 + rets[g][:L - s]))})
        for k, v in (("cell", np.full(n, cell_code[g])), ("row", np.arange(s + 1, e + 1)),
                     ("window", batch.window_of_row[g]), ("ret", rets[g]), ("liq", liq_flag)):
            R[k].append(v)
        lo, hi = int(bounds[g]), int(bounds[g + 1])
        if lo == hi:
            continue
        u, t, c = run.units[s:e + 1, lo:hi], run.trade[s:e + 1, lo:hi], run.cost[s:e + 1, lo:hi]
        held = u != 0
        ri, ci = np.nonzero(held | (t != 0))
        for k, v in (("cell", np.full(len(ri), cell_code[g])), ("row", s + ri), ("col", lo + ci),
                     ("units", u[ri, ci]), ("trade", t[ri, ci]), ("cost", c[ri, ci])):
            P[k].append(v)
        events.extend(_close_events(batch, run, g, lo, hi, s, e))
        # net exposure per symbol: sum(units * close) / end-of-bar value, where some atom holds the symbol
        sc = sym_code[lo:hi]
        by_sym = np.argsort(sc, kind="stable")
        usym = sc[by_sym]
        pv = (u * batch.price[s:e + 1, lo:hi])[:, by_sym]
        hs = held[:, by_sym]
        if len(usym) > 1 and np.any(usym[1:] == usym[:-1]):   # several atoms on one symbol: sum them
            starts = np.flatnonzero(np.r_[True, usym[1:] != usym[:-1]])
            pv = np.add.reduceat(pv, starts, axis=1)
            hs = np.logical_or.reduceat(hs, starts, axis=1)
            usym = usym[starts]
        ri, si = np.nonzero(hs)
        for k, v in (("cell", np.full(len(ri), cell_code[g])), ("row", s + ri), ("sym", usym[si]),
                     ("net", pv[ri, si] / run.values[s + ri, g])):
            E[k].append(v)
    cat = {name: {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in d.items()}
           for name, d in (("r", R), ("p", P), ("e", E))}
    r, p, x = cat["r"], cat["p"], cat["e"]
    atom_code = labels.atoms.get_indexer(pd.Index(batch.col_atom, dtype=object))   # per column
    pcol = p["col"].astype(np.int64)
    dates = batch.dates
    returns = pd.DataFrame({"cell_id": _labels(r["cell"], labels.cells), "date": dates[r["row"].astype(np.int64)],
                            "window": r["window"].astype(np.int64), "return": r["ret"].astype(np.float64),
                            "liquidated": r["liq"].astype(bool)})
    positions = pd.DataFrame({"cell_id": _labels(p["cell"], labels.cells), "date": dates[p["row"].astype(np.int64)],
                              "atom_id": _labels(atom_code[pcol], labels.atoms),
                              "symbol": _labels(sym_code[pcol], labels.symbols),
                              "units": p["units"].astype(np.float64), "trade": p["trade"].astype(np.float64),
                              "cost": p["cost"].astype(np.float64)})
    exposure = pd.DataFrame({"cell_id": _labels(x["cell"], labels.cells), "date": dates[x["row"].astype(np.int64)],
                             "symbol": _labels(x["sym"], labels.symbols),
                             "net_exposure": x["net"].astype(np.float64)})
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
