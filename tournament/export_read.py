"""What an MLflow export of a run holds, read from the run folder alone (no MLflow import here).

The run folder is the source of truth: ``audit.jsonl`` (verified with ``audit.verify.verify_ledger``
at export time; its ``run_start`` record gives the inputs' digests and the parameters),
``performance_matrix.csv`` (one child run per row), ``returns.parquet`` (each cell's daily equity),
``bootstrap.json`` (run-level figures), ``config.yaml``, ``selection/`` and ``report/`` (artifacts).

Mapping of a matrix row to its child run:

- **params**: the cell's dimensions (``engine, profile, backend, simulator, step_size, train_window,
  feature_lookback``), its ``setting_id``, the run's allocation and simulation settings
  (``costs.*``, ``liquidation_floor``, ``train_mode``, ``gap``, ``verification``, ``seed``) and the
  selection settings the run used for the cell's engine family (``selection.*``, from ``run_start``'s
  ``parameters.selection[<family>]``, the family being the engine name before ``:``; the raw, random
  and buy-and-hold engines have none);
- **metrics**: every other column whose values are figures, at step 0: booleans as 1.0/0.0, numbers
  parsed with Python's ``float`` (correctly rounded, as pandas 3's ``read_csv``). A **blank** value (e.g. DSR of a non-trial cell, Sharpe of a cell
  that never held a position) is *not logged*: MLflow has no "undefined", and a NaN would plot as a
  figure. The text columns (``vol_band``, ``dsr_method``, ``verified_windows``, and any column
  holding a value that is not a number) become tags ``matrix.<column>``;
- **equity**: the metric ``equity`` with one step per day (step ``i`` = the cell's ``i``-th test day,
  timestamp = that day at 00:00 UTC in ms): ``prod(1 + return)`` over the cell's returns up to and
  including that day, from 1.0 before the first (a fraction of the starting value);
- **tags**: ``wfaudit.kind`` (``trial``; ``excluded_trial``: a trial configuration whose selection was
  degenerate; ``verification``: a cell of another simulator or optimiser backend that cross-checks a
  trial; ``baseline``: the buy-and-hold references; ``meta``: a meta-portfolio cell over the sleeves;
  ``sleeve``: a sleeve walked forward on its own market for the meta layer), ``wfaudit.cell_id``, ``wfaudit.run_id``,
  ``wfaudit.setting_id`` and ``wfaudit.candidates`` (where that setting's per-window
  ``portfolio_candidates.json`` are: on the parent run under ``selection/<setting>/<k>/``, since one file
  holds every engine's selection for its window and so belongs to every cell of the setting).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.verify import LEDGER_NAME, file_sha256, latest_artifacts, verify_ledger
from contracts.cell import SettingKey
from contracts.errors import LedgerError

#: version of the mapping above; part of the fingerprint, so a new mapping re-exports
EXPORT_FORMAT = "1"
DIMENSIONS = ("engine", "profile", "backend", "simulator", "step_size", "train_window", "feature_lookback")
#: matrix columns that hold text (README, output files): always tags
TEXT_COLUMNS = ("vol_band", "dsr_method", "verified_windows")
KINDS = ("trial", "excluded_trial", "verification", "baseline", "meta", "sleeve")
#: run-level settings every child run carries as params (the allocation and simulation settings)
RUN_SETTINGS = ("costs", "liquidation_floor", "train_mode", "gap", "verification", "seed")
#: the files read, digested into the fingerprint
READ_FILES = ("performance_matrix.csv", "returns.parquet", "bootstrap.json", "config.yaml")


@dataclass(frozen=True)
class CellExport:
    """One matrix row as a child run. ``equity_ms``: ms since the epoch (UTC) per test day."""

    cell_id: str
    kind: str
    name: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    equity_ms: np.ndarray
    equity: np.ndarray


@dataclass(frozen=True)
class RunExport:
    """The whole export, read from one run folder. ``start_ms``/``end_ms``: the ledger's
    ``run_start``/last record timestamps (ms since the epoch); every scalar metric carries
    ``end_ms`` as its timestamp, so two exports of the same folder log identical values."""

    run_id: str
    run_dir: Path
    verified: bool
    verify_message: str
    head_seq: int | None
    head_hash: str | None
    fingerprint: str
    start_ms: int
    end_ms: int
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float]
    cells: tuple[CellExport, ...]
    #: (local path, artifact folder on the parent run or "" for its root)
    artifacts: tuple[tuple[Path, str], ...] = field(default=())


def flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    """Nested mappings to ``a.b.c`` keys; lists, None and scalars as compact JSON text (strings
    as themselves), keys sorted."""
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for k in sorted(obj, key=str):
            out.update(flatten(obj[k], f"{prefix}.{k}" if prefix else str(k)))
    else:
        out[prefix] = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True)
    return out


def _ms(ts: Any) -> int:
    return int(pd.Timestamp(ts).value // 1_000_000)


def _is_figure(text: str) -> bool:
    if text in ("True", "False"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def _figure(text: str) -> float:
    """A matrix value as a metric: booleans 1.0/0.0, numbers by ``float``."""
    if text in ("True", "False"):
        return 1.0 if text == "True" else 0.0
    return float(text)


def read_matrix(path: Path) -> pd.DataFrame:
    """``performance_matrix.csv`` as text (``""`` for a blank), so that every figure is parsed once,
    by ``float``."""
    mat = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("cell_id", *DIMENSIONS) if c not in mat.columns]
    if missing:
        raise LedgerError(f"{path}: column(s) {missing} missing")
    if mat["cell_id"].duplicated().any():
        raise LedgerError(f"{path}: cell_id {mat['cell_id'][mat['cell_id'].duplicated()].iloc[0]!r} repeated")
    return mat


def figure_columns(mat: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(metric columns, tag columns) of the matrix: a column is a figure when every non-blank value
    is a number or a boolean and it is not a known text column."""
    rest = [c for c in mat.columns if c != "cell_id" and c not in DIMENSIONS]
    figures = [c for c in rest if c not in TEXT_COLUMNS and all(_is_figure(v) for v in mat[c] if v != "")]
    return figures, [c for c in rest if c not in figures]


