"""``tournament run``: the sweep end to end, resumable.

1. resolve the config and load the market; open the ledger (run_start: inputs, parameters, versions);
2. build every sweep setting's windows (a common first cut-off, so that every setting tests the same
   dates) and run the units not yet done (any executor); the worker that ran a unit encodes its files
   and records (``tournament.unit_output``); the driver writes the files atomically, digests them and
   appends the records (each once: keys; one fsync per unit: ``LedgerWriter.batch``), and keeps only
   the unit's slim result (``UnitResult.slim``) for the post-unit phase;
3. simulate every cell, batched per simulator; audit checks; performance matrix and statistics;
4. write the Parquet files, ``performance_matrix.csv``, ``bootstrap.json``, the report, and run_end
   with the artifacts' digests.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

import pandas as pd
import yaml

from audit.ledger import LedgerWriter
from audit.verify import file_sha256, latest_artifacts, split_lines, verify_lines
from contracts.enums import RecordType, SpecVersion
from contracts.errors import ConfigError, LedgerError
from market.ratings import DerivedCache
from simulation import make_windows
from tournament.config import TournamentConfig, dump_config
from tournament.executors import Session, pin_threads
from tournament.market_io import Market, load_market
from tournament.records import unit_records
from tournament.rundir import atomic_write_bytes, candidates_path, unit_path
from tournament.unit import UnitContext, UnitKey, UnitResult, collector_threshold
from tournament.unit_output import UnitOutput
from tournament.verification import verification_sample

LIBRARIES = ("numpy", "pandas", "scipy", "vectorbt", "riskfolio-lib", "cvxpy", "clarabel", "arch",
             "pydantic", "numba", "scikit-learn")

CACHE_ENV = "WFAUDIT_CACHE_DIR"


def cache_dir() -> Path:
    """Where runs cache what they may reuse (derived scanner fields): ``$WFAUDIT_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/wfaudit``, else ``~/.cache/wfaudit``; never inside the package nor inside a
    runs folder (whose entries are run folders). The Makefile sets it to the checkout's ``.cache/``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "wfaudit"


@dataclass
class RunOutcome:
    run_dir: Path
    ledger: Path
    report: Path | None
    n_cells: int
    n_units: int
    seconds: float
    #: the ledger's head after the run (seq, hash): publish it to pin the ledger's end
    head_seq: int | None = None
    head_hash: str | None = None
    #: check counts: {"by_status": {...}, "by_name": {name: {status: n}}}
    checks: dict | None = None
    #: names of integrity checks that failed (``INTEGRITY_CHECKS``); non-empty -> exit code 3
    integrity_failures: tuple[str, ...] = ()
    #: cells that held no position in any window, and (setting, window, engine) with no winners
    no_position_cells: tuple[str, ...] = ()
    no_position_windows: tuple[str, ...] = ()
    #: wall seconds per phase: ``market`` (load + derived fields), ``units`` (wall of the units phase),
    #: ``unit:<part>`` (seconds summed over units, in whichever worker ran them: selection per engine
    #: group, allocation per backend) and the post-unit phases of ``finish_run``; see benchmarks/tournament.py
    phase_seconds: dict = field(default_factory=dict)


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
                   stop_after_units: int | None = None,
                   resume_overrides: dict | None = None) -> RunOutcome:
    """Run (or resume) a tournament; returns where its outputs are.

    Bad input (data, candidates, calendar, benchmark) fails before the run folder is created; a failure
    after that leaves the folder with a ``run_failed`` warning as its ledger's last record (``audit
    verify`` reports the run as failed; ``--resume`` can finish it).
    Resume (``resume`` = a run folder): the ledger is verified first (a torn last line is moved to
    a side file by the writer), a finished run (``run_end`` present) is refused, ``config.yaml``
    must match its digest in the ledger, and a unit file whose digest does not match its ledger
    ``artifact`` record (or has none: written just before a crash) is recomputed, with a
    ``unit_recomputed`` warning record, never reloaded. ``resume_overrides`` may set the options
    that do not change results (``report``, ``executor``, ``workers``, ``scheduler``); ``cfg`` is
    then ignored in favour of the run's own ``config.yaml``.
    ``stop_after_units`` (tests) returns after that many new units, leaving a resumable run.
    The run (driver and forked workers) runs under ``tournament.unit.collector_threshold``.
    """
    with collector_threshold():
        return _run_tournament(cfg, runs_dir, resume, progress, stop_after_units, resume_overrides)


