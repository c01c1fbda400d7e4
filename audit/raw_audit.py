"""Raw return audit: rebuild each cell's daily return series from the ledger alone and recompute.

Each window's ``simulation`` record carries ``data["returns"] = {cell_id: [daily simple returns]}``
and ``data["dates"] = [ISO dates]`` (one list of dates shared by the cells of the record, same
length as each return list), plus ``data["window"]`` and ``data["periods_per_year"]`` (P).
``simulation_record_data`` builds that payload. ``recompute_from_ledger`` verifies the ledger first
(a broken chain raises ``LedgerError``), stitches each cell's returns in date order (a date twice for
one cell raises ``DataError``) and returns ``audit.metrics.compute_metrics`` per cell.
``check_ledger_vs_returns`` checks the ledger's returns against ``returns.parquet`` bit for bit.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from audit.checks.result import CheckResult, CheckStatus, make_result
from audit.metrics import compute_metrics
from audit.verify import load_records
from contracts.enums import RecordType
from contracts.errors import ConfigError, DataError
from contracts.schemas import check_frame


def simulation_record_data(window: int, dates: Sequence[Any], returns_by_cell: Mapping[str, Any],
                           periods_per_year: float, **extra: Any) -> dict[str, Any]:
    """``data`` of a window's ``simulation`` record (dates as ISO strings, returns as floats)."""
    iso = [pd.Timestamp(d).isoformat() for d in dates]
    rets: dict[str, list[float]] = {}
    for cell, r in returns_by_cell.items():
        arr = np.asarray(r, dtype=np.float64).ravel()
        if arr.size != len(iso):
            raise DataError(f"window {window}, cell {cell}: {arr.size} returns for {len(iso)} dates")
        rets[str(cell)] = arr.tolist()
    clash = {"window", "dates", "returns", "periods_per_year"} & set(extra)
    if clash:
        raise ConfigError(f"simulation_record_data: reserved keys {sorted(clash)}")
    return {"window": int(window), "dates": iso, "returns": rets,
            "periods_per_year": float(periods_per_year), **extra}


def ledger_returns(run_dir: str | os.PathLike, *, check_files: bool = True
                   ) -> tuple[dict[str, pd.Series], float | None]:
    """Per cell, the stitched daily returns (Series indexed by UTC dates) from the ``simulation``
    records, and the P they state (None if none states it; ``ConfigError`` if they disagree).
    The ledger is verified first (``check_files=False``: its chain only, not the other files' digests)."""
    parts: dict[str, list[pd.Series]] = {}
    ps: set[float] = set()
    for rec in load_records(run_dir, check_files=check_files):
        if rec["type"] != RecordType.SIMULATION.value or "returns" not in rec["data"]:
            continue
        data, seq = rec["data"], rec["seq"]
        if data.get("_nonfinite"):
            raise DataError(f"seq {seq}: simulation record holds non-finite values "
                            f"{data['_nonfinite'][:3]}")
        if "periods_per_year" in data:
            ps.add(float(data["periods_per_year"]))
        dates = pd.DatetimeIndex(pd.to_datetime(data["dates"], utc=True))
        for cell, r in data["returns"].items():
            if len(r) != len(dates):
                raise DataError(f"seq {seq}: cell {cell} has {len(r)} returns for "
                                f"{len(dates)} dates")
            parts.setdefault(cell, []).append(pd.Series(np.asarray(r, dtype=np.float64),
                                                        index=dates))
    if len(ps) > 1:
        raise ConfigError(f"simulation records disagree on periods_per_year: {sorted(ps)}")
    series = {}
    for cell in sorted(parts):
        s = pd.concat(parts[cell]).sort_index(kind="stable")
        if s.index.has_duplicates:
            dup = s.index[s.index.duplicated()][0]
            raise DataError(f"cell {cell}: date {dup.isoformat()} appears in two simulation records")
        series[cell] = s
    return series, (ps.pop() if ps else None)


def recompute_from_ledger(run_dir: str | os.PathLike, periods_per_year: float | None = None
                          ) -> dict[str, dict[str, Any]]:
    """Metrics per cell recomputed from the ledger's ``simulation`` records alone.

    ``periods_per_year``: P; by default the value the records state (``ConfigError`` if none does
    or if a given value contradicts them).
    """
    series, stated = ledger_returns(run_dir)
    if periods_per_year is None:
        if stated is None:
            raise ConfigError("recompute_from_ledger: no periods_per_year in the ledger; pass it")
        periods_per_year = stated
    elif stated is not None and float(periods_per_year) != stated:
        raise ConfigError(f"periods_per_year {periods_per_year} contradicts the ledger's {stated}")
    return {cell: compute_metrics(s.to_numpy(), periods_per_year) for cell, s in series.items()}


