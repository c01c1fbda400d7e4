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
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}  # cell -> [(dates as int64 ns, returns)]
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
        dates = pd.DatetimeIndex(pd.to_datetime(data["dates"], utc=True)).as_unit("ns").asi8
        for cell, r in data["returns"].items():
            if len(r) != len(dates):
                raise DataError(f"seq {seq}: cell {cell} has {len(r)} returns for "
                                f"{len(dates)} dates")
            parts.setdefault(cell, []).append((dates, np.asarray(r, dtype=np.float64)))
    if len(ps) > 1:
        raise ConfigError(f"simulation records disagree on periods_per_year: {sorted(ps)}")
    series = {}
    for cell in sorted(parts):
        d = np.concatenate([p[0] for p in parts[cell]])
        v = np.concatenate([p[1] for p in parts[cell]])
        order = np.argsort(d, kind="stable")  # records in ledger order, dates sorted (as pd.concat + sort_index)
        d, v = d[order], v[order]
        dup = np.flatnonzero(d[1:] == d[:-1])
        if dup.size:
            raise DataError(f"cell {cell}: date {pd.Timestamp(d[dup[0]], tz='UTC').isoformat()} appears in two "
                            "simulation records")
        series[cell] = pd.Series(v, index=pd.DatetimeIndex(d.view("datetime64[ns]")).tz_localize("UTC"))
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
    # parquet rows grouped by cell (sorted by cell id, rows of a cell in date order), with numpy
    cid_arr = df["cell_id"].astype(str).to_numpy(dtype=object)
    codes, uniq = pd.factorize(cid_arr, sort=True)
    p_dates = pd.DatetimeIndex(df["date"]).as_unit("ns").asi8
    order = np.lexsort((p_dates, codes))
    bounds = np.searchsorted(codes[order], np.arange(len(uniq) + 1))
    p_dates, p_ret = p_dates[order], df["return"].to_numpy(dtype=np.float64)[order]
    for j, cid in enumerate(uniq):
        cid = str(cid)
        if cid not in series:
            continue
        lo, hi = bounds[j], bounds[j + 1]
        pd_, pr = p_dates[lo:hi], p_ret[lo:hi]
        s = series[cid]
        sd = s.index.asi8
        if not np.array_equal(pd_, sd):
            diff = pd.DatetimeIndex(pd_.view("datetime64[ns]")).tz_localize("UTC").symmetric_difference(s.index)
            issues.append({"cell_id": cid, "issue": f"dates differ, first {diff[0].isoformat()}"})
            continue
        sv = s.to_numpy()
        neq = np.flatnonzero(pr != sv)
        if neq.size:
            i = int(neq[0])
            issues.append({"cell_id": cid, "issue": f"return differs on {s.index[i].isoformat()}: "
                           f"parquet {float(pr[i])!r} vs ledger {float(sv[i])!r}"})
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
