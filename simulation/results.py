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
    returns: pd.DataFrame
    positions: pd.DataFrame
    exposure: pd.DataFrame
    events: list[dict]
    liq_rows: dict[int, int]


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


def batch_frames(batch: Batch, run: RawRun, rets: list[np.ndarray], liq_rows: dict[int, int]) -> BatchFrames:
    """Long frames of one batch, checked against the run-directory schemas."""
    R = {k: [] for k in ("cell", "row", "window", "ret", "liq")}
    P = {k: [] for k in ("cell", "row", "col", "units", "trade", "cost")}
    E = {k: [] for k in ("cell", "row", "sym", "net")}
    events: list[dict] = []
    syms = np.asarray(batch.col_symbol, dtype=object)
    for g, cell in enumerate(batch.cell_ids):
        s, e = int(batch.start_row[g]), int(batch.end_row[g])
        n = e - s
        liq_flag = np.zeros(n, dtype=bool)
        if g in liq_rows:
            L = liq_rows[g]
            liq_flag[L - s - 1:] = True
            events.append({"type": "liquidation", "cell_id": cell, "date": batch.dates[L].isoformat(), "bar": batch.b0 + L,
                           "equity": float(np.prod(1.0 + rets[g][:L - s]))})
        for k, v in (("cell", np.full(n, g)), ("row", np.arange(s + 1, e + 1)), ("window", batch.window_of_row[g]),
                     ("ret", rets[g]), ("liq", liq_flag)):
            R[k].append(v)
        cols = np.flatnonzero(batch.col_group == g)
        if not len(cols):
            continue
        sl = slice(s, e + 1)
        u, t, c = run.units[sl][:, cols], run.trade[sl][:, cols], run.cost[sl][:, cols]
        ri, ci = np.nonzero((u != 0) | (t != 0))
        for k, v in (("cell", np.full(len(ri), g)), ("row", s + ri), ("col", cols[ci]), ("units", u[ri, ci]),
                     ("trade", t[ri, ci]), ("cost", c[ri, ci])):
            P[k].append(v)
        prev = np.vstack([run.units[s - 1, cols] if s > 0 else np.zeros(len(cols)), u[:-1]])
        for kind, rowarr in (("delisting_close", batch.delist_row), ("bust_close", batch.bust_row)):
            b = rowarr[cols]
            for k in np.flatnonzero((b >= s) & (b <= e)):
                j, bk = cols[k], int(b[k])
                if prev[bk - s, k] != 0:
                    events.append({"type": kind, "cell_id": cell, "atom_id": batch.col_atom[j],
                                   "symbol": batch.col_symbol[j], "date": batch.dates[bk].isoformat(), "bar": batch.b0 + bk,
                                   "units": float(prev[bk - s, k]), "price": float(batch.price[bk, j])})
        # net exposure per symbol: sum(units * close) / end-of-bar value, where some atom holds the symbol
        usyms, inv = np.unique(syms[cols], return_inverse=True)
        by_sym = np.argsort(inv, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(inv[by_sym]) != 0])
        net = np.add.reduceat((u * batch.price[sl][:, cols])[:, by_sym], starts, axis=1)
        ri, si = np.nonzero(np.logical_or.reduceat((u != 0)[:, by_sym], starts, axis=1))
        for k, v in (("cell", np.full(len(ri), g)), ("row", s + ri), ("sym", usyms[si]),
                     ("net", net[ri, si] / run.values[s + ri, g])):
            E[k].append(v)
    cat = {name: {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in d.items()}
           for name, d in (("r", R), ("p", P), ("e", E))}
    r, p, x = cat["r"], cat["p"], cat["e"]
    cells = pd.Index(batch.cell_ids, dtype=object)
    atom_index = pd.Index(sorted(set(batch.col_atom)), dtype=object)
    sym_index = pd.Index(sorted(set(batch.col_symbol)), dtype=object)
    atom_code = atom_index.get_indexer(pd.Index(batch.col_atom, dtype=object))   # per column
    sym_code = sym_index.get_indexer(pd.Index(batch.col_symbol, dtype=object))

    def labels(codes: np.ndarray, cats: pd.Index) -> pd.Categorical:
        # categorical labels: check_frame's cast to "string" then maps the few categories, not every row
        return pd.Categorical.from_codes(codes.astype(np.int64), categories=cats) if len(cats) else \
            pd.Categorical([], categories=cats)

    pcol = p["col"].astype(np.int64)
    returns = pd.DataFrame({"cell_id": labels(r["cell"], cells), "date": batch.dates[r["row"].astype(np.int64)],
                            "window": r["window"].astype(np.int64), "return": r["ret"].astype(np.float64),
                            "liquidated": r["liq"].astype(bool)})
    positions = pd.DataFrame({"cell_id": labels(p["cell"], cells), "date": batch.dates[p["row"].astype(np.int64)],
                              "atom_id": labels(atom_code[pcol], atom_index),
                              "symbol": labels(sym_code[pcol], sym_index),
                              "units": p["units"].astype(np.float64), "trade": p["trade"].astype(np.float64),
                              "cost": p["cost"].astype(np.float64)})
    exposure = pd.DataFrame({"cell_id": labels(x["cell"], cells), "date": batch.dates[x["row"].astype(np.int64)],
                             "symbol": labels(sym_index.get_indexer(x["sym"]) if len(x["sym"]) else
                                              np.zeros(0, dtype=np.int64), sym_index),
                             "net_exposure": x["net"].astype(np.float64)})
    return BatchFrames(check_frame(returns, "returns.parquet"), check_frame(positions, "positions.parquet"),
                       check_frame(exposure, "exposure.parquet"), events, liq_rows)


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