def cell_kind(row: dict, trial_backend: str, trial_simulator: str) -> str:
    """``baseline``, ``meta``, ``sleeve``, ``trial``, ``excluded_trial`` or ``verification`` (see the
    module docstring)."""
    if row.get("baseline") == "True":
        return "baseline"
    if row["engine"].startswith("meta:"):
        return "meta"
    if row["engine"].startswith("sleeve:"):
        return "sleeve"
    if row.get("trial") == "True":
        return "trial"
    if row["backend"] == trial_backend and row["simulator"] == trial_simulator:
        return "excluded_trial"
    return "verification"


def equity_curves(returns: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per cell: (ms timestamps of the test days, equity after each day = cumprod(1 + return))."""
    out = {}
    for cid, g in returns.sort_values(["cell_id", "date"]).groupby("cell_id", sort=False):
        ms = pd.DatetimeIndex(pd.to_datetime(g["date"], utc=True)).as_unit("ms").asi8.copy()
        out[str(cid)] = (ms, np.cumprod(1.0 + g["return"].to_numpy(dtype=float)))
    return out


def _records_lenient(path: Path) -> list[dict]:
    """The ledger's parseable records (a run exported with ``--force`` may have broken lines)."""
    out = []
    for line in path.read_bytes().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("data"), dict):
            out.append(rec)
    return out


def _trial_axes(config: dict) -> tuple[str, str]:
    """The trial backend and simulator (``TournamentConfig.trial_backend``/``trial_simulator``)."""
    from tournament.config import TournamentConfig

    cfg = TournamentConfig.model_validate(config)
    return str(cfg.trial_backend.value), str(cfg.trial_simulator.value)


