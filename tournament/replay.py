"""Replay: re-execute a run from its folder and compare, under DESIGN section 3's definition of "the same".

``replay_run(run_dir)``:
1. verifies the run (chain, every file's digest, ``run_end``); a failure stops here;
2. reads its config (``config.yaml``, which must match its digest and ``run_start``) and its data digests
   (``run_start.inputs``: ``panel_sha256``, ``snapshot_sha256``); loads the same data (the run's own data
   paths, or ``data``/``candidates`` given, or the regenerated synthetic market) and refuses, naming the
   file and both digests, when it is not the data the run used;
3. warns when the installed code's git commit or a library version differs from the run's;
4. re-runs the tournament into a fresh folder (no report; the executor may differ: it never changes
   results), and compares file by file: the selection files, ``windows``/``weights``/``returns``/
   ``positions``/``exposure``/``cells`` Parquet files, ``performance_matrix.csv``, ``bootstrap.json``, and
   every keyed ledger record except the kinds that may differ (DESIGN section 3: ``run_start``, ``resume``,
   ``artifact``, ``run_end``, ``warning``; and the execution fields ``seconds`` and ``execution``).

The verdict is ``identical`` or the first difference (file, cell, date or key, field, both values), with
the largest absolute difference per file. ``tolerance`` (absolute, on floats) is for replays across library
versions; 0 (exact) by default.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import yaml

from audit.verify import load_records, verify_ledger
from contracts.enums import RecordType
from contracts.errors import ConfigError, DataError, LedgerError
from tournament.config import TournamentConfig
from tournament.market_io import load_market

PARQUETS = ("windows.parquet", "weights.parquet", "returns.parquet", "positions.parquet", "exposure.parquet",
            "cells.parquet", "regime_labels.parquet", "regimes.parquet")
#: files added in schema 1.2 (issue 20): a run written before them has none to compare
SINCE_SCHEMA_1_2 = frozenset({"regime_labels.parquet", "regimes.parquet"})
#: the meta-portfolio's files (issue 17): present only in a run with a ``meta:`` block
META_PARQUETS = ("meta/weights.parquet", "meta/sleeve_weights.parquet")
META_JSON = "meta/sleeves.json"
#: ledger record kinds that may differ between two executions of the same run (DESIGN section 3)
EXCLUDED_KINDS = frozenset({RecordType.RUN_START.value, RecordType.RESUME.value, RecordType.ARTIFACT.value,
                            RecordType.RUN_END.value, RecordType.WARNING.value})
#: fields of a record's data that are execution statistics, not decisions
EXECUTION_FIELDS = frozenset({"seconds", "execution"})


@dataclass
class Difference:
    file: str
    where: str
    field: str
    original: Any
    replayed: Any

    def line(self) -> str:
        return (f"{self.file}: {self.where}, field {self.field}: original {self.original!r} vs "
                f"replayed {self.replayed!r}")


@dataclass
class ReplayReport:
    identical: bool
    replay_dir: Path
    first: Difference | None
    n_differences: dict[str, int] = field(default_factory=dict)
    largest: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    tolerance: float = 0.0
    seconds: float = 0.0


def _run_start(records: list[dict]) -> dict:
    rs = next((r for r in records if r["type"] == RecordType.RUN_START.value), None)
    if rs is None:
        raise LedgerError("replay: the ledger has no run_start record")
    return rs["data"]


def replay_config(run_dir: Path, records: list[dict], data: str | None, candidates: str | None,
                  overrides: dict) -> TournamentConfig:
    """The run's config (``config.yaml``, equal to ``run_start``'s), with the data paths and the
    result-neutral options given."""
    cfg = TournamentConfig.model_validate(yaml.safe_load((run_dir / "config.yaml").read_text()))
    started = _run_start(records)["parameters"]["config"]
    if json.loads(json.dumps(cfg.model_dump(mode="json"))) != started:
        raise LedgerError(f"{run_dir / 'config.yaml'} differs from the config recorded in run_start")
    update: dict[str, Any] = dict(overrides)
    if data is not None or candidates is not None:
        if data is None or candidates is None:
            raise ConfigError("replay: give both --data and --candidates, or neither")
        update["market"] = cfg.market.model_copy(update={"data": str(data), "candidates": str(candidates)})
    update["report"] = False
    return TournamentConfig.model_validate({**cfg.model_dump(), **{k: (v.model_dump() if hasattr(v, "model_dump")
                                                                       else v) for k, v in update.items()}})


def check_inputs(cfg: TournamentConfig, inputs: dict) -> None:
    """Refuse other data: a ``DataError`` naming the file and both digests."""
    market = load_market(cfg.market)
    prov = market.provenance
    if prov["panel_sha256"] != inputs.get("panel_sha256"):
        where = cfg.market.data or "the synthetic market"
        raise DataError(f"replay: {where}: price panel sha256 {prov['panel_sha256']} is not the run's "
                        f"{inputs.get('panel_sha256')}: not the data the run used")
    if prov["snapshot_sha256"] != inputs.get("snapshot_sha256"):
        where = cfg.market.candidates or "the synthetic snapshots"
        raise DataError(f"replay: {where}: snapshot sha256 {prov['snapshot_sha256']} is not the run's "
                        f"{inputs.get('snapshot_sha256')}: not the candidates the run used")


def code_warnings(start: dict) -> list[str]:
    from tournament.run import _git_commit, _versions

    out = []
    was, now = start.get("inputs", {}).get("git_commit"), _git_commit()
    if was != now:
        out.append(f"code: git commit {now} differs from the run's {was}")
    for lib, v in sorted((start.get("versions") or {}).items()):
        cur = _versions().get(lib)
        if cur != v:
            out.append(f"library {lib}: installed {cur}, the run used {v}")
    return out


def replay_run(run_dir: str | Path, *, data: str | None = None, candidates: str | None = None,
               out_dir: str | Path | None = None, tolerance: float = 0.0,
               overrides: dict | None = None) -> ReplayReport:
    """Re-execute ``run_dir`` into ``out_dir`` (default: ``<run_dir>-replay-<UTC time>`` beside it)
    and compare (see the module docstring)."""
    from tournament.run import run_tournament

    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    rep = verify_ledger(run_dir, require_run_end=True)
    if not rep.ok:
        raise LedgerError(f"replay: {run_dir} fails verification at seq {rep.first_bad_seq}: {rep.message}")
    records = load_records(run_dir, require_run_end=True)
    start = _run_start(records)
    cfg = replay_config(run_dir, records, data, candidates, overrides or {})
    check_inputs(cfg, start.get("inputs") or {})
    warnings = code_warnings(start)
    parent = Path(out_dir) if out_dir is not None else run_dir.parent / f"{run_dir.name}-replay-{time.strftime('%Y%m%dT%H%M%S')}"
    out = run_tournament(cfg, parent)
    report = compare_runs(run_dir, out.run_dir, tolerance)
    report.warnings = warnings
    report.seconds = time.perf_counter() - t0
    return report


# -- comparison ------------------------------------------------------------------------------------

def _num_diff(a: Any, b: Any) -> float | None:
    """|a - b| for two finite numbers, 0 for two equal non-numbers, None when not comparable as numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    if isinstance(a, (int, float, np.integer, np.floating)) and isinstance(b, (int, float, np.integer, np.floating)):
        a, b = float(a), float(b)
        if math.isnan(a) and math.isnan(b):
            return 0.0
        if math.isinf(a) or math.isinf(b):
            return 0.0 if a == b else math.inf
        return abs(a - b)
    return None


