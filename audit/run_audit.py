"""Per-cell checks over a run's frames, and writing check results to the ledger.

``check_cells`` runs, for every cell of ``cells.parquet``: the metric mismatch (the simulator's own
``sim_sharpe`` / ``sim_max_drawdown`` / ``sim_total_return`` vs the recomputation from the cell's
rows of ``returns.parquet``, under ``conventions``), the volatility band (profile from
``cells.parquet``, per-window vols from the ``window`` column) and zero bankruptcy. The directional
and funnel traces need the selection records and are called per cell / window by the tournament.

``spec_version_for_engine`` maps an engine name to the ``spec_version`` of its records (DESIGN
section 4): ``v4`` and ``v4:<scorer>`` -> ``4.0-mlops``; ``v3.4`` -> ``3.4``; ``raw`` and ``random``
-> ``baseline``. Run-level records use ``run``.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from audit.checks.bankruptcy import check_bankruptcy
from audit.checks.mismatch import MismatchTolerance, SimConventions, check_metric_mismatch
from audit.checks.result import CheckResult
from audit.checks.vol_bands import check_volatility_band
from contracts.enums import RecordType, SpecVersion
from contracts.errors import ConfigError, DataError
from contracts.schemas import check_frame


def spec_version_for_engine(engine: str) -> SpecVersion:
    """``spec_version`` of the records of a cell run by ``engine``."""
    if engine == "v4" or engine.startswith("v4:"):
        return SpecVersion.V4
    if engine == "v3.4":
        return SpecVersion.V34
    if engine in ("raw", "random"):
        return SpecVersion.BASELINE
    raise ConfigError(f"unknown engine {engine!r}: no spec_version rule")


def check_cells(cells: pd.DataFrame, returns: pd.DataFrame, conventions: SimConventions,
                tolerance: MismatchTolerance = MismatchTolerance()) -> list[CheckResult]:
    """Mismatch, volatility band and bankruptcy results for every cell (cells sorted by id).

    ``periods_per_year`` is ``conventions.periods_per_year`` for both the mismatch and the bands.
    A cell of ``cells.parquet`` without returns raises ``DataError`` naming it.
    """
    c = check_frame(cells, "cells.parquet")
    r = check_frame(returns, "returns.parquet")
    groups = {str(k): g.sort_values("date", kind="stable") for k, g in r.groupby("cell_id")}
    bankrupt = {res.cell_id: res for res in check_bankruptcy(r)}
    out: list[CheckResult] = []
    for row in c.sort_values("cell_id", kind="stable").itertuples(index=False):
        cid = str(row.cell_id)
        if cid not in groups:
            raise DataError(f"returns.parquet has no rows for cell {cid} of cells.parquet")
        g = groups[cid]
        rets = g["return"].to_numpy(dtype=np.float64)
        out.append(check_metric_mismatch(
            cid, rets, sim_sharpe=float(row.sim_sharpe), sim_max_drawdown=float(row.sim_max_drawdown),
            sim_total_return=float(row.sim_total_return), conventions=conventions,
            tolerance=tolerance))
        out.append(check_volatility_band(cid, str(row.profile), rets, conventions.periods_per_year,
                                         windows=g["window"].to_numpy()))
        out.append(bankrupt[cid])
    return out


def write_checks(writer, results: Iterable[CheckResult],
                 spec_version_of_cell: dict[str, SpecVersion] | None = None) -> list[dict]:
    """Append one ``check`` record per result through ``writer`` (an ``audit.ledger.LedgerWriter``).

    A result's ``spec_version`` is ``spec_version_of_cell[cell_id]`` when given, else ``run``.
    """
    recs = []
    mapping = spec_version_of_cell or {}
    for res in results:
        spec = mapping.get(res.cell_id, SpecVersion.RUN) if res.cell_id else SpecVersion.RUN
        recs.append(writer.append(RecordType.CHECK, spec, res.to_ledger_data()))
    return recs
