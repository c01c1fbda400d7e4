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

import numpy as np
import pandas as pd

from audit.checks.result import CheckResult, CheckStatus, make_result
from contracts.allocation import WEIGHT_NEG_TOL
from contracts.atom import StrategyAtom
from contracts.enums import Direction
from contracts.schemas import check_frame

NAME = "directional"
MAX_LISTED = 50


def check_directional(cell_id: str, atoms_by_window: Mapping[int, Sequence[StrategyAtom]],
                      weights: pd.DataFrame, positions: pd.DataFrame, *, checked: bool = False) -> CheckResult:
    """Trace the sign of every atom of one cell. ``weights``/``positions`` may hold other cells'
    rows (filtered by ``cell_id``). ``fail`` on any violation (the first ``MAX_LISTED`` are listed
    with stage, window, atom and values), ``pass`` otherwise; details count SHORT atoms traced.
    ``checked=True``: the caller has already validated both frames with ``check_frame`` (e.g. the
    whole files, before splitting them by cell), so they are not validated again."""
    w = weights if checked else check_frame(weights, "weights.parquet")
    pos = positions if checked else check_frame(positions, "positions.parquet")
    w = w[w["cell_id"] == cell_id]
    pos = pos[pos["cell_id"] == cell_id]
    violations: list[dict] = []
    direction: dict[str, Direction] = {}
    for k, atoms in atoms_by_window.items():
        for a in atoms:
            if direction.setdefault(a.id, a.direction) is not a.direction:
                violations.append({"stage": "selection", "window": int(k), "atom_id": a.id,
                                   "issue": "atom id selected with both directions"})
    # weights rows, in file order: each looked up in its window's selection (one dict lookup per row;
    # an atom listed twice in a window keeps its last direction; only the violating rows become dicts)
    sel_dir = {(int(k), a.id): a.direction.value for k, atoms in atoms_by_window.items() for a in atoms}
    wk = w["window"].to_numpy(dtype="int64")
    wa = w["atom_id"].astype(str).to_numpy(dtype=object)
    wd = w["direction"].astype(str).to_numpy(dtype=object)
    ww = w["weight"].to_numpy(dtype="float64")
    expected = np.empty(len(wk), dtype=object)   # not selected -> None
    expected[:] = [sel_dir.get(key) for key in zip(wk.tolist(), wa.tolist())]
    missing = np.array([e is None for e in expected], dtype=bool)
    flipped = ~missing & (wd != expected)
    negative = ~missing & ~(ww >= -WEIGHT_NEG_TOL)
    for i in np.flatnonzero(missing | flipped | negative):
        k, aid = int(wk[i]), str(wa[i])
        if missing[i]:
            violations.append({"stage": "weights", "window": k, "atom_id": aid,
                               "issue": "atom not in the window's selection"})
            continue
        if flipped[i]:
            violations.append({"stage": "weights", "window": k, "atom_id": aid,
                               "issue": f"direction {wd[i]} != selected {expected[i]}"})
        if negative[i]:
            violations.append({"stage": "weights", "window": k, "atom_id": aid,
                               "issue": f"negative weight {float(ww[i])!r}"})
    allocated = set(wa)
    # positions rows, in file order: the atom's selected direction bounds the sign of its units
    pa = pos["atom_id"].astype(str).to_numpy(dtype=object)
    pu = pos["units"].to_numpy(dtype="float64")
    codes, uniq = pd.factorize(pa)
    known = np.array([a in allocated and a in direction for a in uniq], dtype=bool)[codes]
    short = np.array([direction.get(a) is Direction.SHORT for a in uniq], dtype=bool)[codes]
    wrong_sign = known & np.where(short, pu > 0, pu < 0)
    for i in np.flatnonzero(~known | wrong_sign):
        aid, units = str(pa[i]), float(pu[i])
        date = pd.Timestamp(pos["date"].iat[i]).isoformat()
        if not known[i]:
            violations.append({"stage": "positions", "date": date, "atom_id": aid,
                               "issue": "position in an atom never allocated to the cell"})
        else:
            d = direction[aid]
            violations.append({"stage": "positions", "date": date, "atom_id": aid,
                               "issue": f"{d.value} atom holds units {units!r}"})
    shorts = sorted(a for a, d in direction.items() if d is Direction.SHORT and a in allocated)
    details = {"n_violations": len(violations), "violations": violations[:MAX_LISTED],
               "n_short_atoms_traced": len(shorts), "n_weight_rows": len(w),
               "n_position_rows": len(pos)}
    return make_result(NAME, CheckStatus.FAIL if violations else CheckStatus.PASS, details,
                       cell_id=cell_id)