def _walk(a: Any, b: Any, path: str) -> Iterator[tuple[str, Any, Any, float | None]]:
    """Leaves of two JSON-like trees that differ: (path, a, b, numeric difference or None)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k in EXECUTION_FIELDS:
                continue
            yield from _walk(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}" if path else str(k))
        return
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            yield path, f"{len(a)} items", f"{len(b)} items", None
            return
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _walk(x, y, f"{path}[{i}]")
        return
    d = _num_diff(a, b)
    if d is not None:
        if d > 0:
            yield path, a, b, d
    elif a != b:
        yield path, a, b, None


class _Collector:
    def __init__(self, tolerance: float):
        self.tol = tolerance
        self.first: Difference | None = None
        self.n: dict[str, int] = {}
        self.largest: dict[str, float] = {}

    def add(self, file: str, where: str, fld: str, a: Any, b: Any, d: float | None) -> None:
        if d is not None:
            self.largest[file] = max(self.largest.get(file, 0.0), d)
            if d <= self.tol:
                return
        self.n[file] = self.n.get(file, 0) + 1
        if self.first is None:
            self.first = Difference(file, where, fld, a, b)


def _compare_json(col: _Collector, file: str, a: Any, b: Any) -> None:
    for path, x, y, d in _walk(a, b, ""):
        col.add(file, path.split(".")[0] or "-", path, x, y, d)


def _compare_frame(col: _Collector, name: str, a: pd.DataFrame, b: pd.DataFrame) -> None:
    if list(a.columns) != list(b.columns):
        col.add(name, "columns", "columns", list(a.columns), list(b.columns), None)
        return
    keys = [c for c in ("cell_id", "setting_id", "date", "window", "atom_id", "symbol") if c in a.columns]
    a = a.sort_values(keys, kind="stable").reset_index(drop=True) if keys else a
    b = b.sort_values(keys, kind="stable").reset_index(drop=True) if keys else b
    if len(a) != len(b):
        col.add(name, "rows", "rows", len(a), len(b), None)
        n = min(len(a), len(b))
        a, b = a.iloc[:n], b.iloc[:n]
    for c in a.columns:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if pd.api.types.is_numeric_dtype(a[c]) and pd.api.types.is_numeric_dtype(b[c]) \
                and not pd.api.types.is_bool_dtype(a[c]):
            xf, yf = x.astype(np.float64), y.astype(np.float64)
            both_nan = np.isnan(xf) & np.isnan(yf)
            diff = np.where(both_nan, 0.0, np.abs(xf - yf))
            diff = np.where(np.isnan(diff), np.inf, diff)
            if diff.size:
                col.largest[name] = max(col.largest.get(name, 0.0), float(diff.max()))
            bad = np.flatnonzero(diff > col.tol)
        else:
            na = pd.isna(pd.Series(x)).to_numpy() & pd.isna(pd.Series(y)).to_numpy()
            neq = pd.Series(x).astype(str).to_numpy() != pd.Series(y).astype(str).to_numpy()
            bad = np.flatnonzero(neq & ~na)
        if bad.size:
            col.n[name] = col.n.get(name, 0) + int(bad.size)
            if col.first is None:
                i = int(bad[0])
                where = ", ".join(f"{k} {a[k].iloc[i]}" for k in keys if k in ("cell_id", "date", "window",
                                                                                "atom_id", "setting_id"))
                col.first = Difference(name, where or f"row {i}", c, _py(x[i]), _py(y[i]))


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _keyed(records: list[dict]) -> dict[str, dict]:
    return {r["data"]["key"]: r for r in records
            if r["type"] not in EXCLUDED_KINDS and isinstance(r["data"].get("key"), str)}


def compare_runs(original: str | Path, replayed: str | Path, tolerance: float = 0.0) -> ReplayReport:
    """Compare two run folders of the same config and data (see the module docstring)."""
    a, b = Path(original), Path(replayed)
    col = _Collector(tolerance)
    sel_a = sorted(p.relative_to(a).as_posix() for p in a.glob("selection/*/*/*.json"))
    sel_b = sorted(p.relative_to(b).as_posix() for p in b.glob("selection/*/*/*.json"))
    for rel in sorted(set(sel_a) ^ set(sel_b)):
        col.add(rel, "file", "presence", rel in sel_a, rel in sel_b, None)
    for rel in sorted(set(sel_a) & set(sel_b)):
        _compare_json(col, rel, json.loads((a / rel).read_text()), json.loads((b / rel).read_text()))
    for name in PARQUETS:
        if name in SINCE_SCHEMA_1_2 and not (a / name).exists():
            continue
        _compare_frame(col, name, pd.read_parquet(a / name), pd.read_parquet(b / name))
    for name in (*META_PARQUETS, META_JSON):
        if (a / name).exists() != (b / name).exists():
            col.add(name, "file", "presence", (a / name).exists(), (b / name).exists(), None)
        elif (a / name).exists() and name.endswith(".parquet"):
            _compare_frame(col, name, pd.read_parquet(a / name), pd.read_parquet(b / name))
        elif (a / name).exists():
            _compare_json(col, name, json.loads((a / name).read_text()), json.loads((b / name).read_text()))
    _compare_frame(col, "performance_matrix.csv", pd.read_csv(a / "performance_matrix.csv"),
                   pd.read_csv(b / "performance_matrix.csv"))
    _compare_json(col, "bootstrap.json", json.loads((a / "bootstrap.json").read_text()),
                  json.loads((b / "bootstrap.json").read_text()))
    ka, kb = _keyed(load_records(a)), _keyed(load_records(b))
    for key in sorted(set(ka) ^ set(kb)):
        col.add("audit.jsonl", key, "record", key in ka, key in kb, None)
    for key in sorted(set(ka) & set(kb), key=lambda k: ka[k]["seq"]):
        ra, rb = ka[key], kb[key]
        for fld in ("type", "spec_version"):
            if ra[fld] != rb[fld]:
                col.add("audit.jsonl", key, fld, ra[fld], rb[fld], None)
        for path, x, y, d in _walk(ra["data"], rb["data"], ""):
            col.add("audit.jsonl", key, path, x, y, d)
    return ReplayReport(identical=col.first is None, replay_dir=b, first=col.first, n_differences=col.n,
                        largest=col.largest, tolerance=tolerance)
