"""``tournament run``: the sweep end to end, resumable.

1. resolve the config and load the market; open the ledger (run_start: inputs, parameters, versions);
2. build every sweep setting's windows (a common first cut-off, so that every setting tests the same
   dates) and run the units not yet done (any executor); each finished unit is written atomically to
   ``units/`` and its records appended to the ledger, each once (keys);
3. simulate every cell, batched per simulator; audit checks; performance matrix and statistics;
4. write the Parquet files, ``performance_matrix.csv``, ``bootstrap.json``, the report, and run_end
   with the artifacts' digests.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import subprocess
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

import pandas as pd
import yaml

from audit.ledger import LedgerWriter
from audit.verify import file_sha256, load_records
from contracts.enums import RecordType, SpecVersion
from contracts.errors import ConfigError
from selection.config import SelectionConfig
from simulation import make_windows
from tournament.config import TournamentConfig, dump_config
from tournament.executors import execute, pin_threads
from tournament.market_io import Market, load_market
from tournament.records import unit_records
from tournament.rundir import candidates_path, unit_path, write_json
from tournament.unit import UnitContext, UnitKey, UnitResult

LIBRARIES = ("numpy", "pandas", "scipy", "vectorbt", "riskfolio-lib", "cvxpy", "clarabel", "arch",
             "pydantic", "numba", "scikit-learn")


@dataclass
class RunOutcome:
    run_dir: Path
    ledger: Path
    report: Path | None
    n_cells: int
    n_units: int
    seconds: float


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "missing"
    return out


def new_run_id(cfg: TournamentConfig) -> str:
    digest = hashlib.sha256(dump_config(cfg).encode()).hexdigest()[:6]
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + digest


def schedules(cfg: TournamentConfig, n_bars: int) -> dict[str, list]:
    """Windows per setting id. All settings start at the same first cut-off (the longest train
    window's), so every setting and trial is tested on the same dates; ``max_windows`` keeps the last
    windows of the base setting's schedule span (same span for the others)."""
    settings = cfg.settings()
    first = max(s.train_window for s in settings) - 1
    if cfg.max_windows is not None:
        base = settings[0]
        span = cfg.max_windows * base.step_size
        first = max(first, n_bars - 1 - span)
    return {s.id: make_windows(n_bars, s.train_window, s.step_size, cfg.gap, cfg.train_mode, start=first)
            for s in settings}


class Appender:
    """Appends ledger records once each, by ``data['key']`` (resume-safe)."""

    def __init__(self, writer: LedgerWriter, existing_keys: set[str]):
        self.writer = writer
        self.keys = set(existing_keys)

    def __call__(self, rtype: RecordType, spec: SpecVersion, data: dict) -> None:
        key = data.get("key")
        if key is not None and key in self.keys:
            return
        self.writer.append(rtype, spec, data)
        if key is not None:
            self.keys.add(key)


def run_tournament(cfg: TournamentConfig, runs_dir: str | Path = "runs", resume: str | Path | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   stop_after_units: int | None = None) -> RunOutcome:
    """Run (or resume) a tournament; returns where its outputs are.

    ``stop_after_units`` (tests) returns after that many new units, leaving a resumable run.
    """
    t0 = time.perf_counter()
    pin_threads()
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
        cfg = TournamentConfig.model_validate(yaml.safe_load((run_dir / "config.yaml").read_text()))
        run_id = run_dir.name
    else:
        run_id = new_run_id(cfg)
        run_dir = Path(runs_dir) / run_id
        run_dir.mkdir(parents=True, exist_ok=False)
        (run_dir / "config.yaml").write_text(dump_config(cfg))
    market = load_market(cfg.market)
    dates = market.closes.index
    existing = {r["data"].get("key") for r in load_records(run_dir)} if resume is not None else set()
    writer = LedgerWriter(run_dir / "audit.jsonl", run_id, resume=resume is not None,
                          resume_data={"reason": "tournament run --resume"} if resume is not None else None)
    try:
        append = Appender(writer, existing - {None})
        _run_start(append, cfg, market)
        sched = schedules(cfg, len(dates))
        keys = [UnitKey(s, w) for s in cfg.settings() for w in sched[s.id]]
        done = {k.id for k in keys if unit_path(run_dir, k.setting.id, k.window.index).is_file()}
        results: dict[str, UnitResult] = {}
        for k in keys:  # units finished before a crash: reload, and append any missing records
            if k.id in done:
                res = UnitResult.from_json(json.loads(unit_path(run_dir, k.setting.id, k.window.index).read_text()))
                results[k.id] = res
                for rec in unit_records(res, dates):
                    append(*rec)
        todo = [k for k in keys if k.id not in done]
        ctx = UnitContext(market=market, config=cfg)
        n_new = 0
        for res in execute(ctx, todo, cfg.executor, cfg.workers, cfg.scheduler):
            _persist_unit(run_dir, res)
            for rec in unit_records(res, dates):
                append(*rec)
            results[res.key.id] = res
            n_new += 1
            if progress:
                progress(len(results), len(keys))
            if stop_after_units is not None and n_new >= stop_after_units:
                return RunOutcome(run_dir, run_dir / "audit.jsonl", None, 0, len(results), time.perf_counter() - t0)
        from tournament.postprocess import finish_run  # heavy imports (vectorbt) only when needed
        report, metrics = finish_run(run_dir, cfg, market, sched, results, append)
        artifacts = _artifacts(run_dir)
        append(RecordType.RUN_END, SpecVersion.RUN, {"key": "run_end", "artifacts": artifacts, "metrics": metrics,
                                                     "seconds": time.perf_counter() - t0,
                                                     "n_units": len(results), "n_cells": len(cfg.cells())})
    finally:
        writer.close()
    return RunOutcome(run_dir, run_dir / "audit.jsonl", report, len(cfg.cells()), len(results),
                      time.perf_counter() - t0)


def _run_start(append: Appender, cfg: TournamentConfig, market: Market) -> None:
    sel = SelectionConfig()
    append(RecordType.RUN_START, SpecVersion.RUN, {
        "key": "run_start",
        "inputs": {"git_commit": _git_commit(), **{k: v for k, v in market.provenance.items() if k != "events"}},
        "events": market.provenance.get("events"),
        "parameters": {"config": cfg.model_dump(mode="json"),
                       "htr": {"entropy_max": sel.entropy_max, "efficiency_min": sel.efficiency_min,
                               "adx_min": sel.adx_min, "relax_entropy": sel.relax_entropy,
                               "relax_efficiency": sel.relax_efficiency, "relax_adx": sel.relax_adx,
                               "min_winners": sel.min_winners, "max_winners": sel.max_winners,
                               "sector_cap": sel.sector_cap},
                       "selection_defaults": sel.model_dump(mode="json")},
        "versions": _versions(), "executor": {"kind": cfg.executor.value, "workers": cfg.workers}})
    if not market.snapshots.point_in_time:
        append(RecordType.WARNING, SpecVersion.RUN, {
            "key": "warning:single_export", "code": "single_undated_export",
            "message": "candidates come from one undated export used for every window: "
                       "survivorship and look-ahead risk (membership and fields are not point-in-time)"})


def _persist_unit(run_dir: Path, res: UnitResult) -> None:
    from selection.output import portfolio_candidates

    sid, k = res.key.setting.id, res.key.window.index
    write_json(candidates_path(run_dir, sid, k), portfolio_candidates(res.selections))
    write_json(unit_path(run_dir, sid, k), res.to_json())  # last: its presence marks the unit done


def _artifacts(run_dir: Path) -> dict[str, str]:
    out = {}
    for p in sorted(run_dir.rglob("*")):
        rel = p.relative_to(run_dir).as_posix()
        if p.is_file() and rel != "audit.jsonl" and not rel.startswith(("report/", "units/", "audit.partial")) \
                and not p.name.startswith("."):
            out[rel] = file_sha256(p)
    return out