def _run_tournament(cfg, runs_dir, resume, progress, stop_after_units, resume_overrides) -> RunOutcome:
    t0 = time.perf_counter()
    pin_threads()
    if resume is not None:
        run_dir = Path(resume)
        cfg = _resumable_config(run_dir, resume_overrides or {})
        run_id = run_dir.name
    # bad input fails here, before a run folder exists; derived scanner fields are cached per content
    # digest of the bars (market.ratings.DerivedCache)
    t_market = time.perf_counter()
    market = load_market(cfg.market, derived_cache=DerivedCache(cache_dir() / "derived"))
    phases = {"market": time.perf_counter() - t_market}
    if resume is None:
        run_id = new_run_id(cfg)
        run_dir = Path(runs_dir) / run_id
        run_dir.mkdir(parents=True, exist_ok=False)
        (run_dir / "config.yaml").write_text(dump_config(cfg))
    dates = market.closes.index
    writer = LedgerWriter(run_dir / "audit.jsonl", run_id, resume=resume is not None,
                          resume_data={"reason": "tournament run --resume",
                                       "overrides": dict(resume_overrides or {})} if resume is not None else None)
    session = None
    try:
        existing = {r["data"].get("key") for r in writer.records}
        append = Appender(writer, existing - {None})
        record_file = ArtifactRecorder(run_dir, append)
        _run_start(append, cfg, market)
        record_file(run_dir / "config.yaml")
        digests = {rel: rec["data"]["sha256"] for rel, rec in latest_artifacts(writer.records).items()}
        sched = schedules(cfg, len(dates))
        keys = [UnitKey(s, w) for s in cfg.settings() for w in sched[s.id]]
        # the post-unit phase reads only slim results (UnitResult.slim): the rest is on disk
        results: dict[str, UnitResult] = {}
        with writer.batch():  # units finished before a crash: reload the verified ones, recompute the others
            for k in keys:
                path = unit_path(run_dir, k.setting.id, k.window.index)
                if not path.is_file():
                    continue
                bad = _unit_untrusted(run_dir, k, digests)
                if bad:
                    append(RecordType.WARNING, SpecVersion.RUN, {
                        "key": f"warning:unit_recomputed:{k.id}:{bad['found_sha256']}",
                        "code": "unit_recomputed", "unit": k.id, **bad})
                    continue
                res = UnitResult.from_json(json.loads(path.read_bytes()))
                for rec in unit_records(res, dates):
                    append(*rec)
                results[k.id] = res.slim()
        todo = [k for k in keys if k.id not in results]
        ctx = UnitContext(market=market, config=cfg, verify_windows=frozenset(verification_sample(cfg, sched)))
        # one executor for the units and the post-unit tasks, closed in ``finally`` (executors.Session)
        session = Session(ctx, cfg.executor, cfg.workers, cfg.scheduler)
        sleeves = None
        n_new = 0
        t_units = time.perf_counter()
        for out in session.units(todo):
            if n_new == 0 and cfg.meta is not None:
                # issue 23: the meta sleeves' own walk-forwards run as tasks queued behind the units (every
                # unit is queued once the first is out), filling the units' tail; the driver imports
                # vectorbt meanwhile in a thread, started only now that the workers exist (a fork while
                # another thread imports could deadlock the child)
                import threading

                from tournament.meta_hooks import submit_sleeves, warm_imports
                sleeves = submit_sleeves(session, cfg)
                threading.Thread(target=warm_imports, name="warm-imports", daemon=True).start()
            with writer.batch():  # one fsync per unit (group commit)
                _persist_unit(run_dir, out, record_file)
                for rec in out.records:
                    append(*rec)
            results[out.key.id] = out.result
            n_new += 1
            if progress:
                progress(len(results), len(keys))
            if stop_after_units is not None and n_new >= stop_after_units:
                return RunOutcome(run_dir, run_dir / "audit.jsonl", None, 0, len(results), time.perf_counter() - t0,
                                  writer.next_seq - 1, writer.last_hash)
        phases["units"] = time.perf_counter() - t_units
        if n_new == 0 and cfg.meta is not None:  # no unit ran (a resume): the sleeves' tasks now
            from tournament.meta_hooks import submit_sleeves
            sleeves = submit_sleeves(session, cfg)
        for res in results.values():
            for part, s in res.seconds.items():
                phases[f"unit:{part}"] = phases.get(f"unit:{part}", 0.0) + s
        from tournament.postprocess import finish_run  # heavy imports (vectorbt) only when needed
        with writer.batch():  # group commit: an fsync every group_max_records records, and at the end
            fin = finish_run(run_dir, cfg, market, sched, results, append, record_file, session, sleeves)
        artifacts = _artifacts(run_dir)
        append(RecordType.RUN_END, SpecVersion.RUN, {"key": "run_end", "artifacts": artifacts,
                                                     "metrics": fin.metrics,
                                                     "seconds": time.perf_counter() - t0,
                                                     "n_units": len(results), "n_cells": fin.n_cells})
        head = (writer.next_seq - 1, writer.last_hash)
    except BaseException as exc:  # the run folder stays, marked failed in its ledger (resumable)
        if not isinstance(exc, (KeyboardInterrupt, SystemExit)) and writer.next_seq > 0:
            writer.append(RecordType.WARNING, SpecVersion.RUN, {
                "code": "run_failed", "error": type(exc).__name__, "message": str(exc).splitlines()[0][:500]
                if str(exc) else type(exc).__name__})
        raise
    finally:
        if session is not None:
            session.close()
        writer.close()
    return RunOutcome(run_dir, run_dir / "audit.jsonl", fin.report, fin.n_cells, len(results),
                      time.perf_counter() - t0, head[0], head[1], fin.checks, fin.integrity_failures,
                      fin.no_position_cells, fin.no_position_windows, {**phases, **fin.seconds})


