"""``simulate``: run every cell's plan through one simulator, batched and chunked under a memory budget."""
from __future__ import annotations

import numpy as np
import pandas as pd

from contracts.enums import SimulatorKind
from contracts.errors import ConfigError, DataError
from contracts.schemas import check_frame
from market.panel import validate_panel
from simulation.config import CellPlan, SimulationConfig
from simulation.reference import run_reference
from simulation.results import Labels, SimulationResult, batch_frames, cell_returns, long_frames, reference_summary
from simulation.schedule import cell_columns, check_plans, chunk_plans, compile_batch, gates_of, panel_arrays

# bytes per (bar, column) of one batched call: the reference keeps ~8 float arrays of that shape,
# vectorbt ~16 (inputs broadcast, records, assets, cash and value arrays)
BYTES_PER_VALUE = {SimulatorKind.REFERENCE: 8 * 8, SimulatorKind.VECTORBT: 16 * 8}


def simulate(closes: pd.DataFrame, plans: list[CellPlan], kind: SimulatorKind | str,
             config: SimulationConfig | None = None) -> SimulationResult:
    """Simulate ``plans`` on the close panel ``closes`` (full validated panel, UTC index).

    Returns a ``SimulationResult``. Every cell starts with capital 1.0 in cash at the close of its first
    cut-off; returns are daily simple returns (fractions) of its test bars, compounded over windows (TWR).

    Summary conventions. Reference: numpy, see ``results.reference_summary`` (Sharpe ``mean/std(ddof=1)
    * sqrt(periods_per_year)``, rf 0; max drawdown with the initial capital in the high-water mark).
    vectorbt: vectorbt's own metrics, see ``vbt_adapter.vbt_summary`` (same Sharpe formula with
    ``year_freq = periods_per_year`` days over ``freq = 1D``; inf when the std is 0; its max drawdown's
    peak excludes the initial capital).
    """
    kind = SimulatorKind(kind)
    config = config or SimulationConfig()
    closes = validate_panel(closes, "simulate: closes")
    if not plans:
        raise ConfigError("simulate: no cell plans")
    check_plans(closes, plans, config)
    columns = [cell_columns(p) for p in plans]   # each plan read once: columns, weights
    col_atoms = [a for cc in columns for a in cc.atoms]
    gates, keys = gates_of(closes, col_atoms, config.gap)   # the gates of atoms that ever hold a weight
    panel = panel_arrays(closes)
    if not np.isfinite(gates).all():
        raise DataError("simulate: non-finite gate values")
    labels = Labels(cells=pd.Index(sorted({p.cell_id for p in plans}), dtype=object),
                    atoms=pd.Index(sorted({a.id for a in col_atoms}), dtype=object),
                    symbols=pd.Index(sorted(closes.columns), dtype=object))
    chunks = chunk_plans(plans, len(closes), config.max_chunk_bytes, BYTES_PER_VALUE[kind],
                         [len(cc.atoms) for cc in columns])
    parts, events, liq_cells = [], [], set()
    for idxs in chunks:
        sub = [plans[i] for i in idxs]
        batch = compile_batch(closes, sub, gates, keys, panel, [columns[i] for i in idxs])
        if kind is SimulatorKind.REFERENCE:
            raw = run_reference(batch, config)
            r, liq_rows = cell_returns(batch, raw, config.liquidation_floor)
        else:
            from simulation import vbt_adapter  # the one module that imports vectorbt
            first = vbt_adapter.run_vectorbt(batch, config)
            r, liq_rows = cell_returns(batch, first, config.liquidation_floor)
            raw = vbt_adapter.book_liquidations(batch, liq_rows, config, first)
        fr = batch_frames(batch, raw, r, liq_rows, labels)
        parts.append(fr)
        events.extend(fr.events)
        liq_cells.update(batch.cell_ids[g] for g in liq_rows)
    frames = long_frames(parts, labels)
    returns = check_frame(frames[0], "returns.parquet")
    positions = check_frame(frames[1], "positions.parquet")
    exposure = check_frame(frames[2], "exposure.parquet")
    if not np.isfinite(returns["return"].to_numpy(dtype=np.float64)).all():
        raise DataError("simulate: a non-finite daily return was produced (bug: no NaN may reach a return)")
    if kind is SimulatorKind.REFERENCE:
        metrics = reference_summary(returns, config.periods_per_year)
    else:
        from simulation import vbt_adapter
        wide = returns.pivot(index="date", columns="cell_id", values="return")
        wide = wide[[p.cell_id for p in plans]]
        metrics = vbt_adapter.vbt_summary(wide, config)
    ids = [p.cell_id for p in plans]
    summary = pd.DataFrame({
        "cell_id": ids,
        "sim_total_return": metrics.loc[ids, "sim_total_return"].to_numpy(dtype=np.float64),
        "sim_sharpe": metrics.loc[ids, "sim_sharpe"].to_numpy(dtype=np.float64),
        "sim_max_drawdown": metrics.loc[ids, "sim_max_drawdown"].to_numpy(dtype=np.float64),
        "liquidated": [i in liq_cells for i in ids],
        "n_windows": [len(p.windows) for p in plans],
    })
    return SimulationResult(kind=kind.value, returns=returns, positions=positions, exposure=exposure,
                            summary=summary, events=events)