def _run_metrics(boot: dict, verify_records: int, kinds: dict[str, int], n_rows: int) -> dict[str, float]:
    """The parent's figures: PBO, trial counts, check counts, cell counts."""
    pbo = boot.get("pbo") or {}
    dsr = boot.get("dsr") or {}
    eff = boot.get("effective_trials") or {}
    checks = boot.get("checks") or {}
    best = dsr.get("best_trial") or {}
    cand = {
        "pbo": pbo.get("pbo"), "pbo_prob_oos_loss": pbo.get("prob_oos_loss"),
        "pbo_null_mean": (pbo.get("null") or {}).get("mean"), "pbo_null_sd": (pbo.get("null") or {}).get("sd"),
        "n_trials": boot.get("n_trials"), "n_trials_raw": dsr.get("n_trials_raw"),
        "n_trials_clustered": dsr.get("n_trials_clustered"), "n_trials_effective": eff.get("n_effective"),
        "n_excluded_trials": len((boot.get("excluded_trials") or {}).get("cells", []) or []),
        "best_trial_sharpe": best.get("sharpe"), "best_trial_dsr": best.get("dsr"),
        "common_dates": boot.get("common_dates"), "n_checks": checks.get("n_checks"),
        "n_cells": n_rows, "n_ledger_records": verify_records,
    }
    for status in ("pass", "warn", "fail"):
        cand[f"checks_{status}"] = (checks.get("by_status") or {}).get(status, 0)
    for name, counts in sorted((checks.get("by_name") or {}).items()):
        for status in ("warn", "fail"):
            cand[f"checks.{name}.{status}"] = counts.get(status, 0)
    for kind in KINDS:
        cand[f"n_cells_{kind}"] = kinds.get(kind, 0)
    return {k: float(v) for k, v in cand.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def build_export(run_dir: str | Path) -> RunExport:
    """Read ``run_dir`` into a ``RunExport`` (verifying its ledger first; the verdict is recorded, not
    raised: ``export_mlflow.export_run`` refuses an unverified run unless forced)."""
    run_dir = Path(run_dir)
    if not (run_dir / LEDGER_NAME).is_file() or not (run_dir / "performance_matrix.csv").is_file():
        raise LedgerError(f"{run_dir}: not a finished run folder (no {LEDGER_NAME} or performance_matrix.csv)")
    rep = verify_ledger(run_dir, require_run_end=True)
    records = _records_lenient(run_dir / LEDGER_NAME)
    start = next((r for r in records if r.get("type") == "run_start"), None)
    if start is None:
        raise LedgerError(f"{run_dir / LEDGER_NAME}: no readable run_start record")
    run_id = str(start["run_id"])
    sdata = start["data"]
    parameters = sdata.get("parameters") or {}
    config = parameters.get("config") or {}
    trial_backend, trial_simulator = _trial_axes(config)
    boot = json.loads((run_dir / "bootstrap.json").read_text()) if (run_dir / "bootstrap.json").is_file() else {}

    mat = read_matrix(run_dir / "performance_matrix.csv")
    figures, texts = figure_columns(mat)
    returns = pd.read_parquet(run_dir / "returns.parquet", columns=["cell_id", "date", "return"])
    curves = equity_curves(returns)
    run_settings = flatten({k: config[k] for k in RUN_SETTINGS if k in config})
    selection = parameters.get("selection") or {}
    candidates_on_disk = {p.parent.parent.name for p in run_dir.glob("selection/*/*/portfolio_candidates.json")}
    cells, kinds = [], {}
    for row in mat.to_dict("records"):
        cid = row["cell_id"]
        kind = cell_kind(row, trial_backend, trial_simulator)
        kinds[kind] = kinds.get(kind, 0) + 1
        sid = SettingKey(step_size=int(row["step_size"]), train_window=int(row["train_window"]),
                         feature_lookback=int(row["feature_lookback"])).id
        params = {d: row[d] for d in DIMENSIONS} | {"setting_id": sid} | run_settings
        family = selection.get(row["engine"].split(":")[0])
        if isinstance(family, dict):
            params |= flatten(family, "selection")
        tags = {"wfaudit.kind": kind, "wfaudit.cell_id": cid, "wfaudit.run_id": run_id, "wfaudit.role": "cell",
                "wfaudit.setting_id": sid}
        if sid in candidates_on_disk:
            tags["wfaudit.candidates"] = f"parent run artifacts: selection/{sid}/<window>/portfolio_candidates.json"
        tags |= {f"matrix.{c}": row[c] for c in texts if row[c] != ""}
        metrics = {c: _figure(row[c]) for c in figures if row[c] != ""}
        ms, eq = curves.get(cid, (np.zeros(0, dtype=np.int64), np.zeros(0)))
        name = f"{row['engine']} {row['profile']} {row['backend']} {row['simulator']} {sid}"
        cells.append(CellExport(cid, kind, name, params, metrics, tags, ms, eq))

    inputs = sdata.get("inputs") or {}
    pinned = latest_artifacts([r for r in records if r.get("type") == "artifact" and "seq" in r
                               and isinstance(r["data"].get("path"), str)]).get("config.yaml")
    digests = {f: file_sha256(run_dir / f) for f in READ_FILES if (run_dir / f).is_file()}
    fingerprint = hashlib.sha256(json.dumps(
        {"format": EXPORT_FORMAT, "head": rep.head_hash, "ok": rep.ok, "message": rep.message, "files": digests},
        sort_keys=True).encode()).hexdigest()
    tags = {"wfaudit.run_id": run_id, "wfaudit.role": "tournament",
            "wfaudit.verified": "true" if rep.ok else "false", "wfaudit.verify_message": rep.message[:4000],
            "wfaudit.ledger_head_seq": str(rep.head_seq), "wfaudit.ledger_head_hash": str(rep.head_hash),
            "wfaudit.complete": "true" if rep.complete else "false",
            "wfaudit.config_sha256": str(pinned["data"].get("sha256", "")) if pinned else "",
            "wfaudit.export_fingerprint": fingerprint, "wfaudit.export_format": EXPORT_FORMAT,
            "wfaudit.candidates": "selection/<setting>/<window>/portfolio_candidates.json (artifacts)"}
    tags |= {f"wfaudit.inputs.{k}": v for k, v in flatten({k: v for k, v in inputs.items()
                                                            if not isinstance(v, dict)}).items()}
    tags |= {f"wfaudit.versions.{k}": v for k, v in flatten(sdata.get("versions") or {}).items()}
    if inputs.get("git_commit"):
        tags["mlflow.source.git.commit"] = str(inputs["git_commit"])
    tags["mlflow.note.content"] = (f"wfaudit tournament {run_id}: {len(cells)} cells "
                                   f"({', '.join(f'{kinds[k]} {k}' for k in KINDS if k in kinds)}); "
                                   f"audit verify at export: {'ok' if rep.ok else 'FAILED: ' + rep.message}")
    params = flatten(config) | flatten(parameters.get("htr") or {}, "htr")
    end = records[-1] if records else start
    artifacts = [(run_dir / f, "") for f in ("performance_matrix.csv", "bootstrap.json", "config.yaml")
                 if (run_dir / f).is_file()]
    artifacts += [(run_dir / d, d) for d in ("selection", "report") if (run_dir / d).is_dir()]
    return RunExport(run_id=run_id, run_dir=run_dir, verified=rep.ok, verify_message=rep.message,
                     head_seq=rep.head_seq, head_hash=rep.head_hash, fingerprint=fingerprint,
                     start_ms=_ms(start["ts"]), end_ms=_ms(end.get("ts", start["ts"])), params=params, tags=tags,
                     metrics=_run_metrics(boot, rep.n_records, kinds, len(mat)), cells=tuple(cells),
                     artifacts=tuple(artifacts))
