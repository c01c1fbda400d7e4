"""How often each cell's profile was not itself: its allocations relaxed or replaced (issue 19).

Per cell, over its windows (columns of ``performance_matrix.csv``):

- ``n_relaxed``: windows whose allocation status is ``relaxed``: a constraint or target was relaxed
  to stay feasible (market-neutral beta cap or LONG/SHORT share caps, the atom cap, the Barbell's
  Core/Aggressor split); the ledger's allocation record says which (``relaxed``) and why (``reason``);
- ``n_fallback``: windows whose allocation used a documented fallback (``fallback_used``: MaxSharpe
  undefined -> min variance, every solver of the chain failed or a zero covariance -> the fallback
  profile).

The two are exclusive (a fallback computed under relaxed caps counts as a fallback). The cells of the
two simulators share their allocations, so they carry the same counts.
"""
from __future__ import annotations

import pandas as pd

from tournament.unit import UnitResult, alloc_key

COLUMNS = ("n_relaxed", "n_fallback")


def allocation_status_counts(plans: dict, results: dict[str, UnitResult]) -> pd.DataFrame:
    """``cell_id, n_relaxed, n_fallback`` for the cells of ``plans`` (``build_plans``' output)."""
    rows = []
    for cid, (cell, plan) in plans.items():
        relaxed = fallback = 0
        for wp in plan.windows:
            alloc = results[f"{cell.setting.id}/{wp.window.index}"].allocations[
                alloc_key(cell.engine, cell.profile, cell.backend)]
            if alloc.fallback_used or alloc.status == "fallback":
                fallback += 1
            elif alloc.status == "relaxed":
                relaxed += 1
        rows.append((cid, relaxed, fallback))
    return pd.DataFrame(rows, columns=["cell_id", *COLUMNS])


def add_allocation_counts(matrix: pd.DataFrame, plans: dict, results: dict[str, UnitResult]) -> pd.DataFrame:
    """``matrix`` with the two count columns appended (0 for a cell without allocations)."""
    counts = allocation_status_counts(plans, results).set_index("cell_id")
    out = matrix.copy()
    for c in COLUMNS:
        out[c] = out["cell_id"].map(counts[c]).fillna(0).astype("int64")
    return out