def check_ledger_vs_returns(run_dir: str | os.PathLike, returns: pd.DataFrame) -> CheckResult:
    """The ledger's ``simulation`` returns must equal ``returns.parquet`` bit for bit, per cell and
    date (both are float64 and the ledger's floats round-trip exactly). ``fail`` lists the cells
    missing on either side and the first differing date per cell (up to 20 cells)."""
    df = check_frame(returns, "returns.parquet")
    series, _ = ledger_returns(run_dir, check_files=False)  # the content is compared here, not the digests
    issues: list[dict] = []
    parquet_cells = sorted(str(c) for c in df["cell_id"].unique())
    for cid in sorted(set(parquet_cells) ^ set(series)):
        issues.append({"cell_id": cid, "issue": "only in " + ("ledger" if cid in series
                                                              else "returns.parquet")})
    for cid, g in df.groupby("cell_id", sort=True):
        cid = str(cid)
        if cid not in series:
            continue
        p = pd.Series(g["return"].to_numpy(dtype=np.float64),
                      index=pd.DatetimeIndex(g["date"])).sort_index()
        s = series[cid]
        if not p.index.equals(s.index):
            diff = p.index.symmetric_difference(s.index)
            issues.append({"cell_id": cid, "issue": f"dates differ, first {diff[0].isoformat()}"})
            continue
        neq = np.flatnonzero(p.to_numpy() != s.to_numpy())
        if neq.size:
            i = int(neq[0])
            issues.append({"cell_id": cid, "issue": f"return differs on {p.index[i].isoformat()}: "
                           f"parquet {p.iloc[i]!r} vs ledger {s.iloc[i]!r}"})
    status = CheckStatus.FAIL if issues else CheckStatus.PASS
    return make_result("raw_returns", status, {"issues": issues[:20], "n_issues": len(issues),
                                               "n_cells": len(series)})


#: metrics compared by ``compare_with_run`` (performance_matrix.csv column = compute_metrics key)
COMPARED_METRICS = ("sharpe", "max_drawdown", "cagr", "annual_volatility")


def compare_with_run(run_dir: str | os.PathLike, *, rtol: float = 1e-8, atol: float = 1e-10,
                     require_run_end: bool = True) -> dict[str, Any]:
    """The raw return audit of a run folder: every cell's metrics recomputed from the ledger's
    ``simulation`` records alone, compared with ``performance_matrix.csv``, and the ledger's daily
    returns compared with ``returns.parquet`` bit for bit.

    Tolerance ``|matrix - ledger| <= atol + rtol * |ledger|``: the matrix is written with 10
    significant digits (relative rounding up to 5e-10) and both sides compute in float64 from the
    same returns, so 1e-8 relative leaves room for the rounding and nothing else. A matrix cell left
    blank (``no_position``: a cell that never held a position) matches a ledger series of zero
    variance. Returns ``{"ok", "metrics": {cell: {...}}, "differences": [rows], "raw_returns":
    CheckResult data, "n_cells", "periods_per_year"}``; the ledger is verified first
    (``require_run_end``: a finished run; ``LedgerError`` otherwise).
    """
    root = os.fspath(run_dir)
    load_records(root, require_run_end=require_run_end)  # raises naming the first bad seq or file
    series, p = ledger_returns(root, check_files=False)
    if p is None:
        raise ConfigError(f"{root}: no periods_per_year in the ledger's simulation records")
    metrics = {cell: compute_metrics(s.to_numpy(), p) for cell, s in series.items()}
    matrix_path = os.path.join(root, "performance_matrix.csv")
    returns_path = os.path.join(root, "returns.parquet")
    diffs: list[dict[str, Any]] = []
    if not os.path.isfile(matrix_path):
        diffs.append({"file": "performance_matrix.csv", "cell_id": None, "metric": None,
                      "issue": "file missing"})
    else:
        mat = pd.read_csv(matrix_path).set_index("cell_id")
        for cid in sorted(set(mat.index.astype(str)) ^ set(metrics)):
            diffs.append({"file": "performance_matrix.csv", "cell_id": cid, "metric": None,
                          "issue": "only in " + ("the ledger" if cid in metrics else "performance_matrix.csv")})
        for cid in sorted(set(mat.index.astype(str)) & set(metrics)):
            m = metrics[cid]
            for col in COMPARED_METRICS:
                if col not in mat.columns:
                    continue
                got = float(mat.at[cid, col])
                want = float(m[col])
                if np.isnan(got) and "sharpe:zero_variance" in m.get("flags", []):
                    continue
                if not (abs(got - want) <= atol + rtol * abs(want)):
                    diffs.append({"file": "performance_matrix.csv", "cell_id": cid, "metric": col,
                                  "matrix": got, "ledger": want,
                                  "abs_diff": abs(got - want) if np.isfinite(got) else None})
    raw = None
    if not os.path.isfile(returns_path):
        diffs.append({"file": "returns.parquet", "cell_id": None, "metric": None, "issue": "file missing"})
    else:
        res = check_ledger_vs_returns(root, pd.read_parquet(returns_path))
        raw = res.details
        for it in res.details["issues"]:
            diffs.append({"file": "returns.parquet", "cell_id": it["cell_id"], "metric": "return",
                          "issue": it["issue"]})
    return {"ok": not diffs, "metrics": metrics, "differences": diffs, "raw_returns": raw,
            "n_cells": len(metrics), "periods_per_year": p}