#: options a resume may change: they change how the run executes or renders, never its results
RESUME_OVERRIDABLE = ("report", "executor", "workers", "scheduler")


def _resumable_config(run_dir: Path, overrides: dict) -> TournamentConfig:
    """The run's own config for a resume, checked against the ledger before anything trusts it."""
    ledger = run_dir / "audit.jsonl"
    if not (run_dir / "config.yaml").is_file() or not ledger.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml or audit.jsonl)")
    bad = sorted(set(overrides) - set(RESUME_OVERRIDABLE))
    if bad:
        raise ConfigError(f"--resume: {', '.join(bad)} would change the run's results; a resume takes them "
                          f"from {run_dir / 'config.yaml'} (only {', '.join(RESUME_OVERRIDABLE)} may be given)")
    lines, _ = split_lines(ledger.read_bytes())
    records, bad_seq, msg = verify_lines(lines, run_dir, artifacts=False)
    if bad_seq is not None:
        raise LedgerError(f"cannot resume {run_dir}: ledger fails verification at seq {bad_seq}: {msg}")
    if records and records[-1]["type"] == RecordType.RUN_END.value:
        raise ConfigError(f"cannot resume {run_dir}: the run finished (run_end at seq {records[-1]['seq']}); "
                          "verify it with `tournament audit verify`")
    text = (run_dir / "config.yaml").read_text()
    pinned = latest_artifacts(records).get("config.yaml")
    if pinned is not None and file_sha256(run_dir / "config.yaml") != pinned["data"]["sha256"]:
        raise LedgerError(f"cannot resume {run_dir}: config.yaml does not match its sha256 in the ledger "
                          f"(seq {pinned['seq']}): edited after the run started")
    started = next((r for r in records if r["type"] == RecordType.RUN_START.value), None)
    cfg = TournamentConfig.model_validate(yaml.safe_load(text))
    if started is not None and started["data"]["parameters"]["config"] != \
            json.loads(json.dumps(cfg.model_dump(mode="json"))):
        raise LedgerError(f"cannot resume {run_dir}: config.yaml differs from the config in run_start "
                          f"(seq {started['seq']})")
    if overrides:  # validated with the rest (a plain "process" becomes the enum, a bad value fails)
        cfg = TournamentConfig.model_validate({**cfg.model_dump(), **overrides})
    return cfg


