"""Directional trace: every SHORT atom keeps its sign from selection, through the weights, to the
simulator's positions (DESIGN section 3: weights are long-only in atom space; a SHORT atom's units are
never positive).

Sources: the selection's atoms per window (``StrategyAtom``), ``weights.parquet`` rows and
``positions.parquet`` rows (validated with ``contracts.schemas.check_frame``). Violations:

- ``weights``: an atom not in that window's selection; a recorded direction that differs from the
  selection's; a weight below ``-WEIGHT_NEG_TOL`` (1e-10, the contract's tolerance);
- ``positions``: an atom held by the cell but never allocated to it; a SHORT atom with
  ``units > 0`` or a LONG atom with ``units < 0`` (no tolerance: a close-out must leave exactly 0).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from audit.checks.result import CheckResult, CheckStatus, make_result
from contracts.allocation import WEIGHT_NEG_TOL
from contracts.atom import StrategyAtom
from contracts.enums import Direction
from contracts.schemas import check_frame

NAME = "directional"
MAX_LISTED = 50


def check_directional(cell_id: str, atoms_by_window: Mapping[int, Sequence[StrategyAtom]],
                      weights: pd.DataFrame, positions: pd.DataFrame) -> CheckResult:
    """Trace the sign of every atom of one cell. ``weights``/``positions`` may hold other cells'
    rows (filtered by ``cell_id``). ``fail`` on any violation (the first ``MAX_LISTED`` are listed
    with stage, window, atom and values), ``pass`` otherwise; details count SHORT atoms traced."""
    w = check_frame(weights, "weights.parquet")
    pos = check_frame(positions, "positions.parquet")
    w = w[w["cell_id"] == cell_id]
    pos = pos[pos["cell_id"] == cell_id]
    violations: list[dict] = []
    direction: dict[str, Direction] = {}
    for k, atoms in atoms_by_window.items():
        for a in atoms:
            if direction.setdefault(a.id, a.direction) is not a.direction:
                violations.append({"stage": "selection", "window": int(k), "atom_id": a.id,
                                   "issue": "atom id selected with both directions"})
    selected = {int(k): {a.id: a.direction for a in atoms} for k, atoms in atoms_by_window.items()}
    for row in w.itertuples(index=False):
        k, aid = int(row.window), str(row.atom_id)
        sel = selected.get(k, {})
        if aid not in sel:
            violations.append({"stage": "weights", "window": k, "atom_id": aid,
                               "issue": "atom not in the window's selection"})
            continue
        if str(row.direction) != sel[aid].value:
            violations.append({"stage": "weights", "window": k, "atom_id": aid,
                               "issue": f"direction {row.direction} != selected {sel[aid].value}"})
        if not float(row.weight) >= -WEIGHT_NEG_TOL:
            violations.append({"stage": "weights", "window": k, "atom_id": aid,
                               "issue": f"negative weight {float(row.weight)!r}"})
    allocated = set(w["atom_id"].astype(str))
    for row in pos.itertuples(index=False):
        aid, units = str(row.atom_id), float(row.units)
        d = direction.get(aid)
        date = pd.Timestamp(row.date).isoformat()
        if d is None or aid not in allocated:
            violations.append({"stage": "positions", "date": date, "atom_id": aid,
                               "issue": "position in an atom never allocated to the cell"})
        elif (d is Direction.SHORT and units > 0) or (d is Direction.LONG and units < 0):
            violations.append({"stage": "positions", "date": date, "atom_id": aid,
                               "issue": f"{d.value} atom holds units {units!r}"})
    shorts = sorted(a for a, d in direction.items() if d is Direction.SHORT and a in allocated)
    details = {"n_violations": len(violations), "violations": violations[:MAX_LISTED],
               "n_short_atoms_traced": len(shorts), "n_weight_rows": len(w),
               "n_position_rows": len(pos)}
    return make_result(NAME, CheckStatus.FAIL if violations else CheckStatus.PASS, details,
                       cell_id=cell_id)
