"""Sampled verification of the trial optimiser backend by the other backends (riskfolio by default).

DESIGN section 4: the other optimiser backend is a verification axis, run on the base setting's
trials "on a documented sample of windows unless full verification is asked for".

``verification: sampled`` (the default): the verification backend allocates, for every engine x
profile pair of the base setting,

- every window of the **sample**: the first and the last base windows plus a seeded draw (without
  replacement, seed ``derive_seed(seed, "verification", base setting id)``) from the others, up to
  ``verification_windows`` (12) in all, or every window when there are fewer;
- and, in the other windows, every pair whose trial-backend allocation **relaxed** a constraint,
  **fell back** or ended **optimal_inaccurate** (where a second solver matters most).

Each verified (pair, window) is compared with the trial backend's allocation: the weights (max
absolute difference over the union of atoms) and the objective (``Allocation.diagnostics
["objective"]``: the daily variance ``w' C w``, or for MaxSharpe the daily Sharpe ``mu'w / sqrt(w' C
w)``, both on the window's covariance). The verification backend's allocations are no cells: they
are written to ``verification.parquet`` (one row per native cell, window and atom, with both
weights), which the audit's ``backend_disagreement`` check reads (per trial cell: the verified
windows, the largest weight difference and its window), and summarised in ``bootstrap.json``
(``verification``) and the report. ``verification: full`` keeps complete verification cells (every
window, simulated, in the matrix), as before.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from contracts.allocation import Allocation
from contracts.enums import Backend

#: trial-backend statuses that are always verified (any window)
FLAGGED_STATUSES = ("relaxed", "fallback", "optimal_inaccurate")
VERIFICATION_COLUMNS = ["cell_id", "window", "backend", "reason", "status", "atom_id", "weight_native",
                        "weight_verify", "objective_native", "objective_verify"]


def verification_sample(cfg, sched: dict) -> list[int]:
    """The sampled base windows of a run (empty under ``verification: full`` or with no verification
    backend). ``sched``: windows per setting id (``tournament.run.schedules``)."""
    if cfg.verification != "sampled" or not cfg.verification_backends:
        return []
    from tournament.unit import derive_seed  # unit imports this module

    base = cfg.settings()[0]
    return sample_windows([w.index for w in sched[base.id]], cfg.verification_windows,
                          derive_seed(cfg.seed, "verification", base.id))


def sample_windows(window_indices: list[int], n: int, seed: int) -> list[int]:
    """The first and last windows plus a seeded draw from the others, ``n`` in all (sorted)."""
    idx = sorted(int(k) for k in window_indices)
    if len(idx) <= n:
        return idx
    middle = idx[1:-1]
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(middle), size=n - 2, replace=False)
    return sorted([idx[0], idx[-1]] + [middle[i] for i in picked])


def flag_reason(alloc: Allocation) -> str | None:
    """Why a trial-backend allocation is verified outside the sample (None: it is not)."""
    if alloc.fallback_used or alloc.status == "fallback":
        return "trial_fallback"
    if alloc.relaxed or alloc.status == "relaxed":
        return "trial_relaxed"
    if alloc.status == "optimal_inaccurate":
        return "trial_inaccurate"
    return None


def verification_frame(pairs: list[tuple[str, int, Allocation, Allocation, str]]) -> pd.DataFrame:
    """Long frame of ``(native cell id, window, trial allocation, verification allocation, reason)``:
    one row per atom in either allocation (an all-cash pair gets one row with ``atom_id`` "")."""
    rows = []
    for cid, k, a, b, reason in pairs:
        atoms = sorted(set(a.weights) | set(b.weights)) or [""]
        oa = float(a.diagnostics.get("objective", np.nan))
        ob = float(b.diagnostics.get("objective", np.nan))
        for atom in atoms:
            rows.append((cid, int(k), Backend(b.backend).value, reason, b.status, atom,
                         float(a.weights.get(atom, 0.0)), float(b.weights.get(atom, 0.0)), oa, ob))
    frame = pd.DataFrame(rows, columns=VERIFICATION_COLUMNS)
    return frame.astype({"window": "int64"})


def verification_summary(frame: pd.DataFrame, mode: str, sample: list[int], n_base_windows: int,
                         backends: list[str]) -> dict:
    """What ``bootstrap.json`` and the report say: which windows were verified and the largest
    differences (weights and objective) found."""
    out = {"mode": mode, "backends": backends, "n_base_windows": int(n_base_windows),
           "sample_windows": [int(k) for k in sample]}
    if frame is None or frame.empty:
        return {**out, "n_pairs": 0, "windows_verified": [], "max_abs_weight_diff": None,
                "max_abs_objective_diff": None, "worst": None, "by_reason": {}}
    d = frame.assign(diff=(frame["weight_native"] - frame["weight_verify"]).abs(),
                     odiff=(frame["objective_native"] - frame["objective_verify"]).abs())
    per = d.groupby(["cell_id", "window"], sort=True).agg(diff=("diff", "max"), odiff=("odiff", "first"),
                                                         reason=("reason", "first"))
    worst = per["diff"].idxmax()
    return {**out, "n_pairs": int(len(per)),
            "windows_verified": sorted(int(k) for k in per.index.get_level_values("window").unique()),
            "max_abs_weight_diff": float(per["diff"].max()),
            "max_abs_objective_diff": float(per["odiff"].max()) if per["odiff"].notna().any() else None,
            "worst": {"cell_id": str(worst[0]), "window": int(worst[1]),
                      "max_abs_weight_diff": float(per.loc[worst, "diff"])},
            "by_reason": {str(k): int(v) for k, v in per["reason"].value_counts().sort_index().items()}}