def _unit_untrusted(run_dir: Path, key: UnitKey, digests: dict[str, str]) -> dict | None:
    """Why a unit's files cannot be reloaded (None when both match their ledger digests)."""
    for path in (unit_path(run_dir, key.setting.id, key.window.index),
                 candidates_path(run_dir, key.setting.id, key.window.index)):
        rel = path.relative_to(run_dir).as_posix()
        found = file_sha256(path) if path.is_file() else None
        want = digests.get(rel)
        if found is None or want is None or found != want:
            return {"file": rel, "found_sha256": found, "ledger_sha256": want,
                    "reason": ("file missing" if found is None else
                               "no digest in the ledger (written just before a crash)" if want is None else
                               "file does not match its digest in the ledger")}
    return None


class ArtifactRecorder:
    """Digests a file the run just wrote into an ``artifact`` ledger record (key: path + digest, so
    a file rewritten with other bytes gets a new record and the last one counts)."""

    def __init__(self, run_dir: Path, append: "Appender"):
        self.run_dir = run_dir
        self.append = append

    def __call__(self, path: Path) -> None:
        rel = path.relative_to(self.run_dir).as_posix()
        digest = file_sha256(path)
        self.append(RecordType.ARTIFACT, SpecVersion.RUN, {"key": f"artifact:{rel}:{digest}", "path": rel,
                                                           "sha256": digest, "bytes": path.stat().st_size})


def _run_start(append: Appender, cfg: TournamentConfig, market: Market) -> None:
    from selection.registry import legacy_settings

    sel = cfg.selection
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
                       # which engine ran with what: v4 (challengers and baselines) with the run's
                       # selection block, v3.4 with its frozen constants (feature_lookback per setting)
                       "selection": {"v4": sel.model_dump(mode="json"), "v3.4": legacy_settings()}},
        "versions": _versions(), "executor": {"kind": cfg.executor.value, "workers": cfg.workers}})
    if not market.snapshots.point_in_time:
        append(RecordType.WARNING, SpecVersion.RUN, {
            "key": "warning:single_export", "code": "single_undated_export",
            "message": "candidates come from one undated export used for every window: "
                       "survivorship and look-ahead risk (membership and fields are not point-in-time)"})


def _persist_unit(run_dir: Path, out: UnitOutput, record_file: ArtifactRecorder) -> None:
    """Write a unit's two files (bytes encoded by its worker) atomically and digest them."""
    sid, k = out.key.setting.id, out.key.window.index
    atomic_write_bytes(candidates_path(run_dir, sid, k), out.candidates_bytes)
    atomic_write_bytes(unit_path(run_dir, sid, k), out.unit_bytes)
    record_file(candidates_path(run_dir, sid, k))
    record_file(unit_path(run_dir, sid, k))  # last: the unit counts as done once both are digested


def _artifacts(run_dir: Path) -> dict[str, str]:
    out = {}
    for p in sorted(run_dir.rglob("*")):
        rel = p.relative_to(run_dir).as_posix()
        if p.is_file() and rel != "audit.jsonl" and not rel.startswith(("report/", "audit.partial")) \
                and not p.name.startswith("."):
            out[rel] = file_sha256(p)
    return out
